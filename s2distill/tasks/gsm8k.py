"""GSM8k (Cobbe et al. 2021): grade-school math word problems with a numeric final answer.

Data is the GSM8k JSONL format, ``{"question": ..., "answer": "<rationale> #### <number>"}``:
the bundled slice (s2distill/data/gsm8k, the first 300 train and 200 test problems), a local
file or train/test pair, or ``openai/gsm8k`` from the Hub. Only the number after ``####`` is
kept as the gold; the worked rationale is dropped so no stage can see it.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from s2distill.artifacts import sha256_file
from s2distill.errors import UserError
from s2distill.tasks.base import TASKS, Task, bundled_path, read_records, split, to_dataset

# A number as models write it: optional sign, thousands commas, decimals ("-1,234.50", ".5").
# The sign only counts when it does not follow a word or digit, so "10-5" is 10 and 5.
_NUM = re.compile(r"(?:(?<![\w)])[-−])?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_HASHES = re.compile(r"####")
_ANSWER = re.compile(r"\banswer\b", re.IGNORECASE)
_PLAIN = re.compile(r"([-+]?)(\d*)(?:\.(\d*))?")


@TASKS.register("gsm8k")
class GSM8k(Task):
    name = "gsm8k"
    labels = None
    direct_instruction = "Answer with the final number only."
    final_instruction = 'End your response with "Answer: " followed by the final number.'

    def __init__(
        self,
        train_file: str | None = None,
        test_file: str | None = None,
        hub: str | None = None,
        hub_config: str | None = "main",
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if (train_file is None) != (test_file is None):
            raise UserError("task.train_file and task.test_file go together: give both or neither")
        sources = [s for s, v in (("task.data_file", self.data_file), ("task.train_file", train_file),
                                  ("task.hub", hub)) if v]
        if len(sources) > 1:
            raise UserError(f"give one GSM8k source, not {' and '.join(sources)}")
        for f in (train_file, test_file):
            if f is not None and not Path(f).expanduser().is_file():
                raise UserError(f"GSM8k data file not found: {f}")
        self.train_file = train_file
        self.test_file = test_file
        self.hub = hub
        self.hub_config = hub_config

    # -- data -------------------------------------------------------------------------------
    def load(self) -> DatasetDict:
        if self.data_file:
            rows = to_rows(read_records(self.data_file, ["question", "answer"]), self.data_file)
            return split(rows, self.n_train, self.n_test, self.seed)
        if self.hub:
            pools = self._hub_pools()
        else:
            pools = {part: to_rows(read_records(path, ["question", "answer"]), path)
                     for part, path in self._files().items()}
        return DatasetDict(
            train=to_dataset(sample(pools["train"], self.n_train, self.seed, "task.n_train"), "train"),
            test=to_dataset(sample(pools["test"], self.n_test, self.seed, "task.n_test"), "test"),
        )

    def _files(self) -> dict[str, Path]:
        """The train and test JSONL files: the user's pair, else the bundled slice."""
        if self.train_file:
            return {"train": Path(self.train_file).expanduser(), "test": Path(self.test_file).expanduser()}
        return {part: bundled_path("gsm8k", f"{part}.jsonl") for part in ("train", "test")}

    def _hub_pools(self) -> dict[str, list[dict[str, Any]]]:
        from datasets import load_dataset

        try:
            ds = load_dataset(self.hub, self.hub_config)
        # offline, unknown name, HTTP errors are OSError subclasses; an unknown config is a ValueError
        except (OSError, ValueError) as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UserError(
                f"cannot load {self.hub!r} (config {self.hub_config!r}) from the Hub: {reason}. "
                "Offline, use the bundled slice (task.hub=null) or task.train_file + task.test_file"
            ) from None
        missing = [p for p in ("train", "test") if p not in ds]
        if missing:
            raise UserError(f"{self.hub!r} has no {' or '.join(missing)} split (has {list(ds)})")
        lacking = {"question", "answer"} - set(ds["train"].column_names)
        if lacking:
            raise UserError(f"{self.hub!r} is not in GSM8k format: no {', '.join(sorted(lacking))} column")
        return {part: to_rows(ds[part].to_list(), f"{self.hub}:{part}") for part in ("train", "test")}

    def fingerprint_config(self) -> dict[str, Any]:
        cfg = super().fingerprint_config()
        if not (self.data_file or self.hub):
            # by content: the bundled slice's path and mtime differ between installs
            cfg["files"] = {part: sha256_file(p) for part, p in self._files().items()}
        return cfg

    # -- answers ----------------------------------------------------------------------------
    def extract(self, text: str) -> str | None:
        return extract_number(text)

    def is_correct(self, pred: str | None, row: dict[str, Any]) -> bool:
        return pred is not None and same_number(pred, row["gold"])


