"""Majority vote: threshold, tie rule, abstentions; config validation."""

from __future__ import annotations

import pytest

from s2distill.errors import UserError
from s2distill.filters import FILTERS
from s2distill.filters.majority import vote


def test_keeps_clear_majority_and_saves_votes():
    d = vote(["yes", "yes", "yes", "no"], threshold=0.75)
    assert d.kept and d.answer == "yes" and d.votes == {"yes": 3, "no": 1} and d.reason == "majority"


def test_below_threshold_is_dropped_but_records_top():
    d = vote(["yes", "yes", "no", "no", "yes"], threshold=0.75)
    assert not d.kept and d.answer == "yes" and d.reason == "below_threshold"


def test_tie_is_dropped():
    d = vote(["yes", "no", "yes", "no"], threshold=0.25)
    assert not d.kept and d.answer is None and d.reason == "tie"


def test_abstentions_count_in_the_denominator():
    d = vote(["yes", None, None, None], threshold=0.5)
    assert not d.kept and d.abstentions == 3 and d.extra["share"] == 0.25
    assert vote([None, None], threshold=0.5).reason == "no_answer"


def test_threshold_one_needs_unanimity():
    assert vote(["a", "a", "a"], threshold=1.0).kept
    assert not vote(["a", "a", None], threshold=1.0).kept


@pytest.mark.parametrize("threshold", [0, -0.1, 1.01, 2])
def test_threshold_outside_unit_interval_is_user_error(threshold):
    with pytest.raises(UserError, match="threshold"):
        FILTERS.get("majority")(threshold=threshold)


def test_unknown_tie_rule():
    with pytest.raises(UserError, match="tie"):
        FILTERS.get("majority")(tie="first")
