"""Gold labels may score, never build training targets.

Every task runs through ``pipeline.run`` twice (fake engines, stand-in trainer; separate caches),
once with every gold column of both splits corrupted. Everything before evaluation — the
samples, resampled variants, filter decisions and the SFT examples — must be byte-identical,
and no stage before evaluation may even receive a gold column.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import DatasetDict

from s2distill.tasks.base import GOLD_COLUMNS
from tests.conftest import FakeEngine

# per task: a System-2 method, a filter, and fake answers that parse (so the filter keeps some)
TASKS = {
    "coin_flip": (["method=rar"], ("Answer: yes", "Answer: no")),
    "last_letter": (["method=rar"], ("Answer: abcd", "Answer: wxyz")),
    "biased_qa": (["method=s2a", "filter=usc"], ("Answer: Paris", "Answer: London")),
    "llm_judge": (["method=bsm", "method.merge=llm", "filter=swap"], ("[[A]]", "[[B]]")),
    "gsm8k": (["method=cot"], ("The answer is 42.", "The answer is 7.")),
}


def corrupt_value(v):
    if isinstance(v, str):
        return f"CORRUPTED {v[::-1]}"
    if isinstance(v, list):
        return [corrupt_value(x) for x in v] + ["CORRUPTED"]
    return v


def corrupt(d: DatasetDict, seen: set[str]) -> DatasetDict:
    def flip(r):
        return {c: corrupt_value(r[c]) for c in r if c in GOLD_COLUMNS}

    seen.update(c for c in d["train"].column_names if c in GOLD_COLUMNS)
    return DatasetDict({k: ds.map(flip) for k, ds in d.items()})


def watch(received: list[dict]):
    """A ``setup`` hook recording every row the method (training and test inputs) and the
    filter get: prompts are built from these, so none may hold a gold column."""
    def setup(ctx):
        run, decide = ctx.method.run, ctx.filter.decide

        def method_run(rows, *a, **kw):
            received.extend(rows)
            return run(rows, *a, **kw)

        def filter_decide(rows, *a, **kw):
            received.extend(rows)
            return decide(rows, *a, **kw)

        ctx.method.run, ctx.filter.decide = method_run, filter_decide
    return setup


def before_evaluation(run_dir: Path) -> dict[str, bytes]:
    """Every artifact the run used before evaluation, and the SFT examples, as bytes."""
    arts = run_dir / "artifacts"
    out = {p.name: p.read_bytes() for p in sorted(arts.glob("*.jsonl")) if not p.name.startswith("eval_")}
    out["sft_examples"] = (arts / "train" / "examples.json").read_bytes()
    return out


@pytest.mark.parametrize("task", sorted(TASKS))
def test_corrupting_every_gold_column_changes_nothing_before_evaluation(fake_run, fake_engine, monkeypatch,
                                                                        tmp_path, task):
    overrides, answers = TASKS[task]
    monkeypatch.setattr(FakeEngine, "default_answers", answers)
    args = [f"task={task}", *overrides, "task.n_train=12", "task.n_test=6", "generate.n=3",
            "generate.batch_size=5", "filter.threshold=0.5"]
    arts, received, corrupted = {}, {}, set()
    for name in ("clean", "corrupt"):
        rows: list[dict] = []
        watching = watch(rows)

        def setup(ctx, name=name, watching=watching):
            watching(ctx)
            if name == "corrupt":
                real_load = ctx.task.load
                ctx.task.load = lambda: corrupt(real_load(), corrupted)

        res = fake_run(*args, f"paths.cache_dir={tmp_path / name / 'cache'}", run_dir=tmp_path / name / "run",
                       setup=setup)
        arts[name], received[name] = before_evaluation(tmp_path / name / "run"), rows
        assert res["n_kept"] > 0  # there is something to distil: identical data is not trivially empty
    assert "gold" in corrupted and (task != "biased_qa" or {"aliases", "incorrect_answer"} <= corrupted)
    assert arts["clean"] == arts["corrupt"]
    assert {"generate.jsonl", "filter.jsonl", "sft_examples"} <= arts["clean"].keys()
    for rows in received.values():  # no prompt-building stage even saw a gold column
        assert rows and not any(c in r for r in rows for c in GOLD_COLUMNS)
