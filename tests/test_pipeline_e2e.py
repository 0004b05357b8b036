"""The whole command end to end on the bundled model (tiny sizes), then a fully cached rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = ["task.n_train=6", "task.n_test=6", "generate.n=2", "generate.batch_size=4",
        "method.max_tokens.rephrase=32", "method.max_tokens.respond=48",
        "filter.threshold=0.5", "train.sft.num_train_epochs=1", "train.sft.per_device_train_batch_size=2"]


def results(out: Path) -> dict:
    found = sorted(out.rglob("results.json"))
    assert found, "no results.json written"
    return json.loads(found[-1].read_text())


def test_rar_coin_flip_end_to_end_then_cached(cli, tmp_path):
    first = cli("method=rar", "task=coin_flip", *TINY)
    assert first.returncode == 0, first.stderr[-3000:]
    r = results(tmp_path / "out")
    assert (r["task"], r["method"], r["n_train"], r["n_test"]) == ("coin_flip", "rar", 6, 6)
    for key in ("model", "seed", "n_kept", "majority_baseline", "kept_label_distribution", "timings_s"):
        assert key in r
    assert r["majority_baseline"] == 0.5  # balanced test split
    arms = ("system1", "system2") + (("distilled",) if r["n_kept"] else ())
    for arm in arms:
        m = r[arm]
        for key in ("acc", "acc_ci_low", "acc_ci_high", "balanced_acc", "answer_distribution", "mean_tokens"):
            assert key in m, (arm, key)
        assert m["acc_ci_low"] <= m["acc"] <= m["acc_ci_high"]
        assert sum(m["answer_distribution"].values()) == 6
    assert r["system2"]["mean_tokens"] > r["system1"]["mean_tokens"]  # System 2 costs more tokens
    assert r["engine_starts"] >= 1 and "generate" in r["computed"]
    run_dir = Path(sorted((tmp_path / "out").rglob("results.json"))[-1]).parent
    assert (run_dir / "artifacts" / "generate.jsonl").is_file() and (run_dir / "artifacts" / "filter.jsonl").is_file()

    second = cli("method=rar", "task=coin_flip", *TINY)
    assert second.returncode == 0, second.stderr[-3000:]
    r2 = json.loads(sorted((tmp_path / "out").rglob("results.json"))[-1].read_text())
    assert r2["computed"] == [] and r2["engine_starts"] == 0  # nothing recomputed, no engine started
    for arm in arms:
        assert r2[arm]["acc"] == r[arm]["acc"]
