"""User mistakes in config are caught before any work, as one-line UserErrors."""

from __future__ import annotations

import pytest

from s2distill import pipeline
from s2distill.errors import UserError


@pytest.mark.parametrize(
    "override, msg",
    [
        ("generate.n=0", "generate.n must be >= 1"),
        ("filter.threshold=1.5", "threshold must be in"),
        ("filter.threshold=0", "threshold must be in"),
        ("eval.k=0", "eval.k must be >= 1"),
        ("eval.k=3", "eval.k=3 with eval.temperature=0 votes over 3 identical greedy copies"),
        ("task.n_test=0", "n_test must be >= 1"),
        ("engine.name=tgi", "unknown engine"),
        ("model.name_or_path=/nonexistent/model", "not found"),
        ("task.data_file=/nonexistent.json", "not found"),
        ("+method.max_tokens.nope=3", "unknown step"),
        ("method.max_tokens.respond=0", "max_tokens must be >= 1"),
        ("method.name=nope", "unknown method"),
        ("filter.name=nope", "unknown filter"),
        ("filter=swap", "filter swap needs a task with an order perturbation"),  # default task coin_flip
    ],
)
def test_bad_config_is_one_user_error(compose, override, msg):
    with pytest.raises(UserError, match=msg) as err:
        pipeline.build(compose(override), None)
    assert "\n" not in str(err.value)
