"""Where the default cell's generate stage spends its time, before and after the sort-free top-p
mask (issue 13).

Runs the real generate stage of the default ``method=rar task=coin_flip`` cell (conf/ defaults:
96 unlabeled inputs x n=4, two RaR steps, T=0.8, top_p=0.95) through the vLLM engine from an empty
stage cache, under cProfile, each in a fresh process: with vLLM's own top-p sort
(``engine.cpu_top_p_prefilter=0``), with the default prefilter, and with the prefilter but
without vLLM's prefix caching (``engine.extra.enable_prefix_caching=false``). Reports the stage's wall time
(engine start excluded), its generated tokens, a digest of every sample and cProfile's entries with
the most own time.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/generate_profile.py
"""

from __future__ import annotations

import cProfile
import json
import sys
import time

from common import default_cell, record, run_script
from engine_job import own_time_line, texts_digest, top_entries


def stage(prefilter: int, prefix_caching: bool = True) -> dict:
    from s2distill import pipeline

    with default_cell(f"engine.cpu_top_p_prefilter={prefilter}",
                      f"+engine.extra.enable_prefix_caching={str(prefix_caching).lower()}") as (ctx, rows, _):
        t0 = time.perf_counter()
        ctx.engines.get(ctx.model.path)
        start_s = time.perf_counter() - t0
        prof = cProfile.Profile()
        t1 = time.perf_counter()
        prof.enable()
        traces, _ = pipeline.generate(ctx, rows)
        prof.disable()
        gen_s = time.perf_counter() - t1
    tokens = sum(t.tokens for ts in traces for t in ts)
    return {"prefilter": prefilter, "prefix_caching": prefix_caching, "start_s": start_s, "generate_s": gen_s, "tokens": tokens,
            "tokens_per_s": tokens / gen_s, "texts_sha256": texts_digest(t.text for ts in traces for t in ts),
            "profile": top_entries(prof, 8)}


def main() -> None:
    arms = (("sort", 0, True), ("prefilter", 256, True), ("prefilter_no_prefix_caching", 256, False))
    runs = {name: run_script("generate_profile.py", "--child", str(pf), str(pc)) for name, pf, pc in arms}
    before, after, nopc = runs["sort"], runs["prefilter"], runs["prefilter_no_prefix_caching"]
    record("generate_profile", {
        "default_cell_generate_s_vllm_sort": round(before["generate_s"], 1),
        "default_cell_generate_s": round(after["generate_s"], 1),
        "prefix_caching_speedup": round(nopc["generate_s"] / after["generate_s"], 2),
    }, {
        "runs": runs,
        "notes": [
            f"Default cell's generate stage (rar x coin_flip, 96 inputs x n=4, two steps): {before['generate_s']:.0f} s "
            f"with vLLM's top-p sort, {after['generate_s']:.0f} s with the prefilter "
            f"(x{before['generate_s'] / after['generate_s']:.2f}); {after['tokens']} tokens; same samples: "
            f"{before['texts_sha256'] == after['texts_sha256']}.",
            f"Own time before: {own_time_line(before['profile'])}.",
            f"Own time after: {own_time_line(after['profile'])}.",
            f"Without vLLM's prefix caching (on by default; RaR's second step repeats the question, and the n "
            f"samples share each prompt): {nopc['generate_s']:.0f} s, x{nopc['generate_s'] / after['generate_s']:.2f} "
            f"the default; same samples: {nopc['texts_sha256'] == after['texts_sha256']}.",
        ],
    })


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(stage(int(sys.argv[2]), sys.argv[3] == "True")))
    else:
        main()
