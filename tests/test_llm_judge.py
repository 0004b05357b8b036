"""llm_judge: verdict extraction, bundled data and splits, the A/B swap, agreement and the
order-swap inconsistency metric (through ``score_arm`` and ``pipeline.evaluate``)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from s2distill import pipeline
from s2distill.errors import UserError
from s2distill.evaluate import score_arm
from s2distill.methods.base import Trace
from s2distill.tasks.base import bundled_path, to_dataset
from s2distill.tasks.llm_judge import LLMJudge, extract_verdict, swap_row, unswap


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("[[A]]", "A"),
        ("Assistant B explains it better.\n\n[[B]]", "B"),
        ("[[C]]", "tie"),
        ("[[ tie ]]", "tie"),
        ("My final verdict is [A].", "A"),
        ("Verdict: B", "B"),
        ("Final verdict: it's a tie.", "tie"),
        ("The winner is Assistant A.", "A"),
        ("Assistant A is better because it is correct.", "A"),
        ("Response B's answer is much better.", "B"),
        ("Both responses are equally good.", "tie"),
        ("It is a tie.", "tie"),
        # the instruction echoed back names every verdict: ambiguous, no answer
        ('"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, "[[C]]" for a tie', None),
        ("[[A]] ... on reflection [[B]]", None),
        ("The answer: a good one.", None),  # an article is not a verdict
        ("Both answers talk about Paris.", None),
        ("", None),
    ],
)
def test_extract_verdict(text, verdict):
    assert extract_verdict(text) == verdict


def test_target_round_trips_through_extraction():
    task = LLMJudge(n_train=4, n_test=4)
    assert [task.target(v) for v in task.labels] == ["[[A]]", "[[B]]", "[[C]]"]
    assert [task.extract(task.target(v)) for v in task.labels] == list(task.labels)


def test_bundled_pairs_are_balanced_by_construction():
    recs = [json.loads(line) for line in bundled_path("llm_judge", "pairs.jsonl").read_text().splitlines()]
    assert len(recs) == 120 and len({r["question"] for r in recs}) == 120
    assert Counter(r["human_winner"] for r in recs) == {"A": 54, "B": 54, "tie": 12}
    assert (bundled_path("llm_judge") / "README.md").is_file()


def test_split_is_balanced_disjoint_and_gold_free_for_training():
    task = LLMJudge(n_train=48, n_test=40, seed=3)
    d = task.load()
    assert Counter(d["test"]["gold"]) == {"A": 18, "B": 18, "tie": 4}  # 10% ties, rest equal A/B
    assert len(d["train"]) == 48
    assert not set(d["train"]["question"]) & set(d["test"]["question"])
    assert "gold" not in task.unlabeled(d["train"]).column_names
    assert LLMJudge(n_train=48, n_test=40, seed=3).load()["test"]["id"] == d["test"]["id"]  # seeded
    assert Counter(LLMJudge(n_train=4, n_test=10, test_tie_share=0).load()["test"]["gold"]) == {"A": 5, "B": 5}


def test_prompt_shows_both_responses_in_order():
    task = LLMJudge(n_train=4, n_test=4)
    row = {"question": "Q?", "response_a": "first", "response_b": "second"}
    p = task.direct_prompt(row)
    assert p.index("Assistant A's Answer]\nfirst") < p.index("Assistant B's Answer]\nsecond")
    assert p.endswith('"[[C]]" for a tie.')


def test_swap_and_unswap():
    row = {"id": "x", "question": "Q", "response_a": "a", "response_b": "b", "gold": "A"}
    s = swap_row(row)
    assert (s["id"], s["response_a"], s["response_b"], s["gold"]) == ("x", "b", "a", "B")
    assert swap_row(s) == row
    assert [unswap(v) for v in ("A", "B", "tie", None)] == ["B", "A", "tie", None]
    assert "gold" not in swap_row({k: v for k, v in row.items() if k != "gold"})
    p = LLMJudge(n_train=4, n_test=4).perturbation()
    assert p.name == "swap_ab" and p.row is swap_row and p.answer is unswap


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"source": "web"}, "task.source must be one of"),
        ({"test_tie_share": 1.0}, "test_tie_share must be in"),
        ({"hub": {"nope": 1}}, "unknown key"),
        ({"n_test": 200}, "cannot build a test split"),
        ({"n_test": 1}, "cannot build a test split"),
    ],
)
def test_config_errors(kw, msg):
    with pytest.raises(UserError, match=msg):
        LLMJudge(**{"n_train": 4, "n_test": 4, **kw}).load()


def test_bad_human_winner_in_data_file(tmp_path):
    f = tmp_path / "pairs.jsonl"
    f.write_text(json.dumps({"question": "q", "response_a": "a", "response_b": "b", "human_winner": "both"}) + "\n")
    with pytest.raises(UserError, match="human_winner must be A, B or tie"):
        LLMJudge(n_train=1, n_test=2, data_file=str(f)).load()


def test_hub_failure_is_one_user_error(monkeypatch):
    import datasets

    def offline(*a, **kw):
        raise ConnectionError("Couldn't reach 'lmsys/mt_bench_human_judgments' on the Hub\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError, match="cannot load 'OpenAssistant/oasst2'.*ConnectionError.*task.source=local") as e:
        LLMJudge(n_train=4, n_test=4, source="hub").load()
    assert "\n" not in str(e.value)


def test_hub_offline_cli_fails_with_one_line(cli, monkeypatch):
    # the real datasets call with the hub unreachable (offline mode makes it fail fast)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    r = cli("method=system1", "task=llm_judge", "task.source=hub")
    assert r.returncode == 2, r.stderr[-2000:]
    err = [line for line in r.stderr.splitlines() if line.startswith("s2distill: error:")]
    assert len(err) == 1 and "cannot load 'OpenAssistant/oasst2'" in err[0] and "task.source=local" in err[0]


def test_agreement_with_and_without_human_ties():
    task = LLMJudge(n_train=4, n_test=4)
    rows = [{"gold": g} for g in ("A", "B", "tie", "A")]
    m = task.extra_metrics(["A", "tie", "tie", None], rows)
    assert m["agreement"] == 0.5  # A and the tie match
    # MT-bench's "without tie": human ties AND tie verdicts leave the count; an abstention stays (wrong)
    assert m["agreement_non_tie"] == 1 / 2 and m["n_non_tie"] == 2


def test_agreement_counts_each_annotators_vote():
    task = LLMJudge(n_train=4, n_test=4)
    rows = [{"gold": "A", "human_votes": ["A", "A", "B"]}, {"gold": "tie", "human_votes": ["tie", "B"]}]
    m = task.extra_metrics(["A", "B"], rows)
    assert m["n_votes"] == 5 and m["agreement"] == 3 / 5  # A,A of row 1 and B of row 2
    assert m["n_non_tie"] == 4 and m["agreement_non_tie"] == 3 / 4  # row 2's human tie dropped


def _vote(qid, model_a, model_b, winner, judge, turn=1):
    conv = lambda m: [{"role": "user", "content": f"q{qid}"}, {"role": "assistant", "content": f"{m} says"}]  # noqa: E731
    return {"question_id": qid, "model_a": model_a, "model_b": model_b, "winner": winner, "judge": judge,
            "turn": turn, "conversation_a": conv(model_a), "conversation_b": conv(model_b)}


def test_mt_bench_pairs_aggregates_annotators(monkeypatch):
    from s2distill.tasks import llm_judge

    votes = [
        _vote(81, "gpt-4", "llama", "model_a", "expert_1"),
        _vote(81, "llama", "gpt-4", "model_b", "expert_2"),  # same pair, models swapped: also gpt-4
        _vote(81, "gpt-4", "llama", "tie (bothbad)", "author_3"),
        _vote(81, "gpt-4", "llama", "model_b", "expert_4", turn=2),  # second turn: not used
        _vote(82, "gpt-4", "llama", "model_a", "expert_1"),
        _vote(82, "gpt-4", "llama", "model_b", "expert_2"),  # 1 vs 1: plurality tied → gold tie
        _vote(82, "alpaca", "llama", "tie", "expert_3"),  # another pair of the same question
    ]
    monkeypatch.setattr(llm_judge, "hub_dataset", lambda name, split: votes)
    pairs = llm_judge.mt_bench_pairs(llm_judge.HUB_DEFAULTS)
    assert len(pairs) == 3  # one row per (question, model pair), not per vote
    p81, p82, p82b = pairs
    assert (p81["response_a"], p81["response_b"]) == ("gpt-4 says", "llama says")
    assert p81["human_votes"] == ["A", "A", "tie"] and p81["gold"] == "A"
    assert p82["human_votes"] == ["A", "B"] and p82["gold"] == "tie"
    assert p82b["human_votes"] == ["tie"] and p82b["gold"] == "tie"
    assert "human_votes" not in LLMJudge(n_train=1, n_test=2).unlabeled(to_dataset(pairs, "test")).column_names


def _traces(answers):
    return [[Trace(a, str(a), 2)] for a in answers]


def test_score_arm_inconsistency():
    task = LLMJudge(n_train=4, n_test=4)
    rows = [{"gold": g} for g in ("A", "B", "tie", "A", "B")]
    original = ["A", "B", "tie", None, "A"]
    swapped_raw = ["B", "B", "tie", "A", None]  # as emitted on the swapped rows
    m = score_arm(task, rows, _traces(original), _traces(swapped_raw))
    # back in the original order: A, A, tie, B, None -> answered both: 3, of which 1 changed
    assert m["n_answered_both"] == 3
    assert m["inconsistent_rate"] == pytest.approx(1 / 3)
    assert m["consistent_rate"] == pytest.approx(2 / 5)
    assert m["perturbed"]["name"] == "swap_ab"
    assert m["perturbed"]["answer_distribution"] == {"B": 2, "tie": 1, "A": 1, "<none>": 1}
    assert m["perturbed"]["acc"] == pytest.approx(2 / 5)  # A and tie right after mapping back
    assert m["acc"] == m["agreement"] == pytest.approx(3 / 5)
    # a judge that always says "A" is perfectly position-biased: every answered pair flips
    assert score_arm(task, rows, _traces("AAAAA"), _traces("AAAAA"))["inconsistent_rate"] == 1.0
    assert "inconsistent_rate" not in score_arm(task, rows, _traces(original))


def test_pipeline_evaluate_runs_the_swapped_rows_as_their_own_artifact(compose, monkeypatch, tmp_path):
    import s2distill.engines as engines
    from tests.conftest import FakeEngine

    made: list[FakeEngine] = []

    def make_engine(model, cfg):
        made.append(FakeEngine(model, answers=("[[A]]", "[[B]]", "[[C]]")))
        return made[-1]

    monkeypatch.setattr(engines, "make_engine", make_engine)
    ctx = pipeline.build(compose("task=llm_judge", "method=system1", "task.n_train=4", "task.n_test=10"), tmp_path / "run")
    rows = ctx.task.load()["test"].to_list()
    with ctx.engines:
        m = pipeline.evaluate(ctx, "system1", rows)
    assert made[0].calls == [(10, 1), (10, 1)]  # original and swapped rows, one call each
    assert 0 <= m["inconsistent_rate"] <= 1 and m["n_answered_both"] == 10
    assert {"eval_system1", "eval_system1_swap_ab"} <= set(ctx.store.misses)
    swapped = [json.loads(x) for x in (tmp_path / "run" / "artifacts" / "eval_system1_swap_ab.jsonl").read_text().splitlines()]
    assert [r["id"] for r in swapped] == [r["id"] for r in rows]
