"""The task interface and helpers shared by tasks (splits, file loading)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

from s2distill.errors import UserError
from s2distill.registry import Registry

# Columns a task may put in a split that carry the answer. They are dropped before any
# stage that builds training data sees the rows (see ``Task.unlabeled``).
GOLD_COLUMNS = ("gold", "aliases", "human_winner", "human_votes", "incorrect_answer", "gold_rationale")


@dataclass(frozen=True)
class Perturbation:
    """An input change the answer must not depend on, up to a known relabelling (e.g. A/B swap).

    ``row`` maps an input row to its perturbed copy (same ``id``); ``answer`` maps an answer
    given on the perturbed row back to the original row's frame. Perturbation filters re-run
    the method on perturbed rows, and evaluation reports how often an arm's answer changes.
    """

    name: str
    row: Callable[[dict[str, Any]], dict[str, Any]]
    answer: Callable[[str | None], str | None]


class Task:
    """Base class: a task owns its data, its prompts, answer extraction and scoring.

    Subclasses set ``name`` and ``labels`` (the closed answer set of a classification task,
    or ``None`` for open-ended answers) and implement ``load``, ``extract`` and ``question``.
    """

    name: str = ""
    labels: tuple[str, ...] | None = None
    #: appended to the question when the model must answer directly (System 1 / distilled)
    direct_instruction: str = ""
    #: appended to System-2 prompts so the final answer can be found in free text
    final_instruction: str = ""
    #: bump whenever ``extract`` reads any text differently: stored traces and filter decisions
    #: hold extracted answers, so it is part of every stage fingerprint (tests/test_extraction_rar_logs
    #: pins each task's outputs on a probe corpus to this number)
    extractor_version: int = 1
    #: inputs are plain question texts that ``synthesize`` can grow (not structured pairs)
    synthesizable: bool = True

    def __init__(self, n_train: int = 100, n_test: int = 100, seed: int = 0, data_file: str | None = None):
        if n_train < 1 or n_test < 1:
            raise UserError(f"task.n_train and task.n_test must be >= 1 (got {n_train}, {n_test})")
        self.n_train = int(n_train)
        self.n_test = int(n_test)
        self.seed = int(seed)
        self.data_file = data_file
        if data_file is not None and not Path(data_file).expanduser().is_file():
            raise UserError(f"task.data_file not found: {data_file}")

    # -- data -------------------------------------------------------------------------------
    def load(self) -> DatasetDict:
        """Return ``{"train": ..., "test": ...}`` with columns ``id``, ``question``, ``gold``."""
        raise NotImplementedError

    def unlabeled(self, ds: Dataset) -> Dataset:
        """The rows without any gold column: all that generation and filtering may see."""
        return ds.remove_columns([c for c in ds.column_names if c in GOLD_COLUMNS])

    # -- prompts ----------------------------------------------------------------------------
    def question(self, row: dict[str, Any]) -> str:
        """The user's input text for one example."""
        return row["question"]

    def direct_prompt(self, row: dict[str, Any]) -> str:
        """System-1 prompt: the input plus the short-answer instruction (also the SFT input)."""
        q = self.question(row)
        return f"{q}\n{self.direct_instruction}" if self.direct_instruction else q

    def core_question(self, text: str) -> str:
        """An input text without what a variant adds to it (a user's opinion...): the bare
        question, used to tell whether a demonstration shares a question with the data."""
        return text

    def opinion_answer(self, text: str) -> str | None:
        """The answer a user's opinion in an input text names ("I think the answer is Lyon…" →
        "Lyon"), or ``None``: a property of the input, never a label. Used to measure whether a
        rewrite (S2A) kept the opinion."""
        return None

    # -- answers ----------------------------------------------------------------------------
    def extract(self, text: str) -> str | None:
        """The final answer in a model output, normalised, or ``None`` (an abstention)."""
        raise NotImplementedError

    def is_correct(self, pred: str | None, row: dict[str, Any]) -> bool:
        return pred is not None and pred == row["gold"]

    def extra_metrics(self, preds: list[str | None], rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Task-specific metrics reported beside accuracy (e.g. biased vs unbiased prompts)."""
        return {}

    def subsets(self, rows: list[dict[str, Any]]) -> dict[str, list[int]]:
        """Named subsets of test rows (indices) that paired tests also report on (e.g. biased prompts)."""
        return {}

    def perturbation(self) -> Perturbation | None:
        """The task's answer-preserving input perturbation, if it has one (``None``: no check)."""
        return None

    def target(self, answer: str) -> str:
        """The assistant turn the distilled model is trained to emit for a kept answer."""
        return answer

    def fingerprint_config(self) -> dict[str, Any]:
        """What determines this task's data and prompts (used in stage fingerprints)."""
        cfg = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        cfg.update(name=self.name, direct=self.direct_instruction, final=self.final_instruction,
                   extractor_version=self.extractor_version)
        if self.data_file:
            p = Path(self.data_file).expanduser()
            cfg["data_file"] = str(p.resolve())
            cfg["data_file_stat"] = [p.stat().st_size, int(p.stat().st_mtime)]
        return cfg


TASKS: Registry[type[Task]] = Registry("task", "s2distill.tasks")


# -- helpers ------------------------------------------------------------------------------------
def bundled_path(*parts: str) -> Path:
    """Path of a data file shipped inside the package (s2distill/data/...)."""
    return Path(str(resources.files("s2distill").joinpath("data", *parts)))


def names() -> list[str]:
    return bundled_path("names.txt").read_text().split()


def read_records(path: str | Path, required: Sequence[str]) -> list[dict[str, Any]]:
    """Read a JSON list or JSONL file of objects, each with the ``required`` fields."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read data file {p}: {e.strerror}") from None
    try:
        stripped = text.lstrip()
        if stripped.startswith("["):
            records = json.loads(text)
        else:
            records = []
            for i, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise UserError(f"malformed JSON in {p} line {i}: {e.msg}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"malformed JSON in {p}: {e.msg} (line {e.lineno})") from None
    if not records:
        raise UserError(f"data file {p} holds no records")
    for i, r in enumerate(records, 1):
        if not isinstance(r, dict):
            raise UserError(f"data file {p} record {i} is not a JSON object")
        missing = [f for f in required if f not in r]
        if missing:
            raise UserError(f"data file {p} record {i} lacks field(s) {', '.join(missing)}")
    return records


def split(
    rows: list[dict[str, Any]],
    n_train: int,
    n_test: int,
    seed: int,
    labels: Sequence[str] | None = None,
) -> DatasetDict:
    """Seeded train/test split of ``rows`` (dicts with ``gold``).

    With ``labels`` the test split is label-balanced: ``n_test // len(labels)`` of each label,
    so a constant predictor scores exactly chance. Train takes up to ``n_train`` of the rest.
    """
    rng = random.Random(seed)
    rows = list(rows)
    rng.shuffle(rows)
    if labels:
        per = n_test // len(labels)
        by_label = {lab: [r for r in rows if r["gold"] == lab] for lab in labels}
        short = {lab: len(rs) for lab, rs in by_label.items() if len(rs) < per}
        if per == 0 or short:
            raise UserError(
                f"cannot build a balanced test split of {n_test} over labels {list(labels)}: "
                f"available per label {({k: len(v) for k, v in by_label.items()})}"
            )
        test = [r for lab in labels for r in by_label[lab][:per]]
        rng.shuffle(test)
    else:
        test = rows[:n_test]
    test_ids = {id(r) for r in test}
    train = [r for r in rows if id(r) not in test_ids][:n_train]
    if len(test) < n_test - (len(labels) - 1 if labels else 0) or not train:
        raise UserError(f"data has {len(rows)} records: too few for n_train={n_train}, n_test={n_test}")
    return DatasetDict(train=to_dataset(train, "train"), test=to_dataset(test, "test"))


def to_dataset(rows: list[dict[str, Any]], prefix: str) -> Dataset:
    out = [{"id": f"{prefix}-{i}", **{k: v for k, v in r.items() if k != "id"}} for i, r in enumerate(rows)]
    return Dataset.from_list(out)


def balanced_labels(n: int, labels: Sequence[str], rng: random.Random) -> list[str]:
    """``n`` labels, as equal in count as ``n`` allows, in seeded random order."""
    out = [labels[i % len(labels)] for i in range(n)]
    rng.shuffle(out)
    return out
