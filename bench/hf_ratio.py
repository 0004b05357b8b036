"""vLLM ÷ the transformers engine on more than one batch (issue 13): a seeded random subset of the
bench job's prompts, with the HF engine's spread across batches.

Job: ``--prompts`` (64) prompts drawn with a fixed seed from the bench job's 256, x n=8 x up to
128 new tokens, T=0.8, top_p=0.95, bundled SmolLM2-135M, ``engine.dtype=auto`` for both. The
HF engine (conf/engine/hf.yaml: batches of 16 prompts x 8 return sequences) runs the subset as
its batches, each in its own fresh process, so each batch's tokens/s is one sample; vLLM
(conf/engine/vllm.yaml) runs the whole subset at once, as a pipeline stage would. The ratio is
vLLM's tokens/s over the HF engine's pooled tokens/s (all its tokens over all its time), with
the ratio against HF's slowest and fastest batch beside it.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/hf_ratio.py
"""

from __future__ import annotations

import argparse
import random
import statistics

from common import add_job_args, record, run_job


def main() -> None:
    ap = argparse.ArgumentParser()
    add_job_args(ap, prompts=64, max_tokens=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hf-batch", type=int, default=16)
    a = ap.parse_args()
    ids = sorted(random.Random(a.seed).sample(range(256), a.prompts))
    job = {"n": a.n, "max_tokens": a.max_tokens}
    v = run_job({"engine": "vllm", "prompt_ids": ids, "prompts": len(ids), **job})
    hf = [run_job({"engine": "hf", "prompt_ids": ids[i : i + a.hf_batch], "prompts": a.hf_batch, **job})
          for i in range(0, len(ids), a.hf_batch)]
    per_batch = [h["tokens_per_s"] for h in hf]
    pooled = sum(h["tokens"] for h in hf) / sum(h["gen_s"] for h in hf)
    record("hf_ratio", {
        "gen_speedup_vllm_over_hf": round(v["tokens_per_s"] / pooled, 2),
    }, {
        "job": {"prompt_ids": ids, "seed": a.seed, "n": a.n, "max_tokens": a.max_tokens, "hf_batch": a.hf_batch},
        "vllm": v, "hf_batches": hf,
        "notes": [
            f"{len(ids)} prompts (seed {a.seed}) x n={a.n} x <= {a.max_tokens} tokens: vLLM {v['tokens_per_s']:.0f} tok/s "
            f"({v['dtype']}); the HF engine {pooled:.1f} tok/s pooled over {len(hf)} batches of {a.hf_batch} prompts "
            f"(per batch {min(per_batch):.1f}-{max(per_batch):.1f}, sd {statistics.stdev(per_batch):.1f}; {hf[0]['dtype']}): "
            f"x{v['tokens_per_s'] / pooled:.1f} (x{v['tokens_per_s'] / max(per_batch):.1f} to "
            f"x{v['tokens_per_s'] / min(per_batch):.1f} against single batches).",
        ],
    })


if __name__ == "__main__":
    main()
