"""GSM8k: gold parsing, number extraction, loading, majority@k scoring, and real-engine runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from s2distill.errors import UserError
from s2distill.evaluate import score_arm
from s2distill.methods.base import Trace
from s2distill.tasks import TASKS
from s2distill.tasks.base import GOLD_COLUMNS
from s2distill.tasks.gsm8k import extract_number, gold_answer, normalise, same_number

FULL = Path("/work/shared/data/gsm8k")  # the full data set on the dev machines (not required)


def make(**kw):
    return TASKS.get("gsm8k")(**{"n_train": 20, "n_test": 10, "seed": 0, **kw})


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def record(q: str, gold: str) -> dict:
    return {"question": q, "answer": f"Some work <<2*3=6>>6.\n#### {gold}"}


# -- extraction -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, want",
    [
        ("Answer: 1,234", "1234"),
        ("The answer is $18.", "18"),
        ("She sold 48 + 24 clips.\n#### 72", "72"),
        ("So the total is \\boxed{5}.", "5"),
        ("\\boxed{1,000} dollars", "1000"),
        ("The temperature drops to -7 degrees. Answer: -7", "-7"),
        ("#### -3", "-3"),
        ("Answer: 18.00", "18"),
        ("The answer is 0.50 dollars.", "0.5"),
        ("He pays $2.5 per hour. Answer: 2.5.", "2.5"),
        ("**Answer:** $1,000", "1000"),
        ("Final answer:\n\n42", "42"),
        ("Answer: 5 + 3 = 8.", "8"),
        ("The answer is 12 apples and 3 pears.", "12"),
        # the last marker wins over earlier ones of the same kind; boxed beats "answer"
        ("Answer: 5. Wait, I made a mistake. Answer: 6", "6"),
        ("The answer is 7, i.e. \\boxed{8}", "8"),
        ("#### 9\nThe answer is 10", "9"),
        # no marker: the last number in the text
        ("48 / 2 = 24 in May, so 48 + 24 = 72.", "72"),
        ("10-5 leaves 5", "5"),
        ("Answer: 007", "7"),
        ("Answer: -0", "0"),
        # a marker without a number falls back to the last number before it
        ("We get 15 in total. Answer: <number>", "15"),
        ("She has 3 cats. The answer is unclear.", "3"),
        # abstentions
        ("I don't know.", None),
        ("", None),
        ("Answer: <number>", None),
        ("\\boxed{}", None),
        ("### Answer: ...", None),
    ],
)
def test_extract(text, want):
    assert extract_number(text) == want
    assert make().extract(text) == want


def test_extract_very_long_and_garbled_output_is_fast_and_takes_the_last_number():
    text = "1,2,3,4,5 " * 20000 + ("-" * 5000) + "," * 5000 + " so 31337"
    assert extract_number(text) == "31337"
    assert extract_number("9" * 5000) == "9" * 5000  # exact, not rounded through a float
    assert extract_number("\x00\ufffd" * 1000) is None


@pytest.mark.parametrize(
    "raw, want",
    [("18.00", "18"), ("1,200", "1200"), ("$5", "5"), ("-0.0", "0"), (".5", "0.5"), ("−4", "-4"),
     ("0012.340", "12.34"), ("abc", None), ("-", None), (".", None), ("1e5", None), ("", None)],
)
def test_normalise(raw, want):
    assert normalise(raw) == want


def test_same_number_compares_numerically():
    assert same_number("18", "18.00") and same_number("1,234", "1234") and same_number("$-2", "-2.0")
    assert not same_number("18", "180") and not same_number("x", "x")
    t = make()
    assert t.is_correct("18", {"gold": "18"}) and not t.is_correct(None, {"gold": "18"})
    assert t.is_correct(t.extract("The answer is $18.00."), {"gold": gold_answer("#### 18")})


# -- gold parsing and loading -------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, want",
    [("48/2 = <<48/2=24>>24 clips.\n#### 72", "72"), ("#### 1,080", "1080"), ("x\n#### -47", "-47"),
     ("#### 5\n#### 6", "6"), ("no final answer here", None), ("#### seventy", None)],
)
def test_gold_answer(answer, want):
    assert gold_answer(answer) == want


def test_bundled_slice_loads_seeded_with_numeric_golds_and_no_rationale():
    d = make(n_train=300, n_test=200).load()
    assert (len(d["train"]), len(d["test"])) == (300, 200)
    assert set(d["train"].column_names) == {"id", "question", "gold"}
    assert all(normalise(g) == g for g in d["test"]["gold"])
    assert not set(d["train"]["question"]) & set(d["test"]["question"])
    def questions(**kw):
        return list(make(**kw).load()["test"]["question"])

    assert questions() == questions() and questions(seed=1) != questions()
    t = make()
    assert t.unlabeled(t.load()["train"]).column_names == ["id", "question"]
    assert "gold" in GOLD_COLUMNS


def test_data_file_is_split_and_train_test_files_are_sampled(tmp_path):
    recs = [record(f"Q{i}?", str(i)) for i in range(30)]
    one = write_jsonl(tmp_path / "all.jsonl", recs)
    d = make(data_file=str(one), n_train=20, n_test=10).load()
    assert sorted([*d["train"]["question"], *d["test"]["question"]]) == sorted(r["question"] for r in recs)
    assert all(q == f"Q{g}?" for q, g in zip(d["test"]["question"], d["test"]["gold"]))

    tr = write_jsonl(tmp_path / "tr.jsonl", recs[:20])
    te = write_jsonl(tmp_path / "te.jsonl", recs[20:])
    d = make(train_file=str(tr), test_file=str(te), n_train=5, n_test=10).load()
    assert len(d["train"]) == 5 and sorted(d["test"]["gold"], key=int) == [str(i) for i in range(20, 30)]


def test_fingerprint_follows_file_content(tmp_path):
    tr = write_jsonl(tmp_path / "tr.jsonl", [record("Q?", "1")])
    te = write_jsonl(tmp_path / "te.jsonl", [record("R?", "2")])
    before = make(train_file=str(tr), test_file=str(te)).fingerprint_config()
    write_jsonl(te, [record("R?", "3")])
    assert make(train_file=str(tr), test_file=str(te)).fingerprint_config() != before


@pytest.mark.skipif(not FULL.is_dir(), reason="full GSM8k not on this machine")
def test_full_gsm8k_files_parse():
    d = make(train_file=str(FULL / "train.jsonl"), test_file=str(FULL / "test.jsonl"), n_train=7473, n_test=1319).load()
    assert len(d["train"]) == 7473 and all(normalise(g) == g for g in d["train"]["gold"])


@pytest.mark.parametrize(
    "lines, match",
    [
        (['{"question": "Q?", "answer": "#### 1"}', '{"question": "R?", "answer": '], "malformed JSON .* line 2"),
        (['{"question": "Q?"}'], "lacks field.*answer"),
        (['{"answer": "#### 1"}'], "lacks field.*question"),
        (['{"question": "Q?", "answer": "one"}'], "record 1: answer has no '#### <number>'"),
        (['["not", "an", "object"]'], "not a JSON object"),
        ([""], "no records"),
    ],
)
def test_bad_data_file_is_a_user_error(tmp_path, lines, match):
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=match):
        make(data_file=str(p)).load()


def test_bad_options_are_user_errors(tmp_path):
    f = write_jsonl(tmp_path / "a.jsonl", [record("Q?", "1")] * 3)
    with pytest.raises(UserError, match="give both or neither"):
        make(train_file=str(f))
    with pytest.raises(UserError, match="not found"):
        make(train_file=str(f), test_file=str(tmp_path / "missing.jsonl"))
    with pytest.raises(UserError, match="one GSM8k source"):
        make(data_file=str(f), hub="openai/gsm8k")
    with pytest.raises(UserError, match="task.n_train=20 but the data holds only 3"):
        make(train_file=str(f), test_file=str(f), n_test=2).load()
    with pytest.raises(UserError, match="too few"):
        make(data_file=str(f)).load()


def test_hub_offline_is_one_user_error(monkeypatch, tmp_path):
    # the real datasets client, forced offline with an empty cache (deterministic with or
    # without network, and without the retries that take ~25 s when the network is down)
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="cannot load 'openai/gsm8k' .* from the Hub") as e:
        make(hub="openai/gsm8k").load()
    assert "\n" not in str(e.value)


def test_hub_source_goes_through_load_dataset(monkeypatch, tmp_path):
    # a local folder in the Hub layout stands in for openai/gsm8k (same loader, no network)
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    hub = tmp_path / "gsm8k"
    hub.mkdir()
    write_jsonl(hub / "train.jsonl", [record(f"Q{i}?", f"{i},000") for i in range(6)])
    write_jsonl(hub / "test.jsonl", [record(f"R{i}?", str(-i)) for i in range(4)])
    d = make(hub=str(hub), hub_config=None, n_train=6, n_test=4).load()
    assert sorted(d["train"]["gold"], key=int) == [f"{i}000" if i else "0" for i in range(6)]
    assert set(d["test"]["gold"]) == {"0", "-1", "-2", "-3"} and d["test"].column_names == ["id", "question", "gold"]
    with pytest.raises(UserError, match="BuilderConfig 'main' not found"):
        make(hub=str(hub)).load()


# -- majority@k scoring -------------------------------------------------------------------------
def test_majority_at_k_scoring():
    t = make()
    rows = [{"gold": "18"}, {"gold": "72"}, {"gold": "5"}, {"gold": "10"}]
    outputs = [
        ["Answer: 18", "The answer is $18.00.", "#### 17"],  # 18 wins 2-1: spellings vote together
        ["Answer: 70", "Answer: 72", "no idea"],             # 70 vs 72 tie: no prediction
        ["\\boxed{5}", "I give up.", "Nothing."],            # 5 wins over two abstentions
        ["Answer: 1,000", "Answer: 1000", "Answer: 10"],     # wrong majority
    ]
    traces = [[Trace(t.extract(o), o, 4) for o in outs] for outs in outputs]
    m = score_arm(t, rows, traces)
    assert m["n"] == 4 and m["acc"] == 0.5
    assert m["abstain_rate"] == 0.25
    assert m["answer_distribution"] == {"18": 1, "<none>": 1, "5": 1, "1000": 1}
    assert m["balanced_acc"] is None and m["mean_tokens"] == 3 * 4  # per input: all k=3 samples
    # k=1 scores the single sample
    assert score_arm(t, rows[:1], [traces[0][2:]])["acc"] == 0.0


# -- real engine ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_cot_on_two_questions_real_engine(vllm_engine):
    from s2distill.engines.base import Sampling
    from s2distill.methods.cot import CoT

    t = make(n_train=2, n_test=2)
    rows = t.unlabeled(t.load()["test"]).to_list()
    traces = CoT(max_tokens={"reason": 96}).run(rows, t, vllm_engine, 2, Sampling(temperature=0.7))
    assert [len(ts) for ts in traces] == [2, 2]
    for ts in traces:
        for tr in ts:
            assert tr.text.strip() and 0 < tr.tokens <= 96
            # the answer is a number the model wrote (not the question's, not a default)
            assert tr.answer is None or tr.answer in {normalise(x) for x in re.findall(r"-?[\d,]*\.?\d+", tr.text)}
            assert tr.answer is None or normalise(tr.answer) == tr.answer


@pytest.mark.slow
def test_cli_cot_gsm8k_with_majority_at_k_eval(cli, tmp_path):
    r = cli("method=cot", "task=gsm8k", "task.n_train=4", "task.n_test=4", "generate.n=2",
            "method.max_tokens.reason=96", "eval.k=3", "eval.temperature=0.7",
            "train.sft.num_train_epochs=1", "engine.use_tqdm=false")
    assert r.returncode == 0, r.stderr[-3000:]
    (res_path,) = (tmp_path / "out").rglob("results.json")
    res = json.loads(res_path.read_text())
    assert (res["task"], res["method"], res["n_train"], res["n_test"], res["eval_k"]) == ("gsm8k", "cot", 4, 4, 3)
    for arm in ("system1", "system2"):
        m = res[arm]
        assert m["n"] == 4 and 0 <= m["acc"] <= 1 and m["mean_tokens"] > 0
        assert all(a == "<none>" or normalise(a) == a for a in m["answer_distribution"])
    assert (res["distilled"] is None) == (res["n_kept"] == 0)
    # majority@k: every test input was sampled k=3 times in both arms
    for arm in ("system1", "system2"):
        recs = [json.loads(x) for x in (res_path.parent / "artifacts" / f"eval_{arm}.jsonl").read_text().splitlines()]
        assert len(recs) == 4 and all(len(rec["traces"]) == 3 for rec in recs)
        # mean_tokens is the cost per test input: all k samples of it, as recorded in the artifact
        per_input = [sum(t["tokens"] for t in rec["traces"]) for rec in recs]
        assert res[arm]["mean_tokens"] == pytest.approx(sum(per_input) / len(per_input))
