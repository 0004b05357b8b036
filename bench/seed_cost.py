"""Cost of per-batch seeding: the same job through ``VLLMEngine.generate`` with and without
``Sampling.seed`` (per-request seeds), interleaved in one engine so both see the same machine load.

Usage: ``.venv/bin/python bench/seed_cost.py [chats] [n] [max_tokens] [reps]``; prints one line
per call and a JSON summary (tokens/s per mode). Measured 2026-11-23 on the shared 2-core machine
(heavily loaded by other jobs, ~7 tok/s instead of ~230): 8 chats x n=4 x 16 tokens, 3 reps,
unseeded 6.25 / 7.16 / 7.53 tok/s, seeded 6.26 / 7.56 / 6.70: no difference beyond the noise.
"""

from __future__ import annotations

import json
import sys
import time

from common import bundled_model_path

if __name__ == "__main__":
    from s2distill.engines.base import Sampling, user
    from s2distill.engines.vllm import VLLMEngine

    nchat, n, max_tokens, reps = (int(a) for a in (sys.argv[1:5] + ["32", "4", "32", "3"][len(sys.argv) - 1:]))
    eng = VLLMEngine(bundled_model_path(), dtype="bfloat16", max_model_len=1024, seed=0, use_tqdm=False,
                     compile=False)
    chats = [user(f"Question {i}: is a coin still heads up after {i} flips? Explain.") for i in range(nchat)]
    res: dict[str, list[float]] = {}
    for r in range(reps):
        for mode in ("unseeded", "seeded"):
            samp = Sampling(temperature=0.8, top_p=0.95, max_tokens=max_tokens, extra={"ignore_eos": True},
                            seed=1000 + r if mode == "seeded" else None)
            t = time.perf_counter()
            outs = eng.generate(chats, n, samp)
            dt = time.perf_counter() - t
            tokens = sum(c.n_tokens for cs in outs for c in cs)
            res.setdefault(mode, []).append(round(tokens / dt, 2))
            print(f"{mode} rep {r}: {tokens} tokens in {dt:.2f} s = {tokens / dt:.1f} tok/s", flush=True)
    eng.close()
    print(json.dumps(res))
