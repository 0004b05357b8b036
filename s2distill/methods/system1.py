"""System 1: ask for the answer directly. Also the prompt of the distilled model."""

from __future__ import annotations

from typing import Any

from s2distill.engines.base import Engine, Sampling
from s2distill.methods.base import METHODS, Method, Trace
from s2distill.tasks.base import Task


@METHODS.register("system1")
class System1(Method):
    name = "system1"
    default_max_tokens = {"answer": 32}

    def run(self, rows: list[dict[str, Any]], task: Task, engine: Engine, n: int, sampling: Sampling) -> list[list[Trace]]:
        return self.one_step([task.direct_prompt(r) for r in rows], task, engine, n, sampling, "answer")
