"""Score one arm (System 1, System 2 or distilled) on the held-out test split."""

from __future__ import annotations

from typing import Any

from s2distill.filters.majority import vote
from s2distill.methods.base import Trace
from s2distill.metrics import balanced_accuracy, distribution, wilson_ci
from s2distill.tasks.base import Task


def predict(traces: list[Trace]) -> str | None:
    """The arm's answer for one input: the plurality over its k samples (majority@k; k=1 → the sample).

    Ties and all-abstain give ``None`` (counted wrong): test-time voting never guesses.
    """
    if len(traces) == 1:
        return traces[0].answer
    return vote([t.answer for t in traces], threshold=1e-9).answer


def score_arm(task: Task, rows: list[dict[str, Any]], traces: list[list[Trace]]) -> dict[str, Any]:
    """Accuracy with a 95% CI, balanced accuracy, answer distribution and token cost."""
    preds = [predict(ts) for ts in traces]
    correct = [task.is_correct(p, r) for p, r in zip(preds, rows)]
    n, k = len(rows), sum(correct)
    lo, hi = wilson_ci(k, n)
    tokens = [sum(t.tokens for t in ts) / len(ts) for ts in traces]
    out: dict[str, Any] = {
        "n": n,
        "acc": k / n if n else float("nan"),
        "acc_ci_low": lo,
        "acc_ci_high": hi,
        "balanced_acc": balanced_accuracy(preds, [r["gold"] for r in rows], task.labels) if task.labels else None,
        "answer_distribution": distribution(preds, top=None if task.labels else 10),
        "abstain_rate": sum(p is None for p in preds) / n if n else float("nan"),
        "mean_tokens": sum(tokens) / n if n else float("nan"),
    }
    out.update(task.extra_metrics(preds, rows))
    return out
