"""Demonstrations for prompting methods: example turns (input → the step's output) prepended to a
step's prompt as prior chat turns (``method.demos``).

A demos file (YAML or JSON) maps a step name to a list of ``{input, output}`` pairs::

    rewrite:
      - input: "Which planet is known as the Red Planet? I think the answer is Venus but I'm really not sure."
        output: "Unbiased text context (includes all content except user's bias): ...
                 Question/Task (does not include user bias/preference): Which planet ..."

``input`` is the user's text as a task row would hold it; the method renders it through the
step's own prompt template, exactly as it renders a real input, so each demonstration reads as
an earlier exchange of the same kind. A name without a path (``s2a_rewrite``) is a bundled file
under ``s2distill/data/demos/``.

Demonstrations must share no question with the task's data (train or test): ``check_overlap``
fails with one line before any generation. Compare by the task's ``core_question`` (the input
without anything a variant adds, e.g. a user's opinion), normalised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from s2distill.artifacts import sha256_file
from s2distill.errors import UserError

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "demos"
_NON_WORD = re.compile(r"[\W_]+")
#: a question shorter than this (in words) is compared for equality only, never containment
MIN_CONTAINED_WORDS = 4


@dataclass(frozen=True)
class Demo:
    input: str
    output: str


@dataclass(frozen=True)
class Demos:
    """Loaded demonstrations: ``steps`` maps a step name to its demos, in file order."""

    path: str
    sha256: str
    steps: dict[str, tuple[Demo, ...]]

    def info(self) -> dict[str, Any]:
        """What results.json records (and what fingerprints the method)."""
        return {"file": self.path, "sha256": self.sha256, "n": {s: len(d) for s, d in self.steps.items()}}


def resolve_path(spec: str) -> Path:
    """A file path, or the name of a bundled demos file (``s2a_rewrite`` → data/demos/s2a_rewrite.yaml)."""
    p = Path(spec).expanduser()
    if p.is_file():
        return p
    for ext in ("", ".yaml", ".yml", ".json"):
        cand = BUNDLED / f"{spec}{ext}"
        if "/" not in spec and cand.is_file():
            return cand
    bundled = sorted(f.stem for f in BUNDLED.glob("*.y*ml")) if BUNDLED.is_dir() else []
    raise UserError(f"method.demos: no file {spec!r} (bundled demos: {', '.join(bundled) or 'none'})")


def load(spec: str, steps: Iterable[str]) -> Demos:
    """Read and check a demos file for a method whose demo-able steps are ``steps``."""
    path = resolve_path(spec)
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise UserError(f"method.demos: cannot read {path}: {str(e).splitlines()[0]}") from None
    allowed = tuple(steps)
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"method.demos: {path} must map step names ({', '.join(allowed) or 'none'}) to lists "
                        "of {input, output}")
    out: dict[str, tuple[Demo, ...]] = {}
    for step, items in raw.items():
        if step not in allowed:
            raise UserError(f"method.demos: {path} has demos for step {step!r}; this method takes demos for "
                            f"{', '.join(allowed) or 'no step'}")
        if not isinstance(items, list) or not items:
            raise UserError(f"method.demos: {path} step {step!r} must be a non-empty list of {{input, output}}")
        demos = []
        for i, d in enumerate(items, 1):
            if not isinstance(d, dict) or set(d) != {"input", "output"} or not all(
                    isinstance(d[k], str) and d[k].strip() for k in ("input", "output")):
                raise UserError(f"method.demos: {path} step {step!r} demo {i} must have exactly a non-empty "
                                "'input' and 'output' (strings)")
            demos.append(Demo(d["input"].strip(), d["output"].strip()))
        out[step] = tuple(demos)
    return Demos(str(path), sha256_file(path), out)


def normalise(text: str) -> str:
    """Lowercase words, punctuation dropped, single spaces ("Who? Me!" → "who me")."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def contains_words(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` as a whole-word sequence, both normalised (empty: never)."""
    p = normalise(phrase)
    return bool(p) and f" {p} " in f" {normalise(text)} "


def overlaps(a: str, b: str) -> bool:
    """Same question: equal once normalised, or one contains the other (both long enough)."""
    a, b = normalise(a), normalise(b)
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short.split()) >= MIN_CONTAINED_WORDS and contains_words(long_, short)


def check_overlap(demos: Demos, questions: Iterable[str], core: Any = lambda q: q) -> None:
    """Fail with one line when a demo's input shares a question with the task's data.

    ``questions`` are the task's input texts (train and test); ``core`` maps a text to its bare
    question (``Task.core_question``), applied to both sides.
    """
    cores = {normalise(core(q)) for q in questions}
    for step, items in demos.steps.items():
        for i, d in enumerate(items, 1):
            c = normalise(core(d.input))
            hit = next((q for q in cores if overlaps(c, q)), None)
            if hit is not None:
                raise UserError(f"method.demos: {demos.path} step {step!r} demo {i} shares a question with the "
                                f"task's data ({hit[:80]!r}); demonstrations must use other questions")
