"""Runs on disk → one pandas DataFrame (one row per ``results.json``), and the paper-style summary.

``collect(root)`` reads every ``results.json`` under ``root`` (a sweep directory, an outputs folder,
``experiments/results``; renamed copies such as ``<task>_<method>.json`` count too) and flattens it:

* config: ``task``, ``method``, ``filter``, ``model``, ``engine``, ``seed``, ``n_train``, ``n_test``,
  ``n_samples``, ``eval_k``, ``train``, ``filter_threshold``, and every scalar of the run's full
  config as ``cfg.<dotted.key>`` (so any swept value can be grouped on);
* metrics per arm (``system1``, ``system2``, ``distilled``): ``<arm>_<key>`` for every key the arm
  has (``acc``, ``acc_ci_low``, ``acc_ci_high``, ``balanced_acc``, ``mean_tokens``, ``abstain_rate``,
  and extras such as ``inconsistent_rate``); nested dicts as ``<arm>_<key>.<sub>``; answer
  distributions as JSON strings. An arm that is null (nothing kept, no distilled model) gets NaN;
* costs: ``n_kept``, ``kept_frac``, ``majority_baseline``, ``time_<stage>_s`` and ``time_total_s``
  (wall time of the stages *this run computed*; a stage loaded from the cache costs ~0 s),
  ``engine_starts``, ``computed``, ``generate_tokens`` (the System-2 side's generated tokens on the
  training inputs: its samples, resampled variants and the filter's own calls such as USC's
  selections; from ``results.json``, or for older runs counted from the run's ``artifacts/``);
* ``path`` (of the results.json), ``run`` (its folder relative to ``root``), ``mtime`` and
  ``config_id`` (a hash of the config without ``paths``: equal ids are reruns of one experiment).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from s2distill.errors import UserError

log = logging.getLogger(__name__)

ARMS = ("system1", "system2", "distilled")
ARM_LABELS = {"system1": "System 1", "system2": "System 2", "distilled": "Distilled"}
#: columns every arm has, NaN when the arm is null, so tables never miss a column
ARM_METRICS = ("n", "acc", "acc_ci_low", "acc_ci_high", "balanced_acc", "abstain_rate", "mean_tokens")
#: config columns shown in summaries when they differ between runs
CONFIG_COLUMNS = ("task", "method", "filter", "model", "engine", "seed", "n_train", "n_test", "n_samples",
                  "eval_k", "train", "filter_threshold")
#: method order in tables: the baseline first, then System-2 methods as they come
METHOD_ORDER = ("system1",)


# -- reading ----------------------------------------------------------------------------------------
def find(root: str | Path) -> list[Path]:
    """Every ``*.json`` under ``root`` that may be a run's results (hidden folders such as
    ``.submitit`` skipped); ``collect`` keeps those that hold an s2distill result."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise UserError(f"results directory not found: {root}")
    return sorted(p for p in root.rglob("*.json")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1]))


def is_result(obj: Any) -> bool:
    """A run's results: what ``pipeline.run`` writes to ``results.json`` (copies may be renamed)."""
    return isinstance(obj, dict) and {"task", "method", "system1"} <= obj.keys()


def collect(root: str | Path) -> pd.DataFrame:
    """One row per run under ``root``: every ``results.json``, and any other ``*.json`` holding
    a run's results (e.g. ``experiments/results/cpu_smoke/coin_flip_rar.json``)."""
    root = Path(root)
    rows = []
    for path in find(root):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            if path.name == "results.json":
                log.warning("skipping %s: %s", path, e)
            continue
        if not is_result(record):
            if path.name == "results.json":
                log.warning("skipping %s: not an s2distill results.json", path)
            continue
        row = flatten(record)
        run_dir = path.parent
        named = path.name == "results.json"
        if "generate_tokens" not in record:  # written by older versions: count the run's artifacts
            row["generate_tokens"] = generate_tokens(run_dir / "artifacts") if named else math.nan
        row["path"] = str(path.resolve())
        run = run_dir if named else path.with_suffix("")
        row["run"] = str(run.relative_to(root)) if root.is_dir() else run.name
        row["mtime"] = pd.Timestamp(path.stat().st_mtime, unit="s")
        rows.append(row)
    df = pd.DataFrame(rows)
    for arm in ARMS:  # a column per core metric even if every run's arm is null
        for key in ARM_METRICS:
            if f"{arm}_{key}" not in df.columns:
                df[f"{arm}_{key}"] = math.nan
    return df


