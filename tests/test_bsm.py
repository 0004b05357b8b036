"""Branch-Solve-Merge: parsing of plans and scores (incl. malformed outputs), the merge rules,
the engine-call structure with a scripted engine, then the real engine and the whole command."""

from __future__ import annotations

import json

import pytest

from s2distill.engines.base import Completion, Sampling
from s2distill.errors import UserError
from s2distill.methods.bsm import BSM, GENERIC_CRITERIA, merge_sum, parse_criteria, parse_scores
from s2distill.tasks.coin_flip import CoinFlip
from s2distill.tasks.llm_judge import LLMJudge

PLAN = """Evaluation Plan:
1. **Accuracy**: check the facts.
2) Helpfulness - does it answer?
- Clarity: is it easy to read?
* Accuracy: check the facts.
Criterion 5: Depth of the answer
"""


def test_parse_criteria_numbered_bulleted_markdown_deduplicated():
    assert parse_criteria(PLAN, 3) == ["Accuracy: check the facts.", "Helpfulness - does it answer?",
                                       "Clarity: is it easy to read?"]
    assert parse_criteria(PLAN, 10)[-1] == "Depth of the answer"  # the duplicate Accuracy is dropped
    assert len(parse_criteria(PLAN, 10)) == 4
    assert parse_criteria(PLAN, 1) == ["Accuracy: check the facts."]


@pytest.mark.parametrize("text", ["", "The responses should be good and correct.", "1.\n-\n* **", "[Evaluation Plan]"])
def test_parse_criteria_none(text):
    assert parse_criteria(text, 3) == []


@pytest.mark.parametrize(
    "text, scores",
    [
        ("A: 4, B: 3", (4, 3)),
        ("Assistant A is accurate. Assistant B is not.\nAssistant A: 5/5\nAssistant B: 2/5", (5, 2)),
        ("**A**: 4\n**B**: 1", (4, 1)),
        ("Score for A: 2; score for assistant B = 5", (2, 5)),
        ("Response A's score - 3, Response B's score - 3", (3, 3)),
        ("A gets 4 and B gets 2.5", (4, 2.5)),
        ("A: 1\nB: 2\nOn reflection, A: 5, B: 2", (5, 2)),  # the last scores count
        ("A: 7, B: 9", (None, None)),  # off the 1-5 scale
        ("A: 8/10, B: 4/10", (None, None)),  # another scale is not guessed at
        ("A: 4", (4, None)),
        ('Scores: "A: <score>, B: <score>"', (None, None)),
        ("Both responses are fine.", (None, None)),
        ("", (None, None)),
    ],
)
def test_parse_scores(text, scores):
    assert parse_scores(text) == scores


def test_merge_sum():
    assert merge_sum([(4, 3), (2, 2)]) == ("A", 6, 5)
    assert merge_sum([(1, 3), (2, 2)]) == ("B", 3, 5)
    assert merge_sum([(3, 3), (4, 4)]) == ("tie", 7, 7)
    # a criterion with one score missing counts for neither side
    assert merge_sum([(5, None), (2, 3)]) == ("B", 2, 3)
    assert merge_sum([(5, None), (None, 1), (None, None)]) == (None, 0, 0)
    assert merge_sum([]) == (None, 0, 0)


class ScriptedEngine:
    """Answers each step with canned text chosen by the step's ``desc``; records every call."""

    def __init__(self, branch: list[str], solve: list[str], merge: str = "[[B]]"):
        self.model = "scripted"
        self.script = {"bsm: branch": branch, "bsm: solve": solve, "bsm: merge": [merge]}
        self.calls: list[tuple[str, int, int]] = []

    def generate(self, chats, n, sampling, desc=""):
        self.calls.append((desc, len(chats), n))
        texts = self.script[desc]
        out, i = [], 0
        for _ in chats:
            cs = []
            for _ in range(n):
                cs.append(Completion(texts[i % len(texts)], 10 + i))
                i += 1
            out.append(cs)
        return out

    def close(self):
        pass


