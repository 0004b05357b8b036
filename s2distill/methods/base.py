"""The method interface: a strategy turns examples into engine calls, step by step.

A method sends *all* examples of a step to the engine in one call; its outputs feed the next
step's prompts. ``Trace.answer`` is what filters vote on and what a distilled model learns;
intermediate reasoning stays in ``Trace.steps`` for inspection only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from s2distill.engines.base import Chat, Engine, Sampling, derive_seed, user
from s2distill.errors import UserError
from s2distill.methods import demos as demos_lib
from s2distill.registry import Registry
from s2distill.tasks.base import Task


@dataclass
class Trace:
    answer: str | None
    text: str
    tokens: int
    steps: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Method:
    """Base class. ``max_tokens`` bounds each step (name → tokens); ``demos`` names a file of
    demonstrations for the steps in ``demo_steps`` (see ``methods/demos.py``)."""

    name: str = ""
    #: task names this method can run on; ``None`` means any
    tasks: tuple[str, ...] | None = None
    default_max_tokens: dict[str, int] = {}
    #: steps whose prompt is ``<step>_prompt`` filled from the task's input alone: they take demos
    demo_steps: tuple[str, ...] = ()

    def __init__(self, max_tokens: dict[str, int] | None = None, demos: str | None = None, **options: Any) -> None:
        self.max_tokens = {**self.default_max_tokens, **(max_tokens or {})}
        unknown = set(self.max_tokens) - set(self.default_max_tokens)
        if unknown:
            raise UserError(f"method {self.name}: unknown step(s) in max_tokens: {sorted(unknown)}")
        if any(int(v) < 1 for v in self.max_tokens.values()):
            raise UserError(f"method {self.name}: max_tokens must be >= 1 ({self.max_tokens})")
        self.options = options
        if demos is not None and not self.demo_steps:
            raise UserError(f"method {self.name} takes no demos (method.demos); drop the option")
        self.demos = demos_lib.load(str(demos), self.demo_steps) if demos is not None else None

    def chat(self, step: str, text: str, task: Task) -> Chat:
        """The user turn ``text`` of ``step``, after that step's demonstrations (if any) as earlier
        turns: each demo's input rendered through ``<step>_prompt`` as a real input is, then its output."""
        turns: Chat = []
        for d in self.demos.steps.get(step, ()) if self.demos else ():
            turns.append({"role": "user", "content": self.render(step, d.input, task)})
            turns.append({"role": "assistant", "content": d.output})
        return turns + user(text)

    def render(self, step: str, question: str, task: Task) -> str:
        """``<step>_prompt`` filled with an input text (a demo step's prompt)."""
        return getattr(self, f"{step}_prompt").format(question=question, final=task.final_instruction)

    def teacher_chat(self, row: dict[str, Any], trace: Trace, task: Task) -> Chat | None:
        """What a KD teacher is conditioned on when it scores ``trace``'s answer (``train.kd.context:
        system2``): the System-2 context that produced the answer, as the prompt of a chat whose
        reply is the answer. ``None``: this method has no such context (the System-1 prompt is used)."""
        return None

    def step_metrics(self, rows: list[dict[str, Any]], traces: list[list[Trace]], task: Task) -> dict[str, Any]:
        """Quality of intermediate steps, measured without gold (e.g. S2A's rewrites); none by default."""
        return {}

    def check_task(self, task: Task) -> None:
        if self.tasks is not None and task.name not in self.tasks:
            raise UserError(
                f"method {self.name!r} does not apply to task {task.name!r} (it runs on: {', '.join(self.tasks)})"
            )

    def sampling(self, base: Sampling, step: str) -> Sampling:
        """``base`` for one step: its token budget, and (if seeded) a seed of its own, so the
        steps of one batch do not reuse each other's random streams."""
        seed = None if base.seed is None else derive_seed(base.seed, step)
        return base.replace(max_tokens=int(self.max_tokens[step]), seed=seed)

    def run(self, rows: list[dict[str, Any]], task: Task, engine: Engine, n: int, sampling: Sampling) -> list[list[Trace]]:
        """``n`` traces per row, in row order."""
        raise NotImplementedError

    def one_step(
        self, prompts: list[str], task: Task, engine: Engine, n: int, sampling: Sampling, step: str
    ) -> list[list[Trace]]:
        """A single engine call whose outputs hold the final answer."""
        outs = engine.generate([self.chat(step, p, task) for p in prompts], n, self.sampling(sampling, step),
                               f"{self.name}: {step}")
        return [[Trace(task.extract(c.text), c.text, c.n_tokens) for c in cs] for cs in outs]

    def fingerprint_config(self) -> dict[str, Any]:
        cfg = {"name": self.name, "max_tokens": self.max_tokens, "options": self.options,
               "prompts": {k: v for k, v in vars(type(self)).items() if k.endswith("_prompt")}}
        if self.demos is not None:  # by content: the same file elsewhere is the same method
            cfg["demos"] = self.demos.sha256
        return cfg


def reasoned_chat(method: Method, step: str, template: str, row: dict[str, Any], trace: Trace, task: Task) -> Chat:
    """A one-step method's context for a KD teacher: its prompt and its own reasoning as earlier
    turns, then the System-1 question, whose answer the teacher scores."""
    prompt = template.format(question=task.question(row), final=task.final_instruction)
    return [*method.chat(step, prompt, task), {"role": "assistant", "content": trace.text}, *user(task.direct_prompt(row))]


METHODS: Registry[type[Method]] = Registry("method", "s2distill.methods")
