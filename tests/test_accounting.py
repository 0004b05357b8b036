"""Cost accounting: every token the System-2 side generates on the training inputs is counted."""

from __future__ import annotations

import pytest

from s2distill import pipeline

CASES = [  # (overrides, the filter's own generation or resampled stage that must be counted)
    (["method=rar", "task=coin_flip", "filter=usc", "filter.skip_unanimous=false"], "filter"),
    (["method=bsm", "task=llm_judge", "filter=swap"], "generate_swap_ab"),
]


@pytest.mark.parametrize("overrides, extra_stage", CASES, ids=["usc", "swap"])
def test_generate_tokens_count_filter_calls_and_resampling(fake_run, fake_engine, monkeypatch, overrides, extra_stage):
    # what the base model's engine generated before evaluation began = the System-2 side's cost
    before_eval: list[int] = []
    real_evaluate = pipeline.evaluate

    def evaluate(ctx, arm, *a, **kw):
        if not before_eval:
            before_eval.append(fake_engine[0].generated)
        return real_evaluate(ctx, arm, *a, **kw)

    monkeypatch.setattr(pipeline, "evaluate", evaluate)
    res = fake_run(*overrides, "task.n_train=8", "task.n_test=4", "generate.n=3", "generate.batch_size=3")
    by_stage = res["generate_tokens_by_stage"]
    assert by_stage[extra_stage] > 0  # the selection calls / the swapped-order generation
    assert res["generate_tokens"] == sum(by_stage.values()) == before_eval[0]


def test_eval_k_mean_tokens_counts_every_sample(fake_run):
    res = fake_run("method=system1", "task=coin_flip", "task.n_train=4", "task.n_test=4", "eval.k=3",
                   "eval.temperature=0.7")
    assert res["system1"]["mean_tokens"] == 3 * 3  # FakeEngine: 3 tokens per completion, k = 3