ROWS = [{"id": f"r{i}", "question": f"Q{i}?", "response_a": "a", "response_b": "b"} for i in range(2)]


def test_run_structure_fallback_and_tokens():
    # input 0: a 2-item plan and a plan that does not parse; input 1 likewise (n=2 samples each)
    eng = ScriptedEngine(branch=["1. Accuracy\n2. Clarity", "I like both."], solve=["A: 4, B: 2", "A: 3, B: 5", "garbled"])
    traces = BSM(k=3).run(ROWS, LLMJudge(n_train=4, n_test=4), eng, 2, Sampling())
    # one call per step for all inputs: branch with n=2, solve with n=1 for every criterion of every sample
    assert eng.calls == [("bsm: branch", 2, 2), ("bsm: solve", 2 * (2 + 3), 1)]
    assert [len(ts) for ts in traces] == [2, 2]
    parsed, fallback = traces[0]
    assert parsed.steps["criteria"] == ["Accuracy", "Clarity"] and parsed.steps["criteria_source"] == "parsed"
    assert fallback.steps["criteria"] == list(GENERIC_CRITERIA[:3]) and fallback.steps["criteria_source"] == "fallback"
    # solve texts cycle: parsed plan gets "A: 4, B: 2", "A: 3, B: 5" -> totals 7 vs 7
    assert parsed.steps["scores"] == [[4, 2], [3, 5]] and parsed.answer == "tie"
    assert "Total A: 7, B: 7 -> tie" in parsed.text
    # fallback plan: "garbled", "A: 4, B: 2", "A: 3, B: 5" -> 7 vs 7 over the two usable criteria
    assert fallback.steps["scores"] == [[None, None], [4, 2], [3, 5]]
    # tokens: its branch sample plus all its solve calls (ScriptedEngine counts 10 + position)
    assert parsed.tokens == 10 + (10 + 0) + (10 + 1)
    assert fallback.tokens == 11 + (10 + 2) + (10 + 3) + (10 + 4)


def test_run_no_usable_score_is_no_answer_and_llm_merge():
    eng = ScriptedEngine(branch=["1. Accuracy"], solve=["I cannot say."])
    (t,), = BSM(k=3).run(ROWS[:1], LLMJudge(n_train=4, n_test=4), eng, 1, Sampling())
    assert t.answer is None and t.steps["scores"] == [[None, None]]

    eng = ScriptedEngine(branch=["1. Accuracy\n2. Clarity"], solve=["A: 1, B: 5"], merge="B is better overall. [[B]]")
    (t,), = BSM(k=2, merge="llm").run(ROWS[:1], LLMJudge(n_train=4, n_test=4), eng, 1, Sampling())
    assert eng.calls[-1] == ("bsm: merge", 1, 1)
    assert t.answer == "B" and t.text == "B is better overall. [[B]]"
    assert t.tokens == 10 + 10 + 11 + 10  # branch + 2 solve + merge


@pytest.mark.parametrize("kw, msg", [({"k": 0}, "k must be >= 1"), ({"merge": "vote"}, "merge must be one of"),
                                     ({"max_tokens": {"rephrase": 3}}, "unknown step")])
def test_bad_options(kw, msg):
    with pytest.raises(UserError, match=msg):
        BSM(**kw)


def test_options_change_the_fingerprint():
    assert BSM(k=3).fingerprint_config() != BSM(k=4).fingerprint_config() != BSM(merge="llm").fingerprint_config()


def test_bsm_applies_only_to_llm_judge():
    BSM().check_task(LLMJudge(n_train=4, n_test=4))
    with pytest.raises(UserError, match="method 'bsm' does not apply to task 'coin_flip'"):
        BSM().check_task(CoinFlip(n_train=4, n_test=4))


