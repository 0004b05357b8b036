"""Accuracy CI, balanced accuracy, distributions and arm scoring."""

from __future__ import annotations

import math

import pytest

from s2distill.evaluate import predict, score_arm
from s2distill.methods.base import Trace
from s2distill.metrics import balanced_accuracy, distribution, majority_baseline, mcnemar, wilson_ci
from s2distill.tasks import TASKS


def test_wilson_ci_known_values():
    lo, hi = wilson_ci(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert wilson_ci(0, 10)[0] == 0.0 and wilson_ci(10, 10)[1] == 1.0
    assert wilson_ci(0, 0) == (0.0, 0.0)
    # an asymmetric case (Newcombe 1998, table I: 81/263 → 0.2553, 0.3662)
    lo, hi = wilson_ci(81, 263)
    assert lo == pytest.approx(0.2553, abs=1e-4) and hi == pytest.approx(0.3662, abs=1e-4)


def test_mcnemar_exact_on_a_known_table():
    # paired table [[both right 59, A only 6], [B only 16, both wrong 80]]: only the 22 discordant
    # pairs count; exact two-sided p = 2 * P(Binom(22, 1/2) <= 6) = 0.0525
    a = [True] * 59 + [True] * 6 + [False] * 16 + [False] * 80
    b = [True] * 59 + [False] * 6 + [True] * 16 + [False] * 80
    expected = 2 * sum(math.comb(22, i) for i in range(7)) / 2**22
    assert mcnemar(a, b) == pytest.approx(expected, rel=1e-9)
    assert mcnemar(a, b) == pytest.approx(0.0525, abs=1e-4)
    assert mcnemar(b, a) == pytest.approx(expected, rel=1e-9)  # symmetric
    assert mcnemar([True, False], [True, False]) == 1.0  # no discordant pair
    assert mcnemar([True] * 6, [False] * 6) == pytest.approx(2 / 2**6)  # 6 vs 0: p = 2 * 0.5^6
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_constant_predictor_scores_chance_on_balanced_data():
    golds = ["yes"] * 5 + ["no"] * 5
    preds = ["yes"] * 10
    assert balanced_accuracy(preds, golds, ["yes", "no"]) == 0.5
    assert majority_baseline(golds) == 0.5
    assert balanced_accuracy([None] * 10, golds, ["yes", "no"]) == 0.0


def test_distribution_counts_abstentions_and_truncates():
    assert distribution(["a", None, "a"]) == {"a": 2, "<none>": 1}
    d = distribution(list("aabcdef"), top=2)
    assert list(d)[:2] == ["a", "b"] and d["<other>"] == 4


def test_predict_majority_at_k_never_guesses_a_tie():
    t = lambda a: Trace(a, "", 1)  # noqa: E731
    assert predict([t("yes")]) == "yes"
    assert predict([t("yes"), t("no"), t("yes")]) == "yes"
    assert predict([t("yes"), t("no")]) is None


def test_mean_tokens_is_per_input_over_its_k_samples():
    task = TASKS.get("coin_flip")(n_train=1, n_test=1)
    rows = [{"id": "0", "question": "q", "gold": "yes"}, {"id": "1", "question": "q", "gold": "no"}]
    traces = [[Trace("yes", "", 2), Trace("yes", "", 4), Trace("no", "", 6)],
              [Trace("no", "", 1), Trace("no", "", 1), Trace("no", "", 1)]]
    m = score_arm(task, rows, traces)
    assert m["acc"] == 1.0
    assert m["mean_tokens"] == (12 + 3) / 2  # majority@3 costs all three samples of an input


def test_score_arm_reports_collapse_honestly():
    task = TASKS.get("coin_flip")(n_train=1, n_test=1)
    rows = [{"id": str(i), "question": "q", "gold": g} for i, g in enumerate(["yes", "no"] * 5)]
    traces = [[Trace("yes", "Yes", 2)] for _ in rows]
    m = score_arm(task, rows, traces)
    assert m["acc"] == 0.5 and m["balanced_acc"] == 0.5
    assert m["answer_distribution"] == {"yes": 10}
    assert m["mean_tokens"] == 2 and m["abstain_rate"] == 0
    assert m["acc_ci_low"] < 0.5 < m["acc_ci_high"]


def test_score_arm_open_ended_has_no_balanced_acc():
    task = TASKS.get("last_letter")(n_train=1, n_test=1)
    rows = [{"id": "0", "question": "q", "gold": "abcd"}]
    m = score_arm(task, rows, [[Trace("abcd", "abcd", 5), Trace(None, "", 0)]])
    assert m["balanced_acc"] is None and m["acc"] == 1.0  # abstentions do not vote
    assert math.isclose(m["mean_tokens"], 5.0)  # both samples of the input cost tokens
