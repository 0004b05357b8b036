"""Pure metric functions: accuracy with a Wilson CI, balanced accuracy, answer distributions."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

NONE = "<none>"  # how an abstention (no parseable answer) shows in a distribution


def wilson_ci(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for ``k`` successes out of ``n`` (well-behaved at 0 and n)."""
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


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
