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


def score_arm(
    task: Task, rows: list[dict[str, Any]], traces: list[list[Trace]], perturbed: list[list[Trace]] | None = None
) -> dict[str, Any]:
    """Accuracy with a 95% CI, balanced accuracy, answer distribution and token cost
    (``mean_tokens``: generated tokens per test input, summed over its k samples).

    With ``perturbed`` (the arm's traces on ``task.perturbation()``'s rows) also how often the
    answer changes under the perturbation (see ``consistency``).
    """
    preds = [predict(ts) for ts in traces]
    correct = [task.is_correct(p, r) for p, r in zip(preds, rows)]
    n, k = len(rows), sum(correct)
    lo, hi = wilson_ci(k, n)
    # an input's cost is all k samples it took (majority@k pays for every one of them)
    tokens = [sum(t.tokens for t in ts) for ts in traces]
    out: dict[str, Any] = {
        "n": n,
        "acc": k / n if n else float("nan"),
        "acc_ci_low": lo,
        "acc_ci_high": hi,
        "balanced_acc": balanced_accuracy(preds, [r["gold"] for r in rows], task.labels) if task.labels else None,
        "answer_distribution": distribution(preds, top=None if task.labels else 10),
        "abstain_rate": sum(p is None for p in preds) / n if n else float("nan"),
        "mean_tokens": sum(tokens) / n if n else float("nan"),
        "correct": [int(c) for c in correct],  # per test input, in order: for paired tests (McNemar)
    }
    out.update(task.extra_metrics(preds, rows))
    if perturbed is not None:
        out.update(consistency(task, rows, preds, perturbed))
    return out


def consistency(
    task: Task, rows: list[dict[str, Any]], preds: list[str | None], perturbed: list[list[Trace]]
) -> dict[str, Any]:
    """Answer changes under the task's perturbation (e.g. the A/B order swap).

    ``inconsistent_rate``: share of inputs, among those answered in both versions, whose answer
    (mapped back to the original frame) differs. ``consistent_rate``: share of *all* inputs with
    the same answer in both versions (an abstention in either counts as not consistent).
    ``perturbed`` scores the perturbed run itself; its answer distribution is as emitted.
    """
    pert = task.perturbation()
    raw = [predict(ts) for ts in perturbed]
    back = [pert.answer(a) for a in raw]
    both = [(p, q) for p, q in zip(preds, back) if p is not None and q is not None]
    n = len(rows)
    return {
        "inconsistent_rate": sum(p != q for p, q in both) / len(both) if both else float("nan"),
        "consistent_rate": sum(p == q for p, q in both) / n if n else float("nan"),
        "n_answered_both": len(both),
        "perturbed": {
            "name": pert.name,
            "acc": sum(task.is_correct(q, r) for q, r in zip(back, rows)) / n if n else float("nan"),
            "answer_distribution": distribution(raw, top=None if task.labels else 10),
            "abstain_rate": sum(a is None for a in raw) / n if n else float("nan"),
            **task.extra_metrics(back, rows),
        },
    }
