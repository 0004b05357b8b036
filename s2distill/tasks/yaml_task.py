"""A task configured entirely in YAML: your data, prompts, extraction and scoring, no Python.

In ``conf/task/<name>.yaml`` (``task=<name>``), or in any file (``task=yaml task.file=<path>``)::

    name: yaml                       # this task type (a conf/task file); a file may omit it
    label: capitals_yn               # what results call the task (default: the file's name)
    include: base.yaml               # optional: a file whose keys this one overrides (relative paths)
    data:
      path: bundled:examples/capitals_yn.jsonl  # .jsonl/.json/.csv/.parquet, a save_to_disk folder,
                                     # or a hub dataset id (with name, split)
      name: null                     # hub config name
      split: train                   # hub split (or the split of a DatasetDict folder)
      test_path: null                # fixed test data (another file), else a seeded split of path
      test_split: null               # fixed test split of the same hub dataset / folder
      fields: {question: question, answer: answer, aliases: null}   # aliases: a list or "a|b" text
      template: null                 # the question text from several fields: "{passage}\\nQ: {question}"
    answers:
      labels: [yes, no]              # a closed label set (balanced test split, balanced accuracy), or null
    extraction: {kind: choice}       # choice | regex (with pattern) | number | text (tasks/extractors.py)
    scoring: exact                   # exact | alias | numeric
    prompts:
      direct: 'Answer with "yes" or "no" only.'                     # System 1 (and the SFT input)
      final: 'End your response with "Answer: yes" or "Answer: no".'  # System-2 prompts

A malformed file (an unknown extraction kind, no field map, a field missing from the data) fails
with one line naming the key, before anything runs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from s2distill.errors import UserError
from s2distill.tasks import extractors
from s2distill.tasks.base import TASKS, Task, bundled_path, read_records, split, to_dataset

SPEC_KEYS = ("name", "label", "include", "data", "answers", "extraction", "scoring", "prompts",
             "n_train", "n_test", "seed", "file")  # (a conf/task file may be given as task.file too)
DATA_KEYS = ("path", "name", "split", "test_path", "test_split", "fields", "template")
FILE_SUFFIXES = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@TASKS.register("yaml")
class YAMLTask(Task):
    extractor_version = 1

    def __init__(self, label: str | None = None, file: str | None = None, include: str | None = None,
                 data: dict[str, Any] | None = None, answers: dict[str, Any] | None = None,
                 extraction: dict[str, Any] | None = None, scoring: str | None = None,
                 prompts: dict[str, Any] | None = None, n_train: int | None = None, n_test: int | None = None,
                 seed: int | None = None) -> None:
        # null: the file's value, else the default
        kw: dict[str, Any] = {k: v for k, v in (("n_train", n_train), ("n_test", n_test), ("seed", seed)) if v is not None}
        if file is None and data is None:
            raise UserError("task=yaml needs task.file=<your task YAML> (see conf/task/capitals_yn.yaml)")
        spec: dict[str, Any] = {}
        base_dir = Path.cwd()
        if file is not None:
            path = _resolve(file, Path.cwd())
            spec, base_dir = load_spec(path), path.parent
            label = label or spec.get("label") or path.stem
        given = {"include": include, "data": data, "answers": answers, "extraction": extraction,
                 "scoring": scoring, "prompts": prompts}
        spec.update({k: v for k, v in given.items() if v is not None})  # the command line wins
        if spec.get("include") and file is None:
            spec = {**load_spec(_resolve(spec["include"], base_dir)), **{k: v for k, v in spec.items() if k != "include"}}
        for key in ("n_train", "n_test", "seed"):
            if key in spec and key not in kw:
                kw[key] = spec[key]
        super().__init__(**kw)
        self.file = str(_resolve(file, Path.cwd())) if file else None
        self.name = str(label or "yaml")
        self._base = base_dir
        data = spec.get("data")
        if not isinstance(data, dict):
            raise UserError(f"task {self.name}: data: missing (a mapping with path and fields)")
        unknown = set(data) - set(DATA_KEYS)
        if unknown:
            raise UserError(f"task {self.name}: data: unknown key(s) {sorted(unknown)} (known: {', '.join(DATA_KEYS)})")
        if not data.get("path"):
            raise UserError(f"task {self.name}: data.path: missing (a file, a save_to_disk folder or a hub id)")
        fields = data.get("fields")
        if not isinstance(fields, dict) or not fields.get("answer") or not (fields.get("question") or data.get("template")):
            raise UserError(f"task {self.name}: data.fields: missing field map (question and answer: the data's "
                            "column names; or data.template for the question)")
        self.data = dict(data)
        labels = (spec.get("answers") or {}).get("labels")
        self.labels = tuple(str(x) for x in labels) if labels else None
        ext = spec.get("extraction") or {}
        if not isinstance(ext, dict) or "kind" not in ext:
            raise UserError(f"task {self.name}: extraction.kind: missing (one of {', '.join(extractors.KINDS)})")
        self.extraction = dict(ext)
        self._extract = extractors.make_extractor(ext["kind"], self.labels, ext.get("pattern"))
        if ext["kind"] == "choice" and not self.labels:
            raise UserError(f"task {self.name}: extraction.kind=choice needs answers.labels")
        self.scoring = spec.get("scoring") or ("numeric" if ext["kind"] == "number" else "exact")
        if self.scoring not in extractors.SCORINGS:
            raise UserError(f"task {self.name}: scoring: unknown kind {self.scoring!r} "
                            f"(known: {', '.join(extractors.SCORINGS)})")
        prompts = spec.get("prompts") or {}
        if not prompts.get("direct") or not prompts.get("final"):
            raise UserError(f"task {self.name}: prompts.direct and prompts.final: both needed (the System-1 "
                            "instruction and the final-answer instruction of System-2 prompts)")
        self.direct_instruction, self.final_instruction = str(prompts["direct"]), str(prompts["final"])

    # -- data -------------------------------------------------------------------------------
    def load(self) -> DatasetDict:
        d = self.data
        rows = self._rows(d["path"], d.get("split") or "train")
        if d.get("test_path") or d.get("test_split"):
            test = self._rows(d.get("test_path") or d["path"], d.get("test_split") or d.get("split") or "train")
            rng = random.Random(self.seed)
            rng.shuffle(rows)
            rng.shuffle(test)
            if self.labels:  # balanced, as split() makes it
                per = self.n_test // len(self.labels)
                by = {lab: [r for r in test if r["gold"] == lab] for lab in self.labels}
                if per == 0 or any(len(v) < per for v in by.values()):
                    raise UserError(f"task {self.name}: cannot build a balanced test split of {self.n_test} from the "
                                    f"fixed test data: per label {({k: len(v) for k, v in by.items()})}")
                test = [r for lab in self.labels for r in by[lab][:per]]
                rng.shuffle(test)
            return DatasetDict(train=to_dataset(rows[: self.n_train], "train"),
                               test=to_dataset(test[: self.n_test], "test"))
        return split(rows, self.n_train, self.n_test, self.seed, self.labels)

    def _rows(self, source: str, hub_split: str) -> list[dict[str, Any]]:
        records = self._records(source, hub_split)
        f, template = self.data["fields"], self.data.get("template")
        out = []
        for i, rec in enumerate(records, 1):
            for key in ("question", "answer", "aliases"):
                col = f.get(key)
                if col and col not in rec and not (key == "question" and template):
                    raise UserError(f"task {self.name}: data.fields.{key}: no field {col!r} in {source} record {i} "
                                    f"(its fields: {', '.join(map(str, rec))})")
            if template:
                try:
                    question = str(template).format(**rec)
                except KeyError as e:
                    raise UserError(f"task {self.name}: data.template: no field {e.args[0]!r} in {source} record {i}") from None
            else:
                question = str(rec[f["question"]])
            gold = str(rec[f["answer"]]).strip()
            if self.labels:
                canon = {x.lower(): x for x in self.labels}
                if gold.lower() not in canon:
                    raise UserError(f"task {self.name}: {source} record {i}: answer {gold!r} is not one of "
                                    f"answers.labels {list(self.labels)}")
                gold = canon[gold.lower()]
            row = {"question": question, "gold": gold}
            if f.get("aliases"):
                al = rec[f["aliases"]]
                row["aliases"] = [a for a in (al.split("|") if isinstance(al, str) else list(al or [])) if a]
            out.append(row)
        return out

    def _records(self, source: str, hub_split: str) -> list[dict[str, Any]]:
        p = _resolve(source, self._base)
        if p.is_file():
            kind = FILE_SUFFIXES.get(p.suffix.lower())
            if kind is None:
                raise UserError(f"task {self.name}: data.path: unknown file type {p.suffix!r} "
                                f"(known: {', '.join(FILE_SUFFIXES)})")
            if kind == "json":
                return read_records(p, ())
            import pandas as pd

            df = pd.read_csv(p, keep_default_na=False) if kind == "csv" else pd.read_parquet(p)
            return df.to_dict("records")
        if p.is_dir():  # a datasets.save_to_disk folder (a Dataset or a DatasetDict)
            from datasets import load_from_disk

            ds = load_from_disk(str(p))
            if isinstance(ds, DatasetDict):
                if hub_split not in ds:
                    raise UserError(f"task {self.name}: data.split: no split {hub_split!r} in {p} (has: {', '.join(ds)})")
                ds = ds[hub_split]
            return ds.to_list()
        if str(source).startswith((".", "/", "~", "bundled:")) or Path(source).suffix in FILE_SUFFIXES:
            raise UserError(f"task {self.name}: data.path: {source} not found")
        from datasets import load_dataset

        try:
            return load_dataset(str(source), self.data.get("name"), split=hub_split).to_list()
        except Exception as e:  # offline, unknown id...
            raise UserError(f"task {self.name}: data.path: hub dataset {source!r} could not be loaded "
                            f"({type(e).__name__}); use a local file or folder") from None

    # -- answers ----------------------------------------------------------------------------
    def extract(self, text: str) -> str | None:
        return self._extract(text)

    def is_correct(self, pred: str | None, row: dict[str, Any]) -> bool:
        return extractors.is_correct(self.scoring, pred, row["gold"], row.get("aliases") or ())

    def target(self, answer: str) -> str:
        return answer

    def fingerprint_config(self) -> dict[str, Any]:
        cfg = super().fingerprint_config()
        p = _resolve(self.data["path"], self._base)
        if p.is_file():
            cfg["data_stat"] = [str(p.resolve()), p.stat().st_size, int(p.stat().st_mtime)]
        return cfg


def load_spec(path: Path) -> dict[str, Any]:
    """A task file as a dict, with its ``include`` (relative to it) merged underneath."""
    from omegaconf import OmegaConf

    if not path.is_file():
        raise UserError(f"task file {path} not found")
    try:
        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as e:
        raise UserError(f"task file {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise UserError(f"task file {path}: expected a mapping of task keys")
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise UserError(f"task file {path}: unknown key(s) {sorted(unknown)} (known: {', '.join(SPEC_KEYS)})")
    if spec.get("include"):
        base = load_spec(_resolve(spec["include"], path.parent))
        spec = {**base, **{k: v for k, v in spec.items() if k != "include"},
                "data": {**(base.get("data") or {}), **(spec.get("data") or {})}}
    return spec


def _resolve(path: str, base: Path) -> Path:
    """``bundled:<file>`` (s2distill/data), an absolute path, or a path relative to ``base``."""
    s = str(path)
    if s.startswith("bundled:"):
        return bundled_path(*s[len("bundled:"):].split("/"))
    p = Path(s).expanduser()
    return p if p.is_absolute() else base / p

