"""Majority vote with an agreement threshold and an explicit tie rule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from s2distill.errors import UserError
from s2distill.filters.base import FILTERS, Decision, Filter, FilterTools
from s2distill.methods.base import Trace
from s2distill.tasks.base import Task

TIE_RULES = ("drop",)


def vote(answers: Sequence[str | None], threshold: float, tie: str = "drop") -> Decision:
    """Keep the top answer when its share of *all* samples is >= ``threshold``.

    Unparseable answers (``None``) are abstentions: they vote for nothing but still count in
    the denominator, so a model that rarely answers cannot pass. A tie for the top answer is
    dropped (the only rule: breaking ties by order would invent a label).
    """
    counts = Counter(a for a in answers if a is not None)
    abstain = sum(a is None for a in answers)
    votes = dict(counts.most_common())
    if not counts:
        return Decision(False, None, "no_answer", votes, abstain)
    ranked = counts.most_common()
    top, top_n = ranked[0]
    if len(ranked) > 1 and ranked[1][1] == top_n:
        return Decision(False, None, "tie", votes, abstain)
    share = top_n / len(answers)
    if share < threshold:
        return Decision(False, top, "below_threshold", votes, abstain, {"share": share})
    return Decision(True, top, "majority", votes, abstain, {"share": share})


@FILTERS.register("majority")
class Majority(Filter):
    name = "majority"

    def __init__(self, threshold: float = 0.75, tie: str = "drop") -> None:
        if not 0 < float(threshold) <= 1:
            raise UserError(f"filter.threshold must be in (0, 1] (got {threshold})")
        if tie not in TIE_RULES:
            raise UserError(f"filter.tie must be one of {TIE_RULES} (got {tie!r})")
        self.threshold = float(threshold)
        self.tie = tie

    def decide(
        self, rows: list[dict[str, Any]], traces: list[list[Trace]], task: Task, tools: FilterTools
    ) -> list[Decision]:
        return [vote([t.answer for t in ts], self.threshold, self.tie) for ts in traces]
