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


def test_engine_settings_that_change_samples_are_in_the_fingerprint(compose, fake_engine):
    """engine=hf after a vLLM run, or another engine.extra, generates again; cosmetic options
    (progress bars) and where the engine runs reuse the samples."""
    def gen_fp(*overrides):
        ctx = pipeline.build(compose("task.n_train=4", "task.n_test=4", "generate.n=2", *overrides), None)
        rows = ctx.task.unlabeled(ctx.task.load()["train"]).to_list()
        return pipeline.generate(ctx, rows)[1], ctx.store.misses

    vllm, computed = gen_fp()
    assert computed == ["generate"]
    hf, computed = gen_fp("engine=hf")
    assert hf != vllm and computed == ["generate"]  # recomputed, not vLLM's samples
    assert gen_fp("+engine.extra.kv_cache_dtype=fp8")[0] != vllm
    assert gen_fp("engine.dtype=float16")[0] != vllm
    assert gen_fp("engine.compile=true")[0] != vllm  # compiled numerics differ from eager
    assert gen_fp("+model.chat_template_kwargs.enable_thinking=false")[0] != vllm
    assert gen_fp("engine.use_tqdm=false", "isolate=false") == (vllm, [])  # served from the cache


def test_local_model_folder_is_keyed_by_content(tmp_path, bundled_model):
    """A folder re-trained (or re-saved) in place is a new model for every stage."""
    import os
    import shutil

    from s2distill.models import resolve

    folder = tmp_path / "model"
    shutil.copytree(bundled_model.path, folder)
    key = resolve(str(folder)).key
    assert resolve(str(folder)).key == key
    weights = folder / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # rewritten, same size
    assert resolve(str(folder)).key != key


def test_hub_model_is_keyed_by_its_cached_commit(monkeypatch, tmp_path):
    import huggingface_hub

    from s2distill.models import resolve

    snap = tmp_path / "models--org--m" / "snapshots"
    commit = {"now": "a1b2c3"}
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo, **kw: str(snap / commit["now"]))
    first = resolve("org/m")
    assert first.path == "org/m" and first.key == "hub:org/m@a1b2c3"
    commit["now"] = "d4e5f6"  # the model was updated on the hub
    assert resolve("org/m").key != first.key


def test_results_record_the_resolved_compile_mode(fake_run, tmp_path):
    # engine.compile decides the numerics: results.json says which mode ran (auto resolved), and
    # the two modes never share a sampled stage
    eager = fake_run("engine.compile=false", "task.n_train=6", "task.n_test=4", run_dir=tmp_path / "eager")
    compiled = fake_run("engine.compile=true", "task.n_train=6", "task.n_test=4", run_dir=tmp_path / "compiled")
    assert eager["engine_config"]["compiled"] is False and compiled["engine_config"]["compiled"] is True
    assert "generate" in compiled["computed"] and "generate" not in compiled["cache_hits"]
