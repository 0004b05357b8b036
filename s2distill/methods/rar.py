"""Rephrase and Respond (Deng et al. 2023), two-step and one-step variants."""

from __future__ import annotations

from typing import Any

from s2distill.engines.base import Chat, Engine, Sampling, user
from s2distill.methods.base import METHODS, Method, Trace, reasoned_chat
from s2distill.tasks.base import Task


@METHODS.register("rar")
class RaR(Method):
    """Step 1 samples ``n`` rephrasings; step 2 answers once per rephrasing, seeing both texts."""

    name = "rar"
    default_max_tokens = {"rephrase": 96, "respond": 160}
    demo_steps = ("rephrase",)
    rephrase_prompt = (
        '"{question}"\nGiven the above question, rephrase and expand it to help you do better '
        "answering. Maintain all information in the original question."
    )
    respond_prompt = (
        "(original) {question}\n(rephrased) {rephrased}\n"
        "Use your answer for the rephrased question to answer the original question. {final}"
    )

    def run(self, rows: list[dict[str, Any]], task: Task, engine: Engine, n: int, sampling: Sampling) -> list[list[Trace]]:
        questions = [task.question(r) for r in rows]
        reph = engine.generate(
            [self.chat("rephrase", self.rephrase_prompt.format(question=q), task) for q in questions],
            n, self.sampling(sampling, "rephrase"), "rar: rephrase",
        )
        chats = [
            user(self.respond_prompt.format(question=q, rephrased=c.text.strip(), final=task.final_instruction))
            for q, cs in zip(questions, reph) for c in cs
        ]
        resp = engine.generate(chats, 1, self.sampling(sampling, "respond"), "rar: respond")
        traces, k = [], 0
        for cs in reph:
            row_traces = []
            for c in cs:
                r = resp[k][0]
                k += 1
                row_traces.append(Trace(task.extract(r.text), r.text, c.n_tokens + r.n_tokens, {"rephrased": c.text}))
            traces.append(row_traces)
        return traces

    def teacher_chat(self, row: dict[str, Any], trace: Trace, task: Task) -> Chat | None:
        """The respond step's prompt: the question with the sampled rephrasing."""
        return user(self.respond_prompt.format(question=task.question(row), rephrased=trace.steps["rephrased"].strip(),
                                               final=task.final_instruction))


@METHODS.register("rar_1step")
class RaR1Step(Method):
    name = "rar_1step"
    default_max_tokens = {"respond": 256}
    demo_steps = ("respond",)
    respond_prompt = '"{question}"\nRephrase and expand the question, and respond. {final}'

    def run(self, rows: list[dict[str, Any]], task: Task, engine: Engine, n: int, sampling: Sampling) -> list[list[Trace]]:
        prompts = [self.respond_prompt.format(question=task.question(r), final=task.final_instruction) for r in rows]
        return self.one_step(prompts, task, engine, n, sampling, "respond")

    def teacher_chat(self, row: dict[str, Any], trace: Trace, task: Task) -> Chat | None:
        return reasoned_chat(self, "respond", self.respond_prompt, row, trace, task)

