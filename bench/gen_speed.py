"""vLLM vs the transformers engine on one generation job; vLLM's start with the default settings.

Job: 256 chat prompts (the project's task questions) x n=8 samples x up to 128 new tokens,
temperature 0.8, bundled SmolLM2-135M, bf16. vLLM runs the whole job with the engine settings
of conf/engine/vllm.yaml (eager: ``compile: auto`` and no expected size given). The
transformers engine (s2distill.engines.hf with conf/engine/hf.yaml: batches of 16 prompts x 8
return sequences) runs the first ``--hf-prompts`` prompts of the same job: it generates batch
by batch, so its tokens/s on a prefix of the job is its tokens/s on the whole job, which would
take it ~25 min. Each engine runs in its own fresh process (bench/engine_job.py).

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/gen_speed.py
"""

from __future__ import annotations

import argparse

from common import record, run_job


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--hf-prompts", type=int, default=32)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=128)
    a = ap.parse_args()
    job = {"n": a.n, "max_tokens": a.max_tokens}
    v = run_job({"engine": "vllm", "prompts": a.prompts, **job})
    h = run_job({"engine": "hf", "prompts": a.hf_prompts, **job})
    assert not v["compiled"], "the default engine settings must start eager"
    record("gen_speed", {
        "gen_speedup_vllm_over_hf": round(v["tokens_per_s"] / h["tokens_per_s"], 2),
        "engine_start_s": round(v["start_s"], 1),
        "gen_tokens_per_s_eager": round(v["tokens_per_s"], 1),
        "gen_tokens_per_s_hf": round(h["tokens_per_s"], 1),
    }, {
        "job": {"prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens, "temperature": 0.8},
        "vllm": v, "hf": h,
        "notes": [
            f"vLLM ran all {v['prompts']} prompts x n={a.n} ({v['tokens']} tokens in {v['gen_s']:.0f} s); the HF "
            f"engine ran the first {h['prompts']} prompts of the same job with the same settings "
            f"({h['tokens']} tokens in {h['gen_s']:.0f} s): {h['tokens_per_s']:.0f} vs {v['tokens_per_s']:.0f} tok/s.",
            "engine_start_s: VLLMEngine(...) with conf/engine/vllm.yaml (eager, no core reserved, OpenMP "
            "bound to all cores), from the constructor call (importing vLLM included) until it accepts requests.",
        ],
    })


if __name__ == "__main__":
    main()
