"""One engine, one job, in this fresh process: start it, generate, print one JSON line.

Used by gen_speed.py and compile_cache.py so that every measured engine starts in its own
process (as in a pipeline run) and frees its memory at exit. The argument is a JSON object:
``engine`` (vllm | hf), ``prompts``, ``n``, ``max_tokens``, ``options`` (overrides of
conf/engine/<engine>.yaml), ``sampling`` (Sampling fields over T=0.8, top_p=0.95), ``check`` (how many prompts to also answer greedily, so runs
can be compared token for token) and ``profile`` (how many of cProfile's entries by own time to
report for the generate call; the engine core runs in this process, so the sampler is in it).
``texts_sha256`` is a digest of every sample's text, in order, to compare runs sample for sample.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO, bundled_model_path, chat_prompts


def cpu_seconds() -> float:
    """CPU time used so far by this process and its live children (vLLM's engine-core processes)."""
    import psutil

    me = psutil.Process()
    return sum(sum(p.cpu_times()[:2]) for p in [me, *me.children(recursive=True)])


def top_entries(prof: Any, k: int) -> list[dict[str, Any]]:
    """cProfile's ``k`` entries with the most own time (seconds, calls)."""
    import pstats

    stats = pstats.Stats(prof).stats  # (file, line, name) -> (calls, ncalls, tottime, cumtime, callers)
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:k]
    return [{"function": f"{Path(f).name}:{line}({name})" if f != "~" else name, "own_s": round(v[2], 2),
             "cum_s": round(v[3], 2), "calls": v[1]} for (f, line, name), v in rows]


def own_time_line(entries: list[dict[str, Any]], k: int = 4) -> str:
    """``top_entries``' first ``k`` entries as one line: ``function own s; ...``."""
    return "; ".join(f"{r['function']} {r['own_s']:.1f} s" for r in entries[:k])


def texts_digest(texts: Any) -> str:
    """A digest of every sample's text, in order: two runs with equal digests gave the same samples."""
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()


def main(args: dict) -> dict:
    from omegaconf import OmegaConf

    from s2distill.engines.base import Sampling

    prompts = chat_prompts(256)
    # ``prompt_ids``: these prompts of the bench job (e.g. a seeded random subset), else the first ``prompts``
    chats = [prompts[i] for i in args["prompt_ids"]] if args.get("prompt_ids") else prompts[: args["prompts"]]
    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "engine" / f"{args['engine']}.yaml"))
    cfg.pop("name")
    cfg.update(seed=0, use_tqdm=False, **args.get("options", {}))
    model = bundled_model_path()
    t0 = time.perf_counter()
    if args["engine"] == "vllm":
        from s2distill.engines.vllm import VLLMEngine

        eng = VLLMEngine(model, **cfg)
    else:
        from s2distill.engines.hf import HFEngine

        eng = HFEngine(model, **cfg)
    start = time.perf_counter() - t0
    out: dict = {"start_s": start, "compiled": getattr(eng, "compiled", False), "dtype": getattr(eng, "dtype", None)}
    if args.get("check"):
        greedy = eng.generate(prompts[: args["check"]], 1, Sampling(temperature=0.0, max_tokens=32))
        out["greedy"] = [cs[0].text for cs in greedy]
    if chats:
        t1, cpu1 = time.perf_counter(), cpu_seconds()
        samp = {"temperature": 0.8, "top_p": 0.95, **args.get("sampling", {})}  # e.g. top_k via "extra"
        prof = None
        if args.get("profile"):
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        outs = eng.generate(chats, args["n"], Sampling(max_tokens=args["max_tokens"], **samp))
        if prof is not None:
            prof.disable()
            out["profile"] = top_entries(prof, int(args["profile"]))
        out["texts_sha256"] = texts_digest(c.text for cs in outs for c in cs)
        out.update(gen_s=time.perf_counter() - t1, tokens=sum(c.n_tokens for cs in outs for c in cs),
                   prompts=len(chats), completions=sum(len(cs) for cs in outs))
        # cores kept busy by this process tree while generating (2.0 = both cores of this machine)
        out["cores_busy"] = round((cpu_seconds() - cpu1) / out["gen_s"], 2)
        out["tokens_per_s"] = out["tokens"] / out["gen_s"]
    eng.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
