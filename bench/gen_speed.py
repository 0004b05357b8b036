"""vLLM vs the transformers engine on one generation job; vLLM's start with the default settings.

Job: 256 chat prompts (the project's task questions) x n=8 samples x up to 128 new tokens,
temperature 0.8, bundled SmolLM2-135M, bf16. vLLM runs the whole job with the engine settings
of conf/engine/vllm.yaml (eager: ``compile: auto`` and no expected size given; engine core
in-process), and again with vLLM's own default of a separate engine-core process. The
transformers engine (s2distill.engines.hf with conf/engine/hf.yaml: bf16, batches of 16
prompts x 8 return sequences) runs the first ``--hf-prompts`` prompts of the same job: it
generates batch by batch, so its tokens/s on a prefix of the job is its tokens/s on the whole
job (which would take it hours here); also in float32. Each engine runs in its own fresh
process (bench/engine_job.py).

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/gen_speed.py
"""

from __future__ import annotations

import argparse

from common import add_job_args, record, run_job


def main() -> None:
    ap = argparse.ArgumentParser()
    add_job_args(ap)
    ap.add_argument("--hf-prompts", type=int, default=16)
    a = ap.parse_args()
    job = {"n": a.n, "max_tokens": a.max_tokens}
    v = run_job({"engine": "vllm", "prompts": a.prompts, **job})
    mp = run_job({"engine": "vllm", "prompts": a.prompts, "options": {"cpu_inprocess": False}, **job})
    h = run_job({"engine": "hf", "prompts": a.hf_prompts, **job})
    h32 = run_job({"engine": "hf", "prompts": a.hf_prompts, "options": {"dtype": "float32"}, **job})
    assert not v["compiled"] and not mp["compiled"], "the default engine settings must start eager"
    record("gen_speed", {
        "gen_speedup_vllm_over_hf": round(v["tokens_per_s"] / h["tokens_per_s"], 2),
        "engine_start_s": round(v["start_s"], 1),
        "engine_start_multiprocess_s": round(mp["start_s"], 1),
        "gen_tokens_per_s_eager": round(v["tokens_per_s"], 1),
        "gen_tokens_per_s_eager_multiprocess": round(mp["tokens_per_s"], 1),
        "gen_tokens_per_s_hf": round(h["tokens_per_s"], 1),
        "gen_tokens_per_s_hf_fp32": round(h32["tokens_per_s"], 1),
    }, {
        "job": {"prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens, "temperature": 0.8},
        "vllm": v, "vllm_multiprocess": mp, "hf": h, "hf_fp32": h32,
        "notes": [
            f"vLLM (conf defaults: eager, engine core in-process) ran all {v['prompts']} prompts x n={a.n}: "
            f"{v['tokens']} tokens in {v['gen_s']:.0f} s = {v['tokens_per_s']:.0f} tok/s "
            f"({v['cores_busy']} cores busy). The HF engine (conf/engine/hf.yaml: bf16, 16 prompts x 8 "
            f"sequences per batch) ran the first {h['prompts']} prompts of the same job: {h['tokens']} tokens in "
            f"{h['gen_s']:.0f} s = {h['tokens_per_s']:.1f} tok/s ({h['cores_busy']} cores busy); it generates "
            "batch by batch (each batch runs until its longest sequence ends), so its rate on a prefix of "
            "the job estimates its rate on the whole job; prompt lengths vary, so a short prefix is a noisy "
            "estimate. In float32 the HF engine makes "
            f"{h32['tokens_per_s']:.1f} tok/s, so vLLM / HF-fp32 = {v['tokens_per_s'] / h32['tokens_per_s']:.1f}.",
            f"engine_start_s: VLLMEngine(...) with conf/engine/vllm.yaml, from the constructor call (importing "
            f"vLLM included) until it accepts requests. The same with a separate engine-core process "
            f"(cpu_inprocess=false, vLLM's default): {mp['start_s']:.0f} s to start, "
            f"{mp['tokens_per_s']:.0f} tok/s ({mp['cores_busy']} cores busy).",
        ],
    })


if __name__ == "__main__":
    main()
