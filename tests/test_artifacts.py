"""Damaged cache artifacts are detected by checksum and recomputed, never silently used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from s2distill import pipeline
from s2distill.artifacts import Store

RECORDS = [{"id": f"r{i}", "x": i} for i in range(5)]


def saved(tmp_path: Path) -> tuple[Store, Path]:
    store = Store(tmp_path / "cache")
    store.save_records("generate", "fp", RECORDS)
    return store, store.dir("generate", "fp")


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01  # same length, different content: only a checksum notices
    path.write_bytes(bytes(data))


# -- record artifacts (records.jsonl + meta.json) --------------------------------------------
@pytest.mark.parametrize(
    "damage",
    [
        lambda d: truncate(d / "records.jsonl"),
        lambda d: flip_byte(d / "records.jsonl", 10),
        lambda d: (d / "records.jsonl").write_text(json.dumps(RECORDS[0]) + "\n"),  # valid JSON, too few
        lambda d: (d / "records.jsonl").unlink(),
        lambda d: truncate(d / "meta.json"),
        lambda d: (d / "meta.json").write_text("[]"),  # valid JSON, not a meta object
        lambda d: (d / "meta.json").write_text(json.dumps({"sha256": "0" * 64, "n_records": 5})),
        lambda d: (d / "meta.json").unlink(),
    ],
    ids=["records-truncated", "records-bitflip", "records-short", "records-missing",
         "meta-truncated", "meta-not-object", "meta-wrong-checksum", "meta-missing"],
)
def test_damaged_records_are_never_loaded(tmp_path, damage):
    store, d = saved(tmp_path)
    assert store.load_records("generate", "fp") == RECORDS
    damage(d)
    fresh = Store(tmp_path / "cache")
    assert fresh.load_records("generate", "fp") is None
    assert fresh.hits == []
    # recomputing writes a good artifact again, which then loads
    fresh.save_records("generate", "fp", RECORDS)
    assert Store(tmp_path / "cache").load_records("generate", "fp") == RECORDS


# -- resumable batches (partial.jsonl) ----------------------------------------------------------
def batches(tmp_path: Path) -> tuple[Store, Path]:
    store = Store(tmp_path / "cache")
    for b in range(3):
        store.append_batch("generate", "fp", b, [{"id": f"r{b}", "b": b}])
    return store, store.dir("generate", "fp") / "partial.jsonl"


def test_cut_last_line_drops_only_that_batch(tmp_path):
    store, path = batches(tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) - 15])  # a kill while the last batch was being written
    assert sorted(store.load_batches("generate", "fp")) == [0, 1]
    store.append_batch("generate", "fp", 2, [{"id": "r2", "b": 2}])  # the rerun appends after the cut
    assert sorted(store.load_batches("generate", "fp")) == [0, 1, 2]


def test_corrupted_batch_line_is_dropped_others_kept(tmp_path):
    store, path = batches(tmp_path)
    lines = path.read_text().split("\n")
    i = next(k for k, line in enumerate(lines) if '"batch":1' in line)
    lines[i] = lines[i].replace('"b":1', '"b":7')  # still valid JSON, checksum no longer matches
    path.write_text("\n".join(lines))
    done = Store(tmp_path / "cache").load_batches("generate", "fp")
    assert sorted(done) == [0, 2] and done[0] == [{"id": "r0", "b": 0}]


def test_garbage_partial_file_resumes_nothing(tmp_path):
    store, path = batches(tmp_path)
    path.write_bytes(b"\x00\xff" * 100 + b"\n5\n[]\nnull\n{}\n")
    assert store.load_batches("generate", "fp") == {}


# -- through the generate stage (fake engine: the pure resume / recompute logic) -------------------
def gen_ctx(compose, tmp_path: Path, *overrides: str) -> tuple[pipeline.Context, list[dict]]:
    cfg = compose("task.n_train=6", "task.n_test=2", "generate.n=2", "generate.batch_size=2", *overrides)
    ctx = pipeline.build(cfg, None)
    return ctx, ctx.task.unlabeled(ctx.task.load()["train"]).to_list()


def engine_calls(fake_engine) -> int:
    return sum(len(e.calls) for e in fake_engine)


def generated_then_wiped(compose, tmp_path: Path) -> tuple[pipeline.Context, list[dict], str, Path, list[dict]]:
    """Run the generate stage, keep its records, then delete its whole cache folder."""
    ctx, rows = gen_ctx(compose, tmp_path)
    _, fp = pipeline.generate(ctx, rows)
    recs = ctx.store.load_records("generate", fp)
    d = ctx.store.dir("generate", fp)
    shutil.rmtree(d)
    return ctx, rows, fp, d, recs


def test_generate_recomputes_a_corrupted_artifact(compose, fake_engine, tmp_path):
    ctx, rows = gen_ctx(compose, tmp_path)
    first, fp = pipeline.generate(ctx, rows)
    calls = engine_calls(fake_engine)
    flip_byte(ctx.store.dir("generate", fp) / "records.jsonl", 30)
    ctx2, _ = gen_ctx(compose, tmp_path)
    again, fp2 = pipeline.generate(ctx2, rows)
    assert fp2 == fp and ctx2.store.misses == ["generate"] and ctx2.store.hits == []
    assert engine_calls(fake_engine) == 2 * calls  # every batch generated again
    assert [[t.answer for t in ts] for ts in again] == [[t.answer for t in ts] for ts in first]


def test_generate_resumes_from_intact_batches_only(compose, fake_engine, tmp_path):
    ctx, rows, fp, d, recs = generated_then_wiped(compose, tmp_path)
    # an interrupted run: no final artifact; batch 0 intact, batch 1 cut mid-line, batch 2 missing
    ctx.store.append_batch("generate", fp, 0, recs[0:2])
    ctx.store.append_batch("generate", fp, 1, recs[2:4])
    partial = d / "partial.jsonl"
    partial.write_text(partial.read_text()[:-40])
    before = engine_calls(fake_engine)
    ctx2, _ = gen_ctx(compose, tmp_path)
    traces, _ = pipeline.generate(ctx2, rows)
    per_batch = 2  # rar: rephrase + respond per batch
    assert engine_calls(fake_engine) - before == 2 * per_batch  # batches 1 and 2, not batch 0
    final = [json.loads(line) for line in (d / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in final] == [r["id"] for r in rows]  # no duplicate, none missing
    assert not partial.exists() and len(traces) == len(rows)


def test_resume_ignores_batches_of_another_batch_size(compose, fake_engine, tmp_path):
    ctx, rows, fp, d, recs = generated_then_wiped(compose, tmp_path)
    ctx.store.append_batch("generate", fp, 0, recs[0:3])  # written with batch_size=3
    ctx2, _ = gen_ctx(compose, tmp_path)  # batch_size=2 now: batch 0 holds other rows
    pipeline.generate(ctx2, rows)
    final = [json.loads(line) for line in (d / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in final] == [r["id"] for r in rows]


# -- directory artifacts (trained models) ---------------------------------------------------------
def model_artifact(tmp_path: Path) -> tuple[Store, Path]:
    store = Store(tmp_path / "cache")
    tmp = store.staging_dir("train", "fp")
    (tmp / "config.json").write_text('{"model_type": "llama"}')
    (tmp / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (tmp / "sub").mkdir()
    (tmp / "sub" / "tokenizer.json").write_text("{}")
    store.commit_dir("train", "fp", tmp)
    return store, store.dir("train", "fp")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: truncate(d / "model.safetensors"),
        lambda d: flip_byte(d / "model.safetensors", 1000),
        lambda d: (d / "model.safetensors").unlink(),
        lambda d: (d / "sub" / "tokenizer.json").write_text("{ }"),
        lambda d: (d / "extra.bin").write_bytes(b"x"),
        lambda d: truncate(d / "meta.json"),
    ],
    ids=["weights-truncated", "weights-bitflip", "weights-missing", "tokenizer-edited", "file-added",
         "meta-truncated"],
)
def test_damaged_model_dir_is_never_loaded(tmp_path, damage):
    store, d = model_artifact(tmp_path)
    assert store.load_dir("train", "fp") == d
    damage(d)
    fresh = Store(tmp_path / "cache")
    assert fresh.load_dir("train", "fp") is None and fresh.hits == []
    _, d2 = model_artifact(tmp_path)  # the next run trains again and replaces it
    assert Store(tmp_path / "cache").load_dir("train", "fp") == d2


def test_train_stage_retrains_after_corruption(compose, monkeypatch, tmp_path):
    from s2distill import train as sft
    from s2distill.filters.base import Decision

    trained: list[Path] = []

    def fake_train(examples, base, cfg, out_dir, work_dir=None, teacher=None):
        (out_dir / "model.safetensors").write_bytes(b"weights" * 100)
        (out_dir / "config.json").write_text("{}")
        (out_dir / sft.INFO_FILE).write_text(json.dumps({"n_examples": len(examples), "world_size": 1}))
        trained.append(out_dir)
        return {"n_examples": len(examples)}

    monkeypatch.setattr(sft, "train", fake_train)
    ctx = pipeline.build(compose("task.n_train=2", "task.n_test=2"), None)
    rows = ctx.task.unlabeled(ctx.task.load()["train"]).to_list()
    decisions = [Decision(True, "yes", "majority"), Decision(True, "no", "majority")]
    data = pipeline.sft_data(ctx, rows, decisions, "filt")
    out, fp, info = pipeline.train(ctx, data)
    assert info["n_examples"] == 2 and info["world_size"] == 1 and info["n_dropped"] == 0
    assert len(trained) == 1 and pipeline.train(ctx, data)[0] == out
    assert len(trained) == 1  # intact: loaded, not retrained
    truncate(out / "model.safetensors")
    out2, _, _ = pipeline.train(ctx, data)
    assert len(trained) == 2 and (out2 / "model.safetensors").read_bytes() == b"weights" * 100


@pytest.mark.slow
def test_truncated_real_model_weights_are_detected(bundled_model, tmp_path):
    """The real safetensors file of a model folder, cut short, fails the checksum."""
    store = Store(tmp_path / "cache")
    tmp = store.staging_dir("train", "fp")
    shutil.copytree(bundled_model.path, tmp, dirs_exist_ok=True)
    d = store.commit_dir("train", "fp", tmp)
    assert Store(tmp_path / "cache").load_dir("train", "fp") == d
    weights = next(d.glob("*.safetensors"))
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size - 4096)
    assert Store(tmp_path / "cache").load_dir("train", "fp") is None


def test_method_system1_evaluates_the_base_model_once(compose, fake_engine, tmp_path):
    """With method=system1 the System-2 arm is System 1: its artifact is shared, not regenerated."""
    ctx, _ = gen_ctx(compose, tmp_path, "method=system1")
    test_rows = ctx.task.load()["test"].to_list()
    s1 = pipeline.evaluate(ctx, "system1", test_rows)
    calls = engine_calls(fake_engine)
    s2 = pipeline.evaluate(ctx, "system2", test_rows)
    assert s2 == s1 and engine_calls(fake_engine) == calls
    assert ctx.store.misses == ["eval_system1"] and ctx.store.hits == ["eval_system1"]


def test_strict_json_writes_null_for_nan_and_infinities_so_any_json_reader_accepts_results():
    import json
    import math

    from s2distill.artifacts import strict_json

    text = strict_json({"inconsistent_rate": float("nan"), "n": 3, "rates": [0.5, float("inf")],
                        "arm": {"acc": -math.inf, "path": Path("/x")}})

    def refuse(const):
        raise ValueError(f"non-standard JSON constant {const}")

    assert json.loads(text, parse_constant=refuse) == {
        "inconsistent_rate": None, "n": 3, "rates": [0.5, None], "arm": {"acc": None, "path": "/x"}}
