"""torch.compile on CPU: cold vs warm start, and decoding speed compiled vs eager.

Every engine starts in its own fresh process (bench/engine_job.py) with conf/engine/vllm.yaml,
with VLLM_CACHE_ROOT pointed at a new empty folder, in this order:
  1. compiled, empty compile cache (cold): compiles and saves the artifact;
  2. compiled again (warm): s2distill's fix lets vLLM load the artifact; runs the generation job;
  3. compiled, warm cache, without the fix (``worker_extension_cls`` cleared): vLLM 0.32 as is,
     which fails to load its own artifact and compiles again;
  4. eager on the same generation job, for the compiled / eager ratio.
The job is gen_speed.py's (256 prompts x n=8 x up to 128 tokens; ``--prompts`` shrinks it). Runs 1-3 also answer 8
prompts greedily: a loaded artifact must give the tokens the freshly compiled model gave.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/compile_cache.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import add_job_args, record, run_job


def main() -> None:
    ap = argparse.ArgumentParser()
    add_job_args(ap)
    a = ap.parse_args()
    job = {"engine": "vllm", "n": a.n, "max_tokens": a.max_tokens, "check": 8}
    with tempfile.TemporaryDirectory() as d:
        env = {"VLLM_CACHE_ROOT": d}
        logs = {k: str(Path(d) / f"{k}.log") for k in ("cold", "warm", "unfixed")}
        cold = run_job({**job, "prompts": 0, "options": {"compile": True}, "log": logs["cold"]}, env=env)
        warm = run_job({**job, "prompts": a.prompts, "options": {"compile": True}, "log": logs["warm"]}, env=env)
        unfixed = run_job({**job, "prompts": 0, "log": logs["unfixed"],
                           "options": {"compile": True, "extra": {"worker_extension_cls": ""}}}, env=env)
        text = {k: Path(p).read_text() for k, p in logs.items()}
    eager = run_job({**job, "prompts": a.prompts, "check": 0})
    loaded = "Directly load AOT compilation" in text["warm"]
    assert cold["compiled"] and warm["compiled"] and loaded, "the warm start did not load the compiled artifact"
    assert "finalize_loading" in text["unfixed"], "expected vLLM 0.32's load failure without the fix"
    assert warm["greedy"] == cold["greedy"], "the loaded artifact answers differently from the fresh compile"
    record("compile_cache", {
        "engine_start_compiled_cold_s": round(cold["start_s"], 1),
        "engine_start_compiled_s": round(warm["start_s"], 1),
        "engine_start_compiled_vllm_aot_s": round(unfixed["start_s"], 1),
        "gen_tokens_per_s_compiled": round(warm["tokens_per_s"], 1),
        "compile_speedup_over_eager": round(warm["tokens_per_s"] / eager["tokens_per_s"], 2),
    }, {
        "job": {"prompts": a.prompts, "n": a.n, "max_tokens": a.max_tokens, "temperature": 0.8},
        "cold": cold | {"greedy": None}, "warm": warm | {"greedy": None}, "unfixed": unfixed | {"greedy": None},
        "eager": eager,
        "warm_loaded_artifact": loaded, "greedy_identical_cold_vs_warm": True,
        "notes": [
            "Why vLLM's cache did not help: on CPU vLLM compiles the whole model with plain Inductor "
            "(mode DYNAMO_TRACE_ONCE). It saves the AOT artifact (VLLM_CACHE_ROOT/torch_compile_cache/"
            "torch_aot_compile/<hash>/rank_0_0/model) at every compiled start, but loading it calls "
            "compiled_fn.finalize_loading(), which only its own piecewise backend's artifacts define; "
            "torch's BundledAOTAutogradSerializableCallable does not, so every load fails with "
            "\"'function' object has no attribute 'finalize_loading'\" and the model compiles again "
            f"(run 3: {unfixed['start_s']:.0f} s).",
            "Fix (s2distill/engines/vllm.py): compiled CPU engines pass worker_extension_cls="
            "s2distill.engines.vllm.AOTLoadFix; resolving it in the worker adds the missing no-op method "
            f"before the model compiles. Warm start {warm['start_s']:.0f} s vs cold {cold['start_s']:.0f} s; "
            "the loaded artifact's greedy answers equal the fresh compile's.",
            f"Decoding: compiled {warm['tokens_per_s']:.0f} tok/s vs eager {eager['tokens_per_s']:.0f} tok/s "
            "on the same job.",
        ],
    })


if __name__ == "__main__":
    main()
