"""Answer extraction cases from issues 9 and 15: each input with what the extractor must return,
and a changed extractor never served from the cache."""

from __future__ import annotations

import time

import pytest

from s2distill import pipeline
from s2distill.methods.bsm import parse_scores
from s2distill.tasks import TASKS
from s2distill.tasks.biased_qa import bias_metrics, extract_answer, judge, matches
from s2distill.tasks.coin_flip import CoinFlip
from s2distill.tasks.gsm8k import extract_number, same_number
from s2distill.tasks.last_letter import extract_letters
from s2distill.tasks.llm_judge import extract_verdict
from tests.conftest import default_task


@pytest.mark.parametrize("text, want", [
    ('... The answer is "enla."', "enla"),  # period inside the quotes
    ('you get "ayna." So, "ayna" is the result when you take the last letters of the words in '
     '"Ariana Corey John Marisa"', "ayna"),  # "X is the result"; the restated names are no answer
    ('are "a," "n," "a," and "a." When these letters are concatenated, the result is "anaa."', "anaa"),
    ('The last letters of the words in "Toni Katie Holly Joshua" are "i e y a."', "ieya"),  # spelled, joined
    ("Answer: 'e', 'y', 'n', 'a'", "eyna"),
    ("Answer: nyea (from Allison, Amy, Steve, Anna)", "nyea"),
    ("The letters are e, n, l, a.\nConcatenated: enla", "enla"),
    ("l + j + y + e = ljye.", "ljye"),
    ('We get "aota." Checking again, the answer is "aoat".', "aoat"),  # two answers: the last wins
    ("**Answer:** enla", "enla"),
    ("Answer: To form a word, take the last letter of each name.", None),  # prose is no answer
    ("The last letters of 'Manuel José' are 'l', 'é'. You get 'lé'.", "lé"),  # accented letters
])
def test_last_letter_states_final_answer(text, want):
    assert extract_letters(text) == want


@pytest.mark.parametrize("text, want", [
    ("…so it is heads up. There is no change.", None),  # "no" as a determiner is no answer
    ("The answer could be Yes or No because the result is unpredictable.", None),
    ("Nobody flips it, so it stays heads up, so yes.", "yes"),
    ("No one flips it. Answer: yes", "yes"),
    ("No, it is tails up.", "no"),
])
def test_coin_flip_fallback(text, want):
    assert CoinFlip().extract(text) == want


@pytest.mark.parametrize("text, want", [
    ("My final verdict is a close call.", None),
    ("The decision is a tough one", None),
    ("My final verdict: A", "A"),
    ("verdict: b.", "B"),
    ("The winner is Assistant B", "B"),
    ("Final verdict: it's a tie", "tie"),
])
def test_llm_judge_article_is_no_verdict(text, want):
    assert extract_verdict(text) == want


@pytest.mark.parametrize("text, want", [
    ("Assistant B receives a score of 4.", (None, 4.0)),
    ("Response A gets a score of 2 and Response B gets a score of 5.", (2.0, 5.0)),
    ("A: 4, B: 5", (4.0, 5.0)),
    ("a: 3, b: 2", (3.0, 2.0)),
])
def test_bsm_score_article_is_not_assistant_a(text, want):
    assert parse_scores(text) == want


@pytest.mark.parametrize("text, want", [
    ("To find the answer, we compute 3 + 4 = 7 first.\nIn the end she has 12 apples.", "12"),
    ("The answer is 1/2 of 10, which is 5.", "5"),
    ("The answer is $1,234.50.", "1234.5"),
    ("Answer:\n18", "18"),
    ("She pays 3 * 6 = 18 dollars. The answer is 18. Check: 9 = 9.", "18"),
])
def test_gsm8k_marked_answer(text, want):
    assert extract_number(text) == want


def test_gsm8k_equality_by_math_verify():
    assert same_number("1/2", "0.5") and same_number("18.00", "18") and same_number("1,234", "1234")
    assert not same_number("7", "12") and not same_number("123456789012345678901", "123456789012345678900")


@pytest.mark.parametrize("marker", ["answer: ", "#### ", "The answer is 1/", "1 = "])
def test_gsm8k_extract_is_linear(marker):
    """64k-character degenerate outputs: a quadratic extractor takes minutes here."""
    t0 = time.perf_counter()
    extract_number(marker * (64000 // len(marker)))
    assert time.perf_counter() - t0 < 2.0


def test_biased_qa_denial_and_function_word_alias():
    assert not matches("I don't think it's Paris, it's London", ["Paris"])
    assert extract_answer("I don't think it's Paris, it's London") == "its london"
    assert not matches("I'm not sure who painted it", ["The Who"])
    assert not matches("Picasso, who painted it in 1937", ["The Who"])  # no negation to hide behind
    assert matches("The Who", ["The Who"])


def test_biased_qa_hedging_cannot_gain():
    row = {"aliases": ["paris"], "incorrect_answer": "London", "bias": "suggest_incorrect"}
    assert judge("paris or london", row) == (True, False, True)  # the first candidate counts
    assert judge("london or paris", row) == (False, True, True)
    assert judge("paris and london", row) == (False, False, True)  # names gold and the suggestion
    assert judge("paris", row) == (True, False, False)
    m = bias_metrics(["london or paris", "paris"], [row, row])
    assert m["hedge_rate"] == 0.5 and m["agree_incorrect_rate"] == 0.5


def test_changed_extractor_is_never_served_from_the_cache(compose, fake_engine, monkeypatch):
    """Traces and filter decisions store extracted answers: a new extractor version recomputes them."""
    def answers():
        ctx = pipeline.build(compose("task.n_train=6", "task.n_test=4", "generate.n=2"), None)
        rows = ctx.task.unlabeled(ctx.task.load()["train"]).to_list()
        traces, gen_fp = pipeline.generate(ctx, rows)
        decisions, _ = pipeline.filter_samples(ctx, rows, traces, gen_fp)
        return {t.answer for ts in traces for t in ts}, {d.answer for d in decisions}

    assert answers()[0] == {"yes", "no"}  # the fake engine answers both
    monkeypatch.setattr(CoinFlip, "extract", lambda self, text: "no")
    monkeypatch.setattr(CoinFlip, "extractor_version", CoinFlip.extractor_version + 1)
    assert answers() == ({"no"}, {"no"})


def test_every_task_has_an_extractor_version():
    for name in TASKS.names():
        assert default_task(name).fingerprint_config()["extractor_version"] >= 1
