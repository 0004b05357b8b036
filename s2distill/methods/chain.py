"""A System-2 strategy as a prompt chain in YAML: an ordered list of steps, no Python.

``conf/method/<name>.yaml`` with ``name: chain`` (``conf/method/rar_chain.yaml`` is RaR)::

    name: chain
    label: rar_chain            # what results call the method
    demos: null                 # demonstrations for the first step (methods/demos.py)
    steps:
      - name: rephrase          # step 1 is sampled generate.n times
        template: '"{question}"\\nGiven the above question, rephrase and expand it ...'
        max_tokens: 96
      - name: respond           # each later step answers once per sample, as RaR does
        template: "(original) {question}\\n(rephrased) {rephrase}\\n... {final}"
        max_tokens: 160

A template may use ``{question}`` (the task's input), ``{final}`` (the task's final-answer
instruction), ``{direct}`` (its System-1 instruction) and any earlier step's output by the
step's name (stripped of surrounding whitespace). The last step's output is the trace's answer
text; every step's tokens count.

Where a step's output needs real logic, a Python parser registered in ``PARSERS`` turns it into
fields (``{rewrite.context}``) and an outcome, and the next step's ``template`` may be a mapping
from outcome to template; an outcome with no template ends the sample as an abstention. S2A's
rewrite parsing is the one parser here (``conf/method/s2a_chain.yaml``): what is data (prompts,
order, budgets) is YAML, what is logic (parsing, BSM's branch/solve/merge) stays Python.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from s2distill.engines.base import Chat, Engine, Sampling, user
from s2distill.errors import UserError
from s2distill.methods.base import METHODS, Method, Trace, reasoned_chat
from s2distill.tasks.base import Task

#: what every template may use besides earlier steps
GLOBALS = ("question", "final", "direct")
STEP_KEYS = ("name", "template", "max_tokens", "parse", "strip")


def _s2a_rewrite(text: str) -> tuple[str, dict[str, str]]:
    from s2distill.methods.s2a import parse_rewrite

    p = parse_rewrite(text)
    return p.parse, {"context": p.context, "question": p.question}


#: parser name → text → (outcome, fields)
PARSERS: dict[str, Callable[[str], tuple[str, dict[str, str]]]] = {"s2a_rewrite": _s2a_rewrite}


@dataclass(frozen=True)
class Step:
    name: str
    template: str | dict[str, str | None]
    max_tokens: int
    parse: str | None = None
    strip: bool = False  # strip the rendered prompt (S2A's answer prompt is stripped)

    def templates(self) -> list[str]:
        return [t for t in (self.template.values() if isinstance(self.template, dict) else [self.template]) if t]


@METHODS.register("chain")
class Chain(Method):
    """The steps of ``steps`` (see the module docstring)."""

    def __init__(self, steps: list[dict[str, Any]] | None = None, label: str | None = None,
                 max_tokens: dict[str, int] | None = None, demos: str | None = None) -> None:
        self.steps = parse_steps(steps)
        self.name = str(label or "chain")
        self.default_max_tokens = {s.name: s.max_tokens for s in self.steps}
        self.demo_steps = (self.steps[0].name,)
        super().__init__(max_tokens=max_tokens, demos=demos)

    def render(self, step: str, question: str, task: Task) -> str:
        """The first step's prompt for an input text (what demos are rendered through)."""
        s = next(s for s in self.steps if s.name == step)
        return _fill(s.templates()[0], {"question": question, "final": task.final_instruction,
                                        "direct": task.direct_instruction}, s.strip)

    def run(self, rows: list[dict[str, Any]], task: Task, engine: Engine, n: int, sampling: Sampling) -> list[list[Trace]]:
        first = self.steps[0]
        # one state per sample: the values templates see, tokens so far, and whether it abstained
        base = [{"question": task.question(r), "final": task.final_instruction, "direct": task.direct_instruction}
                for r in rows]
        outs = engine.generate([self.chat(first.name, _fill(first.templates()[0], b, first.strip), task) for b in base],
                               n, self.sampling(sampling, first.name), f"{self.name}: {first.name}")
        states = [[{"values": dict(b), "steps": {}, "tokens": 0, "text": None, "outcome": None} for _ in range(n)]
                  for b in base]
        for row_states, cs in zip(states, outs):
            for st, c in zip(row_states, cs):
                self._record(first, st, c.text, c.n_tokens)
        for step in self.steps[1:]:
            live = [st for row_states in states for st in row_states if st["text"] is not None]
            chats, who = [], []
            for st in live:
                template = step.template.get(st["outcome"]) if isinstance(step.template, dict) else step.template
                if template is None:  # this outcome has no next prompt: the sample abstains
                    st["text"], st["abstain"] = "", True
                    continue
                chats.append(user(_fill(template, st["values"], step.strip)))
                who.append(st)
            answers = engine.generate(chats, 1, self.sampling(sampling, step.name), f"{self.name}: {step.name}")
            for st, cs in zip(who, answers):
                self._record(step, st, cs[0].text, cs[0].n_tokens)
        return [[Trace(None if st.get("abstain") else task.extract(st["text"]), st["text"] or "", st["tokens"],
                       st["steps"]) for st in row_states] for row_states in states]

    def _record(self, step: Step, st: dict[str, Any], text: str, tokens: int) -> None:
        st["tokens"] += tokens
        st["text"] = text
        st["steps"][step.name] = text
        st["steps"][f"{step.name}_tokens"] = tokens
        if step.parse:
            outcome, fields = PARSERS[step.parse](text)
            st["outcome"] = outcome
            st["values"][step.name] = SimpleNamespace(**fields)
            st["steps"].update({f"{step.name}.{k}": v for k, v in fields.items()}, parse=outcome)
        else:
            st["values"][step.name] = text.strip()

    def teacher_chat(self, row: dict[str, Any], trace: Trace, task: Task) -> Chat | None:
        """The last step's prompt as this sample saw it (a one-step chain: its reasoning, as CoT)."""
        if len(self.steps) == 1:
            return reasoned_chat(self, self.steps[0].name, self.steps[0].templates()[0], row, trace, task)
        values: dict[str, Any] = {"question": task.question(row), "final": task.final_instruction,
                                  "direct": task.direct_instruction}
        outcome = None
        for step in self.steps[:-1]:
            if step.parse:
                fields = {k.split(".", 1)[1]: v for k, v in trace.steps.items() if k.startswith(f"{step.name}.")}
                values[step.name], outcome = SimpleNamespace(**fields), trace.steps.get("parse")
            else:
                values[step.name] = str(trace.steps.get(step.name, "")).strip()
        last = self.steps[-1]
        template = last.template.get(outcome) if isinstance(last.template, dict) else last.template
        return user(_fill(template, values, last.strip)) if template else None

    def fingerprint_config(self) -> dict[str, Any]:
        cfg = super().fingerprint_config()
        cfg["steps"] = [s.__dict__ for s in self.steps]
        return cfg


