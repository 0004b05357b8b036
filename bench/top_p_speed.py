"""Top-p without vLLM's whole-vocabulary sort (issue 13): the sampling rules side by side in one run.

Job: the bench job (gen_speed.py's 256 chat prompts x n=8 x up to 128 new tokens, stopping at
EOS; ``--prompts`` / ``--max-tokens`` shrink it), bundled SmolLM2-135M, vLLM eager with
conf/engine/vllm.yaml (``engine.dtype=auto``: bfloat16 where the CPU has native bf16), seeded
sampling, each engine in its own fresh process. Runs: the generate stage's default T=0.8,
top_p=0.95 through vLLM's own mask (``engine.cpu_top_p_prefilter=0``: it sorts all 49,152 logits
of every sequence at every step) and through engines/fast_top_p.py (the default: the same mask
from the 256 largest logits), then top_p=1.0, top_k=50 and greedy (n=1 over n x as many prompts,
the same number of sequences). The two top_p=0.95 runs must give the same samples (a digest of
every text). Both top_p=0.95 runs are profiled (cProfile, own time): where the time goes
before and after.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/top_p_speed.py
"""

from __future__ import annotations

import argparse

from common import add_job_args, record, run_job, tokens_per_s
from engine_job import own_time_line


def main() -> None:
    ap = argparse.ArgumentParser()
    add_job_args(ap)
    a = ap.parse_args()
    job = {"engine": "vllm", "prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens}
    seeded = {"seed": 1}
    runs = {
        "top_p_sort": run_job({**job, "options": {"cpu_top_p_prefilter": 0}, "sampling": seeded, "profile": 8}),
        "top_p_fast": run_job({**job, "sampling": seeded, "profile": 8}),
        "top_p_1": run_job({**job, "sampling": {**seeded, "top_p": 1.0}}),
        "top_k_50": run_job({**job, "sampling": {**seeded, "top_p": 1.0, "extra": {"top_k": 50}}}),
        "greedy": run_job({**job, "prompts": a.prompts * a.n, "n": 1, "sampling": {"temperature": 0.0, "top_p": 1.0}}),
    }
    tps = tokens_per_s(runs)
    same = runs["top_p_sort"]["texts_sha256"] == runs["top_p_fast"]["texts_sha256"]
    top = {k: runs[k]["profile"][:4] for k in ("top_p_sort", "top_p_fast")}
    record("top_p_speed", {
        "gen_tokens_per_s_default_sampling": tps["top_p_fast"],
        "gen_fraction_of_greedy": round(tps["top_p_fast"] / tps["greedy"], 2),
        "top_p_speedup_over_vllm_sort": round(tps["top_p_fast"] / tps["top_p_sort"], 2),
        "top_p_same_samples_as_vllm_sort": same,
    }, {
        "job": {"prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens, "seed": 1},
        "tokens_per_s": tps, "runs": runs,
        "notes": [
            f"T=0.8, top_p=0.95: vLLM's sort {tps['top_p_sort']:.0f} tok/s, the sort-free mask {tps['top_p_fast']:.0f} "
            f"tok/s (x{tps['top_p_fast'] / tps['top_p_sort']:.2f}); top_p=1.0 {tps['top_p_1']:.0f}, top_k=50 "
            f"{tps['top_k_50']:.0f}, greedy {tps['greedy']:.0f} tok/s. Same samples, text for text: {same}.",
            f"Own time, vLLM's sort: {own_time_line(top['top_p_sort'])}.",
            f"Own time, sort-free mask: {own_time_line(top['top_p_fast'])}.",
        ],
    })


if __name__ == "__main__":
    main()
