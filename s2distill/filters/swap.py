"""Order-swap consistency (input perturbation): keep an input only when its verdict survives
swapping the two responses.

The method runs again on the perturbed rows (``task.perturbation()``, e.g. A/B swapped) through
``FilterTools.resample``, cached as its own artifact. Each order is majority-voted separately
(``filters.majority.vote``: threshold on the share of all samples, ties dropped); the swapped
verdict is mapped back to the original order, and the input is kept when both votes pass and agree.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from s2distill.errors import UserError
from s2distill.filters.base import FILTERS, Decision, FilterTools
from s2distill.filters.majority import Majority, vote
from s2distill.methods.base import Trace
from s2distill.tasks.base import Perturbation, Task


def decide_pair(original: list[str | None], swapped_back: list[str | None], threshold: float, tie: str) -> Decision:
    """The decision for one input from its answers in both orders (swapped ones already mapped back)."""
    first, second = vote(original, threshold, tie), vote(swapped_back, threshold, tie)
    extra: dict[str, Any] = {
        "original": {"answer": first.answer, "reason": first.reason, "votes": first.votes, "abstentions": first.abstentions},
        "swapped": {"answer": second.answer, "reason": second.reason, "votes": second.votes, "abstentions": second.abstentions},
    }
    votes = dict((Counter(first.votes) + Counter(second.votes)).most_common())
    abstain = first.abstentions + second.abstentions
    if not first.kept:
        return Decision(False, None, f"original_{first.reason}", votes, abstain, extra)
    if not second.kept:
        return Decision(False, None, f"swapped_{second.reason}", votes, abstain, extra)
    if first.answer != second.answer:
        return Decision(False, None, "order_disagree", votes, abstain, extra)
    return Decision(True, first.answer, "consistent", votes, abstain, extra)


@FILTERS.register("swap")
class Swap(Majority):
    """Majority's options (``threshold``, ``tie``), applied to each order separately."""

    name = "swap"

    def __init__(self, threshold: float = 0.5, tie: str = "drop") -> None:
        super().__init__(threshold, tie)

    def check_task(self, task: Task) -> None:
        if task.perturbation() is None:
            raise UserError(f"filter swap needs a task with an order perturbation (e.g. llm_judge); {task.name!r} has none")

    def decide(
        self, rows: list[dict[str, Any]], traces: list[list[Trace]], task: Task, tools: FilterTools
    ) -> list[Decision]:
        self.check_task(task)
        pert: Perturbation = task.perturbation()
        swapped = tools.resample([pert.row(r) for r in rows], pert.name)
        return [
            decide_pair([t.answer for t in ts], [pert.answer(t.answer) for t in ss], self.threshold, self.tie)
            for ts, ss in zip(traces, swapped)
        ]
