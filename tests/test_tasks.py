"""Data, extraction and scoring of the spine's tasks (coin_flip, last_letter)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from s2distill.errors import UserError
from s2distill.tasks import TASKS
from s2distill.tasks.base import GOLD_COLUMNS, bundled_path


def make(name, **kw):
    return TASKS.get(name)(**{"n_train": 20, "n_test": 20, "seed": 0, **kw})


@pytest.mark.parametrize(
    "text, want",
    [
        ("Yes", "yes"),
        ("no.", "no"),
        ("**No**, the coin is tails up.", "no"),
        ("The first flip makes it tails, the second heads. Answer: yes", "yes"),
        ("Let me think: yes it flips... no wait. The answer is: no", "no"),
        ('Answer: "Yes"', "yes"),
        ("Since nobody flips, it stays heads up, so yes.", "yes"),
        ("The coin is heads up.", None),
        ("", None),
        ("noon yesterday", None),
    ],
)
def test_coin_flip_extract(text, want):
    assert make("coin_flip").extract(text) == want


@pytest.mark.parametrize(
    "text, want",
    [
        ("enla", "enla"),
        ("Answer: enla.", "enla"),
        ('The last letters are e, n, l and a. Answer: "enla"', "enla"),
        ("Answer: e, n, l, a", "enla"),
        ("The answer is: e-n-l-a", "enla"),
        ('Concatenating them gives "ENLA".', "enla"),
        ("e n l a", "enla"),
        ("I am not sure what you mean by that.", None),
        ("", None),
    ],
)
def test_last_letter_extract(text, want):
    assert make("last_letter").extract(text) == want


def test_coin_flip_synthetic_is_balanced_seeded_and_disjoint():
    t = make("coin_flip", n_train=50, n_test=40, n_people=3)
    d = t.load()
    assert Counter(d["test"]["gold"]) == {"yes": 20, "no": 20}
    assert not set(d["train"]["question"]) & set(d["test"]["question"])
    assert d["test"]["question"] == make("coin_flip", n_train=50, n_test=40, n_people=3).load()["test"]["question"]
    assert d["test"]["question"] != make("coin_flip", n_train=50, n_test=40, n_people=3, seed=1).load()["test"]["question"]
    for q, g in zip(d["test"]["question"], d["test"]["gold"]):
        flips = q.count(" flips the coin.")
        assert q.count("the coin.") == 3  # three people act
        assert g == ("yes" if flips % 2 == 0 else "no")


def test_last_letter_synthetic_gold():
    d = make("last_letter", n_names=3).load()
    for q, g in zip(d["test"]["question"], d["test"]["gold"]):
        words = q.split('"')[1].split()
        assert len(words) == 3 and g == "".join(w[-1] for w in words).lower()


def test_rar_files_load_with_balanced_test_split():
    coin = make("coin_flip", n_train=100, n_test=60, data_file=str(bundled_path("rar", "coin_val.json"))).load()
    assert Counter(coin["test"]["gold"]) == {"yes": 30, "no": 30}
    assert coin["train"][0]["question"].startswith("A coin is heads up.")
    assert len(coin["train"]) == 100
    ll = make("last_letter", n_train=50, n_test=30, data_file=str(bundled_path("rar", "last_letter_concatenation4.json"))).load()
    assert len(ll["test"]) == 30 and all(len(g) == 4 for g in ll["test"]["gold"])


def test_unlabeled_drops_every_gold_column():
    t = make("coin_flip")
    train = t.unlabeled(t.load()["train"])
    assert not set(train.column_names) & set(GOLD_COLUMNS)
    assert set(train.column_names) == {"id", "question"}


@pytest.mark.parametrize(
    "content, msg",
    [
        ('[{"question": "q"}]', r"lacks field\(s\) answer"),
        ('{"question": "q", "answer": "a"}\n{"question": ', "malformed JSON"),
        ("[1, 2]", "not a JSON object"),
        ("", "holds no records"),
    ],
)
def test_bad_data_files_are_user_errors(tmp_path, content, msg):
    p = tmp_path / "data.json"
    p.write_text(content)
    with pytest.raises(UserError, match=msg):
        make("last_letter", data_file=str(p)).load()


def test_missing_data_file_and_bad_sizes():
    with pytest.raises(UserError, match="not found"):
        make("coin_flip", data_file="/nonexistent/coin.json")
    with pytest.raises(UserError, match="n_train"):
        make("coin_flip", n_train=0)
    with pytest.raises(UserError, match="n_people"):
        make("coin_flip", n_people=0)


def test_too_small_file_for_balanced_split(tmp_path):
    p = tmp_path / "coin.json"
    p.write_text(json.dumps([{"inputs": "Q: x?", "targets": "yes"}] * 10))
    with pytest.raises(UserError, match="balanced test split"):
        make("coin_flip", data_file=str(p), n_test=4).load()


def test_unknown_task_lists_known():
    with pytest.raises(UserError, match="unknown task 'nope'.*coin_flip"):
        TASKS.get("nope")
