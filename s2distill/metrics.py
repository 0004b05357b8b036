"""Pure metric functions: accuracy with a Wilson CI, McNemar's paired test, balanced accuracy,
answer distributions. Statistics come from ``statsmodels``; this module is the one place the
project calls it from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from statsmodels.stats.contingency_tables import mcnemar as _mcnemar
from statsmodels.stats.proportion import proportion_confint

NONE = "<none>"  # how an abstention (no parseable answer) shows in a distribution


def wilson_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """``1 - alpha`` Wilson score interval for ``k`` successes out of ``n`` (well-behaved at 0
    and n); ``(0, 0)`` for ``n == 0``."""
    if n == 0:
        return (0.0, 0.0)
    lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
    return (max(0.0, float(lo)), min(1.0, float(hi)))


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> float:
    """Exact (binomial) McNemar p-value that arms A and B, scored on the SAME inputs, are equally
    accurate. Only the discordant inputs (one right, the other wrong) count; no discordant input
    gives p = 1."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired samples differ in length ({len(a_correct)} vs {len(b_correct)})")
    pairs = Counter((bool(a), bool(b)) for a, b in zip(a_correct, b_correct))
    table = [[pairs[True, True], pairs[True, False]], [pairs[False, True], pairs[False, False]]]
    if table[0][1] + table[1][0] == 0:
        return 1.0
    return float(_mcnemar(table, exact=True).pvalue)


def compare_paired(a_correct: Sequence[bool], b_correct: Sequence[bool], idx: Sequence[int] | None = None) -> dict[str, Any]:
    """A against B on the same inputs (only ``idx``, when given): the exact McNemar p-value, how
    many inputs, and on how many A is right where B is wrong (``wins``) and the reverse (``losses``)."""
    idx = range(len(a_correct)) if idx is None else idx
    a, b = [a_correct[i] for i in idx], [b_correct[i] for i in idx]
    return {"mcnemar_p": mcnemar(a, b), "n": len(a), "wins": sum(bool(x) and not y for x, y in zip(a, b)),
            "losses": sum(bool(y) and not x for x, y in zip(a, b))}


def distribution(answers: Sequence[str | None], top: int | None = None) -> dict[str, int]:
    """Counts of each answer (abstentions as ``<none>``), most common first."""
    counts = Counter(NONE if a is None else a for a in answers).most_common()
    if top is not None and len(counts) > top:
        rest = sum(c for _, c in counts[top:])
        counts = counts[:top] + [("<other>", rest)]
    return dict(counts)


def balanced_accuracy(preds: Sequence[str | None], golds: Sequence[str], labels: Sequence[str]) -> float:
    """Mean per-class recall over the gold labels present; a constant predictor scores 1/#classes."""
    recalls = []
    for lab in labels:
        idx = [i for i, g in enumerate(golds) if g == lab]
        if idx:
            recalls.append(sum(preds[i] == lab for i in idx) / len(idx))
    return sum(recalls) / len(recalls) if recalls else float("nan")


def majority_baseline(golds: Sequence[str]) -> float:
    """Accuracy of always answering the most common gold answer."""
    return Counter(golds).most_common(1)[0][1] / len(golds) if golds else float("nan")