def test_cli_bsm_on_coin_flip_fails_with_one_line(cli):
    r = cli("method=bsm", "task=coin_flip")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "s2distill: error: method 'bsm' does not apply to task 'coin_flip' (it runs on: llm_judge)")
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_bsm_real_engine(vllm_engine):
    task = LLMJudge(n_train=4, n_test=4)
    rows = task.unlabeled(task.load()["train"]).to_list()[:2]
    m = BSM(k=2, max_tokens={"branch": 64, "solve": 64})
    traces = m.run(rows, task, vllm_engine, 2, Sampling(temperature=0.8, top_p=0.95))
    assert [len(ts) for ts in traces] == [2, 2]
    for ts in traces:
        for t in ts:
            assert t.answer in (None, *task.labels)
            assert 1 <= len(t.steps["criteria"]) <= 2 and t.steps["criteria_source"] in ("parsed", "fallback")
            assert len(t.steps["solve"]) == len(t.steps["criteria"]) == len(t.steps["scores"])
            # tokens cover the branch and every solve call, each bounded by its max_tokens
            assert len(t.steps["criteria"]) + 1 <= t.tokens <= 64 * (1 + len(t.steps["criteria"]))
    (t,), = BSM(k=1, merge="llm", max_tokens={"branch": 48, "solve": 48, "merge": 48}).run(
        rows[:1], task, vllm_engine, 1, Sampling(temperature=0.0, top_p=1.0))
    assert t.answer in (None, *task.labels) and t.text and t.tokens <= 3 * 48


JUDGE_TINY = ("method=bsm", "task=llm_judge", "task.n_train=6", "task.n_test=4", "generate.n=2", "method.k=2",
              "method.max_tokens.branch=48", "method.max_tokens.solve=48", "train.sft.num_train_epochs=1",
              "train.sft.per_device_train_batch_size=2", "engine.use_tqdm=false")
JUDGE_METRICS = ("agreement", "agreement_non_tie", "balanced_acc", "inconsistent_rate", "consistent_rate", "perturbed")


def _results(out) -> tuple[dict, object]:
    path = sorted(out.rglob("results.json"))[-1]
    return json.loads(path.read_text()), path.parent / "artifacts"


@pytest.mark.slow
def test_cli_bsm_llm_judge_swap_end_to_end(cli, tmp_path):
    r = cli(*JUDGE_TINY, "filter=swap")
    assert r.returncode == 0, r.stderr[-3000:]
    res, arts = _results(tmp_path / "out")
    assert (res["task"], res["method"], res["filter"], res["n_train"], res["n_test"]) == ("llm_judge", "bsm", "swap", 6, 4)
    # the distilled arm exists exactly when the filter kept something (at 135M it rarely does)
    assert (res["distilled"] is None) == (res["n_kept"] == 0)
    for arm in ("system1", "system2") + (("distilled",) if res["n_kept"] else ()):
        m = res[arm]
        assert all(key in m for key in JUDGE_METRICS), arm
        assert m["n"] == 4 and sum(m["answer_distribution"].values()) == 4
    assert res["system2"]["mean_tokens"] > res["system1"]["mean_tokens"]
    # the swapped-order samples are their own artifact beside (not over) the original ones
    for name in ("generate", "generate_swap_ab", "filter", "eval_system1_swap_ab", "eval_system2_swap_ab"):
        assert (arts / f"{name}.jsonl").is_file(), name
    decisions = [json.loads(x) for x in (arts / "filter.jsonl").read_text().splitlines()]
    assert len(decisions) == 6 and all({"original", "swapped"} <= set(d["extra"]) for d in decisions)
    assert res["n_kept"] == sum(d["kept"] for d in decisions)

    # same cache, a looser filter: only filter, training and the distilled arm are computed, and
    # the distilled arm reports the judge metrics too
    r = cli(*JUDGE_TINY, "filter=majority", "filter.threshold=0.5")
    assert r.returncode == 0, r.stderr[-3000:]
    res2, _ = _results(tmp_path / "out")
    assert res2["filter"] == "majority" and res2["n_kept"] > 0, res2["filter_reasons"]
    assert not {"generate", "eval_system1", "eval_system2"} & set(res2["computed"]), res2["computed"]
    assert all(key in res2["distilled"] for key in JUDGE_METRICS)
    assert res2["system2"] == res["system2"]
