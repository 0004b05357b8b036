"""The order-swap filter: per-order majority votes, un-swapping, agreement, and a fake resample."""

from __future__ import annotations

import pytest

from s2distill.errors import UserError
from s2distill.filters import FILTERS, FilterTools
from s2distill.filters.swap import Swap, decide_pair
from s2distill.methods.base import Trace
from s2distill.tasks.coin_flip import CoinFlip
from s2distill.tasks.llm_judge import LLMJudge


def test_agreeing_orders_are_kept_with_both_votes_recorded():
    d = decide_pair(["A", "A", "B", None], ["A", "A", "A", "A"], 0.5, "drop")
    assert (d.kept, d.answer, d.reason) == (True, "A", "consistent")
    assert d.extra["original"] == {"answer": "A", "reason": "majority", "votes": {"A": 2, "B": 1}, "abstentions": 1}
    assert d.extra["swapped"]["votes"] == {"A": 4} and d.extra["swapped"]["answer"] == "A"
    assert d.votes == {"A": 6, "B": 1} and d.abstentions == 1


@pytest.mark.parametrize(
    "original, swapped_back, reason",
    [
        (["A", "A"], ["B", "B"], "order_disagree"),  # e.g. a judge that always prefers one position
        (["A", "B"], ["A", "A"], "original_tie"),  # a split vote in one order is no verdict
        (["A", "A"], [None, None], "swapped_no_answer"),
        (["A", "A", "A", "A"], ["A", None, None, None], "swapped_below_threshold"),
        (["tie", "tie"], ["A", "A"], "order_disagree"),
    ],
)
def test_dropped(original, swapped_back, reason):
    d = decide_pair(original, swapped_back, 0.5, "drop")
    assert (d.kept, d.answer, d.reason) == (False, None, reason)
    assert d.extra["original"]["votes"] and "swapped" in d.extra


def test_tie_verdicts_in_both_orders_are_a_consistent_tie():
    assert decide_pair(["tie", "tie"], ["tie", None], 0.5, "drop").answer == "tie"
    assert not decide_pair(["tie", "tie"], ["tie", None], 0.75, "drop").kept  # threshold applies per order


def _traces(answers):
    return [Trace(a, f"[[{a}]]", 1) for a in answers]


def test_decide_resamples_swapped_rows_and_unswaps():
    rows = [{"id": f"r{i}", "question": f"Q{i}", "response_a": f"a{i}", "response_b": f"b{i}"} for i in range(3)]
    seen = {}

    def resample(variant_rows, tag):
        seen["rows"], seen["tag"] = variant_rows, tag
        # as emitted on the swapped rows, so "B" there means original "A"
        return [_traces(["B", "B"]), _traces(["B", "B"]), _traces(["tie", "tie"])]

    def no_engine():
        raise AssertionError("the swap filter never prompts the engine itself")

    original = [_traces(["A", "A"]), _traces(["B", "B"]), _traces(["tie", "A"])]
    ds = FILTERS.get("swap")().decide(rows, original, LLMJudge(n_train=4, n_test=4), FilterTools(no_engine, resample))
    assert seen["tag"] == "swap_ab"
    assert [(r["id"], r["response_a"], r["response_b"]) for r in seen["rows"]] == [(f"r{i}", f"b{i}", f"a{i}") for i in range(3)]
    assert [(d.kept, d.answer, d.reason) for d in ds] == [
        (True, "A", "consistent"), (False, None, "order_disagree"), (False, None, "original_tie")]
    assert ds[0].extra["swapped"]["votes"] == {"A": 2}  # recorded in the original order


def test_task_without_perturbation_is_a_user_error():
    tools = FilterTools(lambda: None, lambda rows, tag: [])
    with pytest.raises(UserError, match="filter swap needs a task with an order perturbation"):
        Swap().decide([{"id": "x", "question": "q"}], [[]], CoinFlip(n_train=4, n_test=4), tools)


@pytest.mark.parametrize("kw, msg", [({"threshold": 0}, "threshold must be in"), ({"tie": "first"}, "tie must be one of")])
def test_bad_options(kw, msg):
    with pytest.raises(UserError, match=msg):
        Swap(**kw)
