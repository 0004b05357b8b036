"""Coin flip (Wei et al. 2022; RaR's coin_val.json): is the coin still heads up after the flips?"""

from __future__ import annotations

import random
import re

from datasets import DatasetDict

from s2distill.errors import UserError
from s2distill.tasks.base import (
    TASKS,
    Task,
    balanced_labels,
    names,
    read_records,
    split,
    to_dataset,
)

_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:\-]?\s*[*_\"'`]*\s*(yes|no)\b")
# Without a marked answer, a yes/no counts only as an interjection: followed by punctuation or
# the end ("so, no." / "Yes, it is"), not as a determiner ("There is no change").
_WORD = re.compile(r"\b(yes|no)\b[*_\"'`]*(?=\s*(?:[.,!;:)]|$))")


@TASKS.register("coin_flip")
class CoinFlip(Task):
    name = "coin_flip"
    labels = ("yes", "no")
    direct_instruction = 'Answer with "yes" or "no" only.'
    final_instruction = 'End your response with "Answer: yes" or "Answer: no".'
    extractor_version = 2

    def __init__(self, n_people: int = 2, **kw):
        super().__init__(**kw)
        if n_people < 1:
            raise UserError(f"task.n_people must be >= 1 (got {n_people})")
        self.n_people = int(n_people)

    def load(self) -> DatasetDict:
        if self.data_file:
            recs = read_records(self.data_file, ["inputs", "targets"])
            rows = [
                {"question": _clean_rar(r["inputs"]), "gold": str(r["targets"]).strip().lower()}
                for r in recs
            ]
            return split(rows, self.n_train, self.n_test, self.seed, self.labels)
        rng = random.Random(self.seed)
        pool = names()
        seen: set[str] = set()
        out = {}
        for part, n in (("test", self.n_test), ("train", self.n_train)):
            rows = []
            for label in balanced_labels(n, self.labels, rng):
                for _ in range(1000):
                    q = make_question(rng, pool, self.n_people, odd_flips=label == "no")
                    if q not in seen:
                        break
                seen.add(q)
                rows.append({"question": q, "gold": label})
            out[part] = rows
        return DatasetDict(train=to_dataset(out["train"], "train"), test=to_dataset(out["test"], "test"))

    def extract(self, text: str) -> str | None:
        """The last marked answer ("Answer: yes", "the answer is no"), else a yes/no opening the
        response, else the last yes/no said as an interjection ("so, yes."); ``None`` otherwise.

        Two different answers in one response: the marked one wins over unmarked ones, and
        among marked ones the last (a response that corrects itself ends on its answer).
        """
        t = text.lower()
        found = _ANSWER.findall(t)
        if found:
            return found[-1]
        head = re.match(r"[\s*_\"'`#>]*(yes|no)\b", t)
        if head:
            return head.group(1)
        words = _WORD.findall(t)
        return words[-1] if words else None


def make_question(rng: random.Random, pool: list[str], n_people: int, odd_flips: bool) -> str:
    """One coin-flip question whose answer is "no" exactly when ``odd_flips``."""
    people = rng.sample(pool, n_people)
    flips = [rng.random() < 0.5 for _ in people]
    if (sum(flips) % 2 == 1) != odd_flips:
        i = rng.randrange(n_people)
        flips[i] = not flips[i]
    steps = " ".join(f"{p} flips the coin." if f else f"{p} does not flip the coin." for p, f in zip(people, flips))
    return f"A coin is heads up. {steps} Is the coin still heads up?"


def _clean_rar(text: str) -> str:
    text = re.sub(r"^\s*Q:\s*", "", text)
    return re.sub(r"\s+", " ", text).strip()
