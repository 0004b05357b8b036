"""CI's wall time before and after the sort-free top-p mask (issue 13), side by side in one run.

The whole test suite (``pytest``, as ``make test`` runs it in CI) twice on the same tree:
"before" with PYTHONPATH=bench/no_prefilter, whose sitecustomize.py turns
``fast_top_p.install`` into a no-op in pytest and every subprocess its tests start (so every
engine samples top-p through vLLM's whole-vocabulary sort, as before the mask existed), and
"after" as CI runs it. tests/test_fast_top_p.py is left out of both runs: it tests the mask
itself and cannot run with it switched off. Recorded per run: wall time, the pass/fail counts,
the slowest tests, and (before) how many engine starts skipped the mask.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/suite_time.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCH, REPO, record

EXCLUDED = "tests/test_fast_top_p.py"


def run_suite(before: bool) -> dict[str, Any]:
    env = {**os.environ}
    skipped = Path(tempfile.mkstemp(prefix="s2distill-skipped-")[1]) if before else None
    if before:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH / "no_prefilter"), env.get("PYTHONPATH")) if p)
        env["S2DISTILL_BENCH_SKIPPED_INSTALLS"] = str(skipped)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=8", f"--ignore={EXCLUDED}"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = res.stdout.strip().splitlines()
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", lines[-1])}
    start = next((i for i, ln in enumerate(lines) if "slowest" in ln and "durations" in ln), None)
    slowest = [ln for ln in lines[start + 1:] if re.match(r"^\d+\.\d+s ", ln)][:8] if start is not None else []
    n_skipped = None
    if skipped is not None:
        n_skipped = len(skipped.read_text().splitlines())
        skipped.unlink()
    return {"wall_s": round(wall, 1), "returncode": res.returncode, "counts": counts, "summary": lines[-1],
            "slowest": slowest, "engine_starts_without_mask": n_skipped}


def main() -> None:
    runs = {"before": run_suite(before=True), "after": run_suite(before=False)}
    b, a = runs["before"]["wall_s"], runs["after"]["wall_s"]
    record("suite_time", {
        "ci_suite_s_vllm_sort": b,
        "ci_suite_s": a,
    }, {
        "excluded": EXCLUDED, "runs": runs,
        "notes": [
            f"Whole test suite (but {EXCLUDED}): {b:.0f} s with vLLM's top-p sort, {a:.0f} s with the "
            f"sort-free mask (x{b / a:.2f}); {runs['before']['summary']} / {runs['after']['summary']}.",
            f"Engine starts that skipped the mask in the 'before' run: {runs['before']['engine_starts_without_mask']}.",
        ],
    })


if __name__ == "__main__":
    main()
