"""Chain-of-Thought (Kojima et al. 2022): think step by step, then state the answer."""

from __future__ import annotations

from typing import Any

from s2distill.engines.base import Chat, Engine, Sampling
from s2distill.methods.base import METHODS, Method, Trace, reasoned_chat
from s2distill.tasks.base import Task


@METHODS.register("cot")
class CoT(Method):
    name = "cot"
    default_max_tokens = {"reason": 256}
    demo_steps = ("reason",)
    reason_prompt = "{question}\nLet's think step by step. {final}"

    def run(self, rows: list[dict[str, Any]], task: Task, engine: Engine, n: int, sampling: Sampling) -> list[list[Trace]]:
        prompts = [self.reason_prompt.format(question=task.question(r), final=task.final_instruction) for r in rows]
        return self.one_step(prompts, task, engine, n, sampling, "reason")

    def teacher_chat(self, row: dict[str, Any], trace: Trace, task: Task) -> Chat | None:
        """The question, then the sampled reasoning, then the System-1 question again."""
        return reasoned_chat(self, "reason", self.reason_prompt, row, trace, task)