# -- pure helpers ---------------------------------------------------------------------------------
def normalise(number: str) -> str | None:
    """Canonical text of a number: no commas, ``$``, leading or trailing zeros ("18.00" → "18").

    Done on the digits, not through float or Decimal, so equality stays exact at any length.
    """
    s = number.strip().replace(",", "").replace("$", "").replace("−", "-")
    m = _PLAIN.fullmatch(s)
    if not m or not (m.group(2) or m.group(3)):
        return None
    sign, whole, frac = m.group(1), m.group(2).lstrip("0") or "0", (m.group(3) or "").rstrip("0")
    out = f"{whole}.{frac}" if frac else whole
    return out if out == "0" or sign != "-" else f"-{out}"


def same_number(a: str, b: str) -> bool:
    """Numeric equality of two number strings (False if either is not a number)."""
    na, nb = normalise(a), normalise(b)
    return na is not None and na == nb


def gold_answer(answer: str) -> str | None:
    """The gold number of a GSM8k answer field: what follows the last ``####``."""
    if "####" not in answer:
        return None
    return normalise(answer.rsplit("####", 1)[1])


def extract_number(text: str) -> str | None:
    """The final number in free-form output, normalised, or ``None`` (an abstention).

    In order of how explicitly the model marked it: the last ``\\boxed{...}``, the last
    ``#### N``, the number after the last "answer" that is followed by one ("Answer: 1,234",
    "The answer is $18."; after an "=" on that line, the result), else the last number.
    """
    for m in reversed(list(_BOXED.finditer(text))):
        got = _first_number(m.group(1))
        if got is not None:
            return got
    for m in reversed(list(_HASHES.finditer(text))):
        got = _first_number(_line_after(text, m.end()))
        if got is not None:
            return got
    for m in reversed(list(_ANSWER.finditer(text))):
        line = _line_after(text, m.end())
        got = _first_number(line.rsplit("=", 1)[-1]) if "=" in line else _first_number(line)
        if got is not None:
            return got
    nums = _NUM.findall(text)
    return normalise(nums[-1]) if nums else None


def _line_after(text: str, start: int) -> str:
    """The rest of the line after ``start``, or the next line when the marker ends its line
    ("Answer:\\n18")."""
    rest = text[start:].lstrip(" \t:*_")
    if rest.startswith("\n"):
        rest = rest.lstrip()
    return rest.split("\n", 1)[0]


def _first_number(segment: str) -> str | None:
    m = _NUM.search(segment)
    return normalise(m.group(0)) if m else None


def to_rows(records: list[dict[str, Any]], source: str | Path) -> list[dict[str, Any]]:
    """``{question, gold}`` rows from GSM8k records; the rationale is dropped here."""
    rows = []
    for i, r in enumerate(records, 1):
        gold = gold_answer(str(r["answer"]))
        if gold is None:
            raise UserError(f"{source} record {i}: answer has no '#### <number>' final answer")
        rows.append({"question": str(r["question"]), "gold": gold})
    return rows


def sample(rows: list[dict[str, Any]], n: int, seed: int, what: str) -> list[dict[str, Any]]:
    """A seeded sample of ``n`` rows, in shuffled order."""
    if n > len(rows):
        raise UserError(f"{what}={n} but the data holds only {len(rows)} records")
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n]
