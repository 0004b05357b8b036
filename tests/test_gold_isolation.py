"""Gold labels may score, never build training targets: corrupting them changes no training example."""

from __future__ import annotations

from datasets import DatasetDict

from s2distill import pipeline


def training_data(compose, monkeypatch, corrupt: bool, cache):
    # separate caches: the second run must recompute, not load the first run's artifacts
    cfg = compose("task.n_train=30", "task.n_test=10", "generate.n=3", "filter.threshold=0.6", f"paths.cache_dir={cache}")
    ctx = pipeline.build(cfg, None)
    real_load = ctx.task.load

    def load():
        d = real_load()
        if not corrupt:
            return d
        flip = lambda r: {**r, "gold": {"yes": "no", "no": "yes"}[r["gold"]]}  # noqa: E731
        return DatasetDict(train=d["train"].map(flip), test=d["test"].map(flip))

    monkeypatch.setattr(ctx.task, "load", load)
    data = ctx.task.load()
    rows = ctx.task.unlabeled(data["train"]).to_list()
    assert all("gold" not in r for r in rows)
    traces, gen_fp = pipeline.generate(ctx, rows)
    decisions, _ = pipeline.filter_samples(ctx, rows, traces, gen_fp)
    return pipeline.sft_examples(ctx.task, rows, decisions), data


def test_corrupted_gold_gives_identical_training_data(compose, monkeypatch, fake_engine, tmp_path):
    clean, d1 = training_data(compose, monkeypatch, False, tmp_path / "a")
    corrupted, d2 = training_data(compose, monkeypatch, True, tmp_path / "b")
    assert len(fake_engine) == 2  # both runs generated
    assert d1["train"]["gold"] != d2["train"]["gold"]  # the corruption really happened
    assert clean and clean == corrupted
