"""Last-letter concatenation (Wei et al. 2022; RaR's last_letter_concatenation4.json)."""

from __future__ import annotations

import random
import re

from datasets import DatasetDict

from s2distill.errors import UserError
from s2distill.tasks.base import TASKS, Task, names, read_records, split, to_dataset

_ANSWER_LINE = re.compile(r"answer\s*(?:is)?\s*[:\-]\s*(.*)")
_QUOTED = re.compile(r"[\"“”'`*]([a-z][a-z ,\-]*?)[\"“”'`*]")


@TASKS.register("last_letter")
class LastLetter(Task):
    name = "last_letter"
    labels = None
    direct_instruction = "Answer with the concatenated letters only."
    final_instruction = 'End your response with "Answer: " followed by the concatenated letters.'

    def __init__(self, n_names: int = 4, **kw):
        super().__init__(**kw)
        if n_names < 1:
            raise UserError(f"task.n_names must be >= 1 (got {n_names})")
        self.n_names = int(n_names)

    def load(self) -> DatasetDict:
        if self.data_file:
            recs = read_records(self.data_file, ["question", "answer"])
            rows = [{"question": str(r["question"]), "gold": normalise(str(r["answer"]))} for r in recs]
            return split(rows, self.n_train, self.n_test, self.seed)
        rng = random.Random(self.seed)
        pool = names()
        seen: set[str] = set()
        out = {}
        for part, n in (("test", self.n_test), ("train", self.n_train)):
            rows = []
            while len(rows) < n:
                words = rng.sample(pool, self.n_names)
                q = f'Take the last letters of the words in "{" ".join(words)}" and concatenate them.'
                if q in seen:
                    continue
                seen.add(q)
                rows.append({"question": q, "gold": "".join(w[-1] for w in words).lower()})
            out[part] = rows
        return DatasetDict(train=to_dataset(out["train"], "train"), test=to_dataset(out["test"], "test"))

    def extract(self, text: str) -> str | None:
        t = text.lower()
        lines = _ANSWER_LINE.findall(t)
        if lines:
            got = _letters(lines[-1])
            if got:
                return got
        quoted = _QUOTED.findall(t)
        if quoted:
            got = _letters(quoted[-1])
            if got:
                return got
        words = re.findall(r"[a-z]+", t)
        if len(words) == 1:
            return words[0]
        if words and all(len(w) == 1 for w in words):
            return "".join(words)
        return None


def normalise(answer: str) -> str:
    return re.sub(r"[^a-z]", "", answer.lower())


def _letters(segment: str) -> str | None:
    """The answer in the text after "Answer:": spelled letters joined, else the last word."""
    segment = re.split(r"[.\n]", segment.strip(), maxsplit=1)[0]
    quoted = _QUOTED.findall(segment)
    if quoted:
        segment = quoted[-1]
    words = re.findall(r"[a-z]+", segment)
    if not words:
        return None
    if all(len(w) == 1 for w in words):
        return "".join(words)
    return words[-1]