def flatten(r: dict[str, Any]) -> dict[str, Any]:
    """One results.json (a dict) → one flat row (pure; see the module docstring for columns)."""
    cfg = r.get("config") or {}
    row: dict[str, Any] = {}
    for key, value in r.items():
        if key in ARMS or key in ("config", "timings_s"):
            continue
        row.update(_flat(key, value))
    row["train"] = (cfg.get("train") or {}).get("name")
    row["filter_threshold"] = (cfg.get("filter") or {}).get("threshold")
    n_train = r.get("n_train")
    row["kept_frac"] = r["n_kept"] / n_train if n_train and r.get("n_kept") is not None else math.nan
    for arm in ARMS:
        metrics = r.get(arm) or {}
        row[f"{arm}_present"] = bool(metrics)
        for key in ARM_METRICS:
            row[f"{arm}_{key}"] = math.nan
        for key, value in metrics.items():
            row.update(_flat(f"{arm}_{key}", value))
    timings = r.get("timings_s") or {}
    for stage, seconds in timings.items():
        row[f"time_{stage}_s"] = seconds
    row["time_total_s"] = sum(v for v in timings.values() if isinstance(v, (int, float)))
    row["config_id"] = config_id(r)
    row.update(_flat("cfg", {k: v for k, v in cfg.items() if k != "paths"}))
    return row


def _flat(key: str, value: Any) -> dict[str, Any]:
    """Scalars as they are; distributions and lists as JSON text; other dicts one column per leaf."""
    if isinstance(value, dict):
        if key.endswith(("distribution", "filter_reasons")) or not value:
            return {key: json.dumps(value)}
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(f"{key}.{k}", v))
        return out
    if isinstance(value, (list, tuple)):
        return {key: ", ".join(map(str, value)) if all(isinstance(v, str) for v in value) else json.dumps(value)}
    return {key: value}


def config_id(r: dict[str, Any]) -> str:
    """Identity of an experiment: the run's config without output/cache locations (or, for a
    record without its config, the headline settings)."""
    cfg = r.get("config") or {k: r.get(k) for k in CONFIG_COLUMNS}
    payload = json.dumps({k: v for k, v in cfg.items() if k != "paths"}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def generate_tokens(artifacts: Path) -> float:
    """The System-2 side's generated tokens on the training inputs, counted from a run's
    ``artifacts/`` copies: every sample in ``generate.jsonl`` and its variants
    (``generate_<tag>.jsonl``, e.g. swap's resampling) plus the filter's own calls
    (``filter.jsonl``'s ``tokens``, e.g. USC's selections). NaN without ``generate.jsonl``."""
    if not (artifacts / "generate.jsonl").is_file():
        return math.nan
    total = 0
    try:
        for path in sorted(artifacts.glob("generate*.jsonl")):
            for rec in read_lines(path):
                total += sum(int(t.get("tokens") or 0) for t in rec.get("traces", []))
        if (artifacts / "filter.jsonl").is_file():
            total += sum(int(rec.get("tokens") or 0) for rec in read_lines(artifacts / "filter.jsonl"))
    except (OSError, ValueError, AttributeError) as e:
        log.warning("cannot count tokens in %s: %s", artifacts, e)
        return math.nan
    return float(total)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- saving -----------------------------------------------------------------------------------------
def save(df: pd.DataFrame, stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.parquet`` and ``<stem>.csv``; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = df.copy()
    for col in out.columns:  # parquet wants one type per column: mixed object columns become text
        if out[col].dtype == object:
            types = {type(v) for v in out[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(types) > 1:
                out[col] = out[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    parquet, csv = stem.with_suffix(".parquet"), stem.with_suffix(".csv")
    out.to_parquet(parquet, index=False)
    out.to_csv(csv, index=False)
    return parquet, csv


# -- summary ----------------------------------------------------------------------------------------
def latest(df: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment (``config_id``): the most recent run; reruns hit the cache anyway."""
    if df.empty:
        return df
    return df.sort_values("mtime").drop_duplicates("config_id", keep="last")


def varying(df: pd.DataFrame, columns: Iterable[str] = CONFIG_COLUMNS) -> list[str]:
    """The config columns (besides task and method) whose values differ between runs."""
    return [c for c in columns if c not in ("task", "method") and c in df.columns
            and df[c].astype(str).nunique(dropna=False) > 1]


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """The paper-style table as a DataFrame: one row per task x method (x any varying config),
    S1 / S2 / distilled accuracy with CI and mean tokens, majority baseline and kept/total."""
    df = latest(df)
    if df.empty:
        return pd.DataFrame()
    keys = ["task", "method", *varying(df)]
    cols = [*keys]
    for arm in ARMS:
        cols += [f"{arm}_{m}" for m in ("acc", "acc_ci_low", "acc_ci_high", "mean_tokens")]
    cols += ["majority_baseline", "n_kept", "n_train", "n_test", "run"]
    out = df[list(dict.fromkeys(cols))].copy()  # n_train / n_test may already be keys
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    out["_m"] = out["method"].map(lambda m: order.get(m, len(order)))
    return out.sort_values(["task", "_m", *keys[1:]]).drop(columns="_m").reset_index(drop=True)
