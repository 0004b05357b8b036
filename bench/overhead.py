"""The generate stage's own overhead: wall time not spent inside ``engine.generate``.

Runs the real generate stage of the default ``method=rar task=coin_flip`` cell (conf/ defaults:
96 unlabeled inputs x n=4, two RaR steps, batches of 48, resumable batch writes with fsync)
through the vLLM engine, with ``engine.generate`` wrapped in a timer. The engine is started
before the stage so that its start (reported separately) is not counted as stage overhead.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/overhead.py
"""

from __future__ import annotations

import sys
import time

from common import default_cell, record


def main() -> None:
    from s2distill import pipeline

    with default_cell(*sys.argv[1:]) as (ctx, rows, overrides):
        cfg = ctx.cfg
        # the engine starts before the stage: its start is reported, not counted
        t0 = time.perf_counter()
        engine = ctx.engines.get(ctx.model.path)
        start_s = time.perf_counter() - t0
        inside, calls, tokens = 0.0, 0, 0
        generate = engine.generate

        def timed_generate(*args, **kw):
            nonlocal inside, calls, tokens
            t = time.perf_counter()
            out = generate(*args, **kw)
            inside += time.perf_counter() - t
            calls += 1
            tokens += sum(c.n_tokens for cs in out for c in cs)
            return out

        engine.generate = timed_generate
        t1 = time.perf_counter()
        pipeline.generate(ctx, rows)
        wall = time.perf_counter() - t1
    frac = (wall - inside) / wall
    record("overhead", {"gen_overhead_fraction": round(frac, 4)}, {
        "overrides": overrides, "n_inputs": len(rows), "n": int(cfg.generate.n),
        "batch_size": int(cfg.generate.batch_size), "engine_calls": calls, "tokens": tokens,
        "stage_wall_s": round(wall, 2), "inside_engine_generate_s": round(inside, 2),
        "engine_start_s (not counted)": round(start_s, 1),
        "notes": [f"generate stage {wall:.1f} s, of which {inside:.1f} s inside engine.generate "
                  f"({calls} calls, {tokens} tokens): overhead {wall - inside:.2f} s = {frac:.2%}."],
    })


if __name__ == "__main__":
    main()