def parse_steps(steps: Any) -> list[Step]:
    """Steps from config, checked: names, templates and their placeholders (one line per error)."""
    if not isinstance(steps, list) or not steps:
        raise UserError("method chain: steps: a non-empty list of {name, template, max_tokens}")
    out: list[Step] = []
    for i, raw in enumerate(steps, 1):
        if not isinstance(raw, dict):
            raise UserError(f"method chain: steps[{i}] must be a mapping with name, template, max_tokens")
        unknown = set(raw) - set(STEP_KEYS)
        if unknown:
            raise UserError(f"method chain: steps[{i}]: unknown key(s) {sorted(unknown)} (known: {', '.join(STEP_KEYS)})")
        name = raw.get("name")
        if not isinstance(name, str) or not name.isidentifier() or name in GLOBALS:
            raise UserError(f"method chain: steps[{i}].name must be an identifier other than {', '.join(GLOBALS)} "
                            f"(got {name!r})")
        if any(s.name == name for s in out):
            raise UserError(f"method chain: steps[{i}].name {name!r} is used twice")
        parse = raw.get("parse")
        if parse is not None and parse not in PARSERS:
            raise UserError(f"method chain: steps[{i}].parse: unknown parser {parse!r} (known: {', '.join(PARSERS)})")
        template = raw.get("template")
        if isinstance(template, dict) and i > 1 and out[-1].parse:
            pass  # one template per outcome of the previous step's parser
        elif not isinstance(template, str) or not template:
            raise UserError(f"method chain: steps[{i}].template must be a prompt text"
                            + (" (a mapping by outcome only after a step with a parser)" if isinstance(template, dict) else ""))
        try:
            max_tokens = int(raw.get("max_tokens", 256))
        except (TypeError, ValueError):
            raise UserError(f"method chain: steps[{i}].max_tokens must be an integer (got {raw.get('max_tokens')!r})") from None
        step = Step(name, template, max_tokens, parse, bool(raw.get("strip", False)))
        known = {*GLOBALS, *(s.name for s in out)}
        for t in step.templates():
            for field in _fields(t, i):
                root = field.split(".", 1)[0]
                if root not in known:
                    raise UserError(f"method chain: steps[{i}] ({name}): unknown placeholder {{{field}}} "
                                    f"(known: {', '.join(sorted(known))})")
                if root in (s.name for s in out) and ("." in field) != bool(next(s for s in out if s.name == root).parse):
                    raise UserError(f"method chain: steps[{i}] ({name}): placeholder {{{field}}}: "
                                    f"{root} {'has fields ({' + root + '.<field>})' if '.' not in field else 'is a text'}")
        if i == 1 and "question" not in {f.split(".")[0] for f in _fields(step.templates()[0], i)}:
            raise UserError(f"method chain: steps[1] ({name}): the first template must use {{question}}")
        out.append(step)
    return out


def _fields(template: str, i: int) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise UserError(f"method chain: steps[{i}].template: {e}") from None


def _fill(template: str, values: dict[str, Any], strip: bool) -> str:
    text = template.format(**values)
    return text.strip() if strip else text
