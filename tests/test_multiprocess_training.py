"""Training under `accelerate launch` on 2 CPU processes (DDP over gloo): the same loss curve as
one process, one save, and the whole pipeline with the engine in a child process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2distill import launch
from s2distill.artifacts import write_jsonl
from s2distill.train import train

pytestmark = pytest.mark.slow


def examples(n=16):
    return [{"prompt": [{"role": "user", "content": f"A coin is heads up. Person{i} flips it. Still heads up?"}],
             "completion": [{"role": "assistant", "content": "no" if i % 3 else "yes"}]} for i in range(n)]


def test_two_processes_follow_the_one_process_loss_curve(tiny_model, tmp_path):
    """Same data, same effective batch: with split_batches each global batch of 8 is the one the
    single process draws (same sampler, same seed), cut into 4 + 4; TRL normalises the loss by
    the token count across processes, so the curves differ only by float summation order
    (measured: relative difference ~1e-6; tolerance 1e-4)."""
    cfg = {"dtype": "float32", "save_dtype": "float32",
           "sft": {"num_train_epochs": 2, "per_device_train_batch_size": 8, "learning_rate": 1e-3,
                   "logging_steps": 1, "report_to": "none", "save_strategy": "no", "seed": 0,
                   "accelerator_config": {"split_batches": True}}}
    one = train(examples(), str(tiny_model), cfg, tmp_path / "one")
    data = tmp_path / "sft.jsonl"
    write_jsonl(data, examples())
    spec = tmp_path / "train.json"
    spec.write_text(json.dumps({**cfg, "num_processes": 2}))
    out = tmp_path / "two"
    launch.run(launch.command(["--data", str(data), "--model", str(tiny_model), "--config", str(spec),
                               "--out", str(out), "--work", str(tmp_path / "work")],
                              {**cfg, "num_processes": 2}), tmp_path / "train.log")
    two = json.loads((out / "training_info.json").read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert len(one["losses"]) == len(two["losses"]) == 4
    assert one["losses"][-1] < one["losses"][0]  # it learns, so the curves compare something
    for a, b in zip(one["losses"], two["losses"]):
        assert abs(a - b) <= 1e-4 * abs(a), (one["losses"], two["losses"])
    log = (tmp_path / "train.log").read_text()
    assert log.count("Writing model shards:   0%") == 1  # the main process alone saved (one bar)


def test_pipeline_with_two_training_processes_and_isolated_engines(cli, tmp_path):
    run = cli("method=system1", "task=coin_flip", "task.n_train=8", "task.n_test=6", "generate.n=1",
              "train.num_processes=2", "isolate=true", "train.sft.num_train_epochs=1",
              "train.sft.per_device_train_batch_size=2", "engine.use_tqdm=false")
    assert run.returncode == 0, run.stderr[-3000:]
    (path,) = (tmp_path / "out").rglob("results.json")
    r = json.loads(path.read_text())
    t = r["training"]
    assert t["world_size"] == 2 and t["n_dropped"] == 0 and t["n_truncated"] == 0
    assert t["n_examples"] == r["n_kept"] > 0 and t["steps"] == 2  # 8 examples / (2 x 2) per step
    assert r["distilled"] is not None and sum(r["distilled"]["answer_distribution"].values()) == 6
    assert r["engine_starts"] == 2  # base model, then the trained one: each in a child process
    assert (path.parent / "train.log").is_file()
    trained = Path(path.parent / "artifacts" / "train").resolve()
    assert (trained / "model.safetensors").is_file() and not list(trained.parent.glob(".*tmp-*"))
