"""The default cell end to end: ``python -m s2distill method=rar task=coin_flip`` from an empty cache.

Sizes are conf/'s defaults (no overrides). The stage cache and output folder are fresh; the
converted bundled model (~/.cache/s2distill/models) is reused, and the torch.compile cache is
whatever state ``--compile-cache`` names (``cold``: emptied first; ``warm``: left as is).

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/smoke_cell.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, record


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compile-cache", choices=("warm", "cold"), default="warm")
    a = ap.parse_args()
    from s2distill.engines.vllm import compile_cache_dir

    if a.compile_cache == "cold":
        shutil.rmtree(compile_cache_dir(), ignore_errors=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cmd = [sys.executable, "-m", "s2distill", "method=rar", "task=coin_flip",
               f"paths.cache_dir={tmp / 'cache'}", f"paths.output_dir={tmp / 'out'}"]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=7200, env=os.environ)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(res.stderr[-4000:])
        r = json.loads(next((tmp / "out").rglob("results.json")).read_text())
    # Hydra's console log handler writes to stdout; one "vLLM compile: on|off" line per engine start
    decisions = [line.split("vLLM compile: ")[1][:3].strip() for line in (res.stdout + res.stderr).splitlines()
                 if "vLLM compile: " in line]
    assert decisions, "no 'vLLM compile:' log line found"
    record("smoke_cell", {"smoke_cell_s": round(wall, 1)}, {
        "command": "python -m s2distill method=rar task=coin_flip (conf defaults)",
        "n_train": r["n_train"], "n_test": r["n_test"], "n_samples": r["n_samples"], "n_kept": r["n_kept"],
        "timings_s": r["timings_s"], "engine_starts": r["engine_starts"], "engine_compile": decisions,
        "compile_cache": a.compile_cache,
        "acc": {arm: (r[arm] or {}).get("acc") for arm in ("system1", "system2", "distilled")},
        "mean_tokens": {arm: (r[arm] or {}).get("mean_tokens") for arm in ("system1", "system2", "distilled")},
        "summary": res.stdout.strip().splitlines(),
        "notes": [f"{wall:.0f} s end to end from an empty stage cache (compile cache {a.compile_cache}); "
                  f"stage times: {r['timings_s']}; engines started (compile on/off): {decisions}."],
    })


if __name__ == "__main__":
    main()
