"""Put on PYTHONPATH by bench/suite_time.py for its "before" run: every Python process started with
it (pytest and the subprocesses its tests launch) keeps vLLM's own top-p sort, as before
engines/fast_top_p.py existed. Each skipped install appends a line to $S2DISTILL_BENCH_SKIPPED_INSTALLS,
so the run can show the switch took effect."""

import os

from s2distill.engines import fast_top_p


def _skip_install(prefilter: int = fast_top_p.DEFAULT_PREFILTER) -> None:
    path = os.environ.get("S2DISTILL_BENCH_SKIPPED_INSTALLS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {prefilter}\n")


fast_top_p.install = _skip_install
