"""Per-batch seeds (pure logic, fake engine): a resumed run samples exactly what an uninterrupted
one would. The real-engine version is tests/test_faults.py::test_resumed_run_equals_uninterrupted_run."""

from __future__ import annotations

import random

import pytest

from s2distill import pipeline
from s2distill.engines.base import Completion, derive_seed


class StreamEngine:
    """Like an engine with one running random state: unseeded samples depend on everything it
    generated before; a seeded call (``Sampling.seed``) draws chat i from ``derive_seed(seed, i)``."""

    model = "fake"

    def __init__(self, fail_after_calls: int | None = None):
        self.state = random.Random(0)
        self.calls, self.fail_after_calls = 0, fail_after_calls
        self.seeds: list[int | None] = []

    def generate(self, chats, n, sampling, desc=""):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("killed")  # the process dies mid-stage
        self.calls += 1
        self.seeds.append(sampling.seed)
        out = []
        for i, _ in enumerate(chats):
            rng = self.state if sampling.seed is None else random.Random(derive_seed(sampling.seed, i))
            out.append([Completion(f"Answer: {rng.choice(['yes', 'no'])} {rng.random():.6f}", 3) for _ in range(n)])
        return out

    def close(self):
        pass


def generate_with(compose, monkeypatch, cache, engine):
    import s2distill.engines as engines

    monkeypatch.setattr(engines, "make_engine", lambda model, cfg: engine)
    cfg = compose("method=rar", "task.n_train=12", "generate.n=3", "generate.batch_size=4", "seed=7",
                  f"paths.cache_dir={cache}")
    ctx = pipeline.build(cfg, None)
    rows = ctx.task.unlabeled(ctx.task.load()["train"]).to_list()
    traces, fp = pipeline.generate(ctx, rows)
    return [[t.to_dict() for t in ts] for ts in traces], ctx.store.dir("generate", fp)


def test_resumed_generation_equals_uninterrupted(compose, monkeypatch, tmp_path):
    whole, _ = generate_with(compose, monkeypatch, tmp_path / "a", StreamEngine())
    with pytest.raises(KeyboardInterrupt):  # rar: 2 calls per batch; killed in the second batch
        generate_with(compose, monkeypatch, tmp_path / "b", StreamEngine(fail_after_calls=3))
    resumed_engine = StreamEngine()
    resumed, d = generate_with(compose, monkeypatch, tmp_path / "b", resumed_engine)
    assert resumed_engine.calls == 2 * 2  # batches 2 and 3 only: batch 1 came from partial.jsonl
    assert resumed == whole
    assert (d / "records.jsonl").read_bytes() == (tmp_path / "a" / d.relative_to(tmp_path / "b")).joinpath(
        "records.jsonl").read_bytes()


def test_batch_seeds_differ_by_stage_batch_step_and_run_seed(compose, monkeypatch, tmp_path):
    eng = StreamEngine()
    generate_with(compose, monkeypatch, tmp_path / "a", eng)
    assert None not in eng.seeds and len(set(eng.seeds)) == len(eng.seeds) == 6  # 3 batches x 2 steps
    assert derive_seed(7, "generate", 0) != derive_seed(7, "generate", 1) != derive_seed(8, "generate", 1)
    assert derive_seed(7, "generate", 0) != derive_seed(7, "eval_system2", 0)
    assert 0 <= derive_seed("x") < 2**31 and derive_seed(7, "generate", 0) == derive_seed(7, "generate", 0)
