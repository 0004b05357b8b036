"""Re-running a finished cell: every stage comes from the cache and no engine starts.

Runs ``python -m s2distill method=rar task=coin_flip`` once at small sizes (the rerun's time
hardly depends on them: it reads a few small record files and checksums the trained model),
then times three identical reruns of the command as a user types it (a fresh interpreter each,
Hydra start-up included) and asserts each computed nothing and started no engine.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/cached_rerun.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, record

SMALL = ["task.n_train=8", "task.n_test=8", "generate.n=2", "train.sft.num_train_epochs=1"]


def cli(tmp: Path, *args: str) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "s2distill", "method=rar", "task=coin_flip", *SMALL, *args,
           f"paths.cache_dir={tmp / 'cache'}", f"paths.output_dir={tmp / 'out'}"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-4000:])
    newest = max((tmp / "out").rglob("results.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(newest.read_text()), wall


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        first, first_wall = cli(tmp)
        assert first["engine_starts"] >= 1 and first["computed"], "the first run must compute"
        walls = []
        for _ in range(3):
            time.sleep(1.1)  # distinct run directories (Hydra stamps them to the second)
            r, wall = cli(tmp)
            assert r["engine_starts"] == 0, r["engine_starts"]
            assert r["computed"] == [], r["computed"]
            assert r["system2"]["acc"] == first["system2"]["acc"]
            walls.append(wall)
    record("cached_rerun", {"cached_rerun_s": round(statistics.median(walls), 2)}, {
        "sizes": SMALL, "first_run_s": round(first_wall, 1), "rerun_walls_s": [round(w, 2) for w in walls],
        "engine_starts": r["engine_starts"], "computed": r["computed"], "cache_hits": r["cache_hits"],
        "notes": [f"median of 3 reruns (wall time of the whole command, interpreter start included); "
                  f"each: engine_starts=0, computed=[] (asserted). First run at these sizes: {first_wall:.0f} s."],
    })


if __name__ == "__main__":
    main()
