"""GSM8k (Cobbe et al. 2021): grade-school math word problems with a numeric final answer.

Data is the GSM8k JSONL format, ``{"question": ..., "answer": "<rationale> #### <number>"}``:
the bundled slice (s2distill/data/gsm8k, the first 300 train and 200 test problems), a local
file or train/test pair, or ``openai/gsm8k`` from the Hub. Only the number after ``####`` is
kept as the gold; the worked rationale is dropped so no stage can see it.
"""

from __future__ import annotations

import random
import re
from bisect import bisect_left
from pathlib import Path
from typing import Any

from datasets import DatasetDict
from math_verify import ExprExtractionConfig, parse, verify

from s2distill.artifacts import sha256_file
from s2distill.errors import UserError
from s2distill.tasks.base import TASKS, Task, bundled_path, read_records, split, to_dataset

# A number as models write it: optional sign, thousands commas, decimals ("-1,234.50", ".5").
# The sign only counts when it does not follow a word or digit, so "10-5" is 10 and 5.
# A fraction ("1/2") is one number.
_NUM = re.compile(r"(?:(?<![\w)])[-−])?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+(?![.,]\d))?|\.\d+)")
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_HASHES = re.compile(r"####")
# "The answer is 18", "Final answer: 18", "the answer to the question is $18" (lm-evaluation-harness's
# "The answer is" forms); a bare "answer" ("To find the answer, we ...") marks nothing.
_ANSWER = re.compile(r"\banswer\b[^.\n:=,;]{0,30}?(?:\b(?:is|was|would\s+be|will\s+be)\b|[:=])", re.IGNORECASE)
# Inside a marked sentence, what resolves an expression to its result ("1/2 of 10, which is 5").
_RESOLVES = re.compile(r"=|\b(?:which|that)\s+(?:is|equals|gives)\b|\bequals\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_ENDS_LINE = re.compile(r"[ \t:*_$]*\n\s*")
_PLAIN = re.compile(r"([-+]?)(\d*)(?:\.(\d*))?")
_FRACTION = re.compile(r"([-+]?\d+)\s?/\s?(\d+)")
_MATH = [ExprExtractionConfig()]


@TASKS.register("gsm8k")
class GSM8k(Task):
    name = "gsm8k"
    labels = None
    direct_instruction = "Answer with the final number only."
    final_instruction = 'End your response with "Answer: " followed by the final number.'
    extractor_version = 2

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


def same_number(a: str, b: str) -> bool:
    """Numeric equality of two number strings by math-verify ("18.00" = "18", "1/2" = "0.5");
    False if either is not a number."""
    na, nb = normalise(a), normalise(b)
    if na is None or nb is None:
        return False
    if na == nb:
        return True
    # no signal-based timeouts: the inputs are single numbers, and signals break off the main thread
    return verify(parse(nb, _MATH, parsing_timeout=None), parse(na, _MATH, parsing_timeout=None),
                  timeout_seconds=None)


# -- pure helpers ---------------------------------------------------------------------------------
def normalise(number: str) -> str | None:
    """Canonical text of a number: no commas, ``$``, leading or trailing zeros ("18.00" → "18").

    Done on the digits, not through float or Decimal, so equality stays exact at any length.
    A fraction keeps its form ("3 / 4" → "3/4"); ``same_number`` compares it by value.
    """
    s = number.strip().replace(",", "").replace("$", "").replace("−", "-")
    f = _FRACTION.fullmatch(s)
    if f:
        return None if int(f.group(2)) == 0 else f"{int(f.group(1))}/{int(f.group(2))}"
    m = _PLAIN.fullmatch(s)
    if not m or not (m.group(2) or m.group(3)):
        return None
    sign, whole, frac = m.group(1), m.group(2).lstrip("0") or "0", (m.group(3) or "").rstrip("0")
    out = f"{whole}.{frac}" if frac else whole
    return out if out == "0" or sign != "-" else f"-{out}"


def gold_answer(answer: str) -> str | None:
    """The gold number of a GSM8k answer field: what follows the last ``####``."""
    if "####" not in answer:
        return None
    return normalise(answer.rsplit("####", 1)[1])


def extract_number(text: str) -> str | None:
    """The final number in free-form output, normalised, or ``None`` (an abstention).

    In order of how explicitly the model marked it: the last ``\\boxed{...}``, the last
    ``#### N``, the last marked answer ("Answer: 1,234", "The answer is $18."), else the last
    number. A marker at the end of its line takes the next line ("Answer:\\n18"). A marked
    answer is read in its own sentence: the number after the sentence's last "=", "which is",
    "equals" (the result of an expression: "1/2 of 10, which is 5" → 5), else its first number.
    Linear in the text's length: every marker looks up precomputed positions.
    """
    idx = _Index(text)
    for m in reversed(list(_BOXED.finditer(text))):
        got = idx.first_number(m.start(1), m.end(1))
        if got is not None:
            return got
    for pattern in (_HASHES, _ANSWER):
        for m in reversed(list(pattern.finditer(text))):
            got = idx.stated(m.end())
            if got is not None:
                return got
    return idx.nums[-1][2] if idx.nums else None


class _Index:
    """Positions of numbers, line and sentence ends and resolvers in one text, found once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.nums = [(m.start(), m.end(), normalise(m.group(0))) for m in _NUM.finditer(text)]
        self.num_starts = [n[0] for n in self.nums]
        self.ends = [m.start() for m in _SENTENCE_END.finditer(text)]
        self.resolvers = [(m.start(), m.end()) for m in _RESOLVES.finditer(text)]
        self.resolver_starts = [r[0] for r in self.resolvers]

    def first_number(self, start: int, stop: int) -> str | None:
        i = bisect_left(self.num_starts, start)
        while i < len(self.nums) and self.nums[i][0] < stop:
            if self.nums[i][2] is not None:
                return self.nums[i][2]
            i += 1
        return None

    def stated(self, start: int) -> str | None:
        """The number a marker ending at ``start`` states (see ``extract_number``)."""
        m = _ENDS_LINE.match(self.text, start)
        if m:
            start = m.end()
        i = bisect_left(self.ends, start)
        stop = self.ends[i] if i < len(self.ends) else len(self.text)
        j = bisect_left(self.resolver_starts, stop) - 1
        if j >= 0 and self.resolvers[j][0] >= start:
            got = self.first_number(self.resolvers[j][1], stop)
            if got is not None:
                return got
        return self.first_number(start, stop)


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
