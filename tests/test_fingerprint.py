"""Stage fingerprints: stable, order-insensitive, sensitive to config and upstream."""

from __future__ import annotations

from s2distill import pipeline
from s2distill.artifacts import Store, fingerprint


def test_fingerprint_is_stable_and_key_order_insensitive():
    assert fingerprint("s", {"a": 1, "b": [1, 2]}) == fingerprint("s", {"b": [1, 2], "a": 1})


def test_fingerprint_changes_with_stage_config_and_upstream():
    base = fingerprint("generate", {"n": 8}, ["u1"])
    assert fingerprint("filter", {"n": 8}, ["u1"]) != base
    assert fingerprint("generate", {"n": 4}, ["u1"]) != base
    assert fingerprint("generate", {"n": 8}, ["u2"]) != base


def test_store_round_trip_and_run_dir_copy(tmp_path):
    store = Store(tmp_path / "cache", tmp_path / "run")
    assert store.load_records("generate", "fp1") is None
    store.save_records("generate", "fp1", [{"id": "a", "x": 1}])
    assert store.load_records("generate", "fp1") == [{"id": "a", "x": 1}]
    assert (tmp_path / "run" / "artifacts" / "generate.jsonl").is_file()


def test_stage_fingerprints_follow_the_config_that_affects_them(compose, fake_engine):
    def fps(*overrides):
        ctx = pipeline.build(compose("task.n_train=6", "task.n_test=4", "generate.n=2", *overrides), None)
        rows = ctx.task.unlabeled(ctx.task.load()["train"]).to_list()
        _, gen = pipeline.generate(ctx, rows)
        filt = pipeline.filter_samples(ctx, rows, *pipeline.generate(ctx, rows))[1]
        return gen, filt

    gen, filt = fps()
    assert fps() == (gen, filt)
    gen_t, filt_t = fps("filter.threshold=0.5")
    assert gen_t == gen and filt_t != filt  # a filter change reuses the samples
    gen_n, filt_n = fps("generate.n=3")
    assert gen_n != gen and filt_n != filt  # upstream change propagates
    assert fps("eval.k=3", "eval.temperature=0.7") == (gen, filt)  # evaluation settings do not touch training data
