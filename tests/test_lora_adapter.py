"""train=lora: the distilled arm is the adapter, served by the base model's vLLM engine (enable_lora,
LoRARequest) with no merged copy and, on CPU, no second engine start; train.merge=true merges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = ["method=system1", "task=coin_flip", "task.n_train=8", "task.n_test=6", "generate.n=1", "train=lora",
        "train.lora.r=4", "train.sft.num_train_epochs=1", "train.sft.per_device_train_batch_size=4",
        "engine.use_tqdm=false"]


def result(out: Path) -> tuple[dict, Path]:
    (path,) = out.rglob("results.json")
    r = json.loads(path.read_text())
    return r, (path.parent / "artifacts" / "train").resolve()


def test_lora_adapter_is_served_without_a_second_model_load(cli, tmp_path):
    run = cli(*TINY)
    assert run.returncode == 0, run.stderr[-3000:]
    r, trained = result(tmp_path / "out")
    assert r["training"]["adapter"] is True and r["engine_config"]["max_lora_rank"] == 4
    assert (trained / "adapter_config.json").is_file() and not (trained / "model.safetensors").exists()
    assert r["engine_starts"] == 1  # the base engine served S1, S2 and the distilled adapter
    assert sum(r["distilled"]["answer_distribution"].values()) == 6

    merged = cli(*TINY, "train.merge=true", cache=tmp_path / "cache2")
    assert merged.returncode == 0, merged.stderr[-3000:]
    paths = sorted((tmp_path / "out").rglob("results.json"), key=lambda p: p.stat().st_mtime)
    r2 = json.loads(paths[-1].read_text())
    trained2 = (paths[-1].parent / "artifacts" / "train").resolve()
    assert (trained2 / "model.safetensors").is_file() and not (trained2 / "adapter_config.json").exists()
    assert r2["engine_starts"] == 2  # a merged model is a second model: a second engine
