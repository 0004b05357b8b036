"""The demo cell's generate stage before and after the sort-free top-p prefilter (issue 13).

Runs ``make demo``'s cell (the positive control at demo size: ``+experiment=positive_control
task.n_train=45 task.n_test=120 generate.n=4``) twice from empty stage caches, each a fresh
``python -m s2distill`` process: with vLLM's own top-p sort (``engine.cpu_top_p_prefilter=0``)
and with the default prefilter, and reads each run's ``timings_s`` from its results.json. The
demo samples with top_k=50 and top_p=1.0 (conf/experiment/positive_control.yaml), which the
prefilter leaves to vLLM's top-k path, so no change is expected; this measures that.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/demo_generate.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, record

DEMO = ["+experiment=positive_control", "task.n_train=45", "task.n_test=120", "generate.n=4"]


def run(prefilter: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "s2distill", *DEMO, f"engine.cpu_top_p_prefilter={prefilter}",
                        f"paths.cache_dir={tmp}/cache", f"hydra.run.dir={tmp}/run"], cwd=REPO, check=True,
                       capture_output=True, text=True)
        wall = time.perf_counter() - t0
        res = json.loads(Path(f"{tmp}/run/results.json").read_text())
    return {"prefilter": prefilter, "wall_s": round(wall, 1), "timings_s": res["timings_s"],
            "n_kept": res["n_kept"], "system2_acc": res["system2"]["acc"], "distilled_acc": (res["distilled"] or {}).get("acc")}


def main() -> None:
    before, after = run(0), run(256)
    record("demo_generate", {
        "demo_generate_s_vllm_sort": before["timings_s"]["generate"],
        "demo_generate_s": after["timings_s"]["generate"],
    }, {
        "overrides": DEMO, "before": before, "after": after,
        "notes": [f"make demo's cell: generate stage {before['timings_s']['generate']:.0f} s with vLLM's sort, "
                  f"{after['timings_s']['generate']:.0f} s with the prefilter; whole command {before['wall_s']:.0f} s vs "
                  f"{after['wall_s']:.0f} s; kept {before['n_kept']} vs {after['n_kept']}."],
    })


if __name__ == "__main__":
    main()
