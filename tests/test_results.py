"""s2distill.results (runs → DataFrame) and the report CLI, on hand-written results.json files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from s2distill import report, results


def arm(acc: float, lo: float, hi: float, tokens: float, **extra) -> dict:
    return {"n": 8, "acc": acc, "acc_ci_low": lo, "acc_ci_high": hi, "balanced_acc": acc,
            "answer_distribution": {"yes": 5, "no": 3}, "abstain_rate": 0.0, "mean_tokens": tokens, **extra}


def record(task: str, method: str, n_kept: int, distilled: dict | None, seed: int = 0, **system2_extra) -> dict:
    return {
        "task": task, "method": method, "filter": "majority", "model": "bundled:SmolLM2-135M-Instruct@0.1.2",
        "engine": "vllm", "seed": seed, "n_train": 8, "n_test": 8, "n_samples": 2, "eval_k": 1,
        "n_kept": n_kept, "kept_label_distribution": {"yes": n_kept}, "filter_reasons": {"majority": n_kept},
        "test_label_distribution": {"yes": 4, "no": 4}, "majority_baseline": 0.5,
        "system1": arm(0.5, 0.215, 0.785, 2.0),
        "system2": arm(0.625, 0.306, 0.863, 47.75, **system2_extra),
        "distilled": distilled,
        "timings_s": {"generate": 12.5, "filter": 0.01, "train": 30.0},
        "engine_starts": 2, "cache_hits": [], "computed": ["generate", "filter"],
        "config": {"task": {"name": task, "n_train": 8}, "method": {"name": method}, "seed": seed,
                   "filter": {"name": "majority", "threshold": 0.75}, "train": {"name": "full", "sft": {"lr": 1e-5}},
                   "paths": {"cache_dir": "/somewhere"}},
    }


def write(path: Path, obj: dict | str, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    write(root / "0_coin_flip_rar" / "results.json",
          record("coin_flip", "rar", 2, arm(0.75, 0.409, 0.929, 2.0), inconsistent_rate=0.25,
                 acc_by_bias={"sycophantic": 0.5, "none": 0.75}, perturbed={"name": "swap", "acc": 0.5}),
          mtime=1000)
    # the same experiment again (a rerun from the cache) but older: the table keeps the newest
    write(root / "old" / "results.json", record("coin_flip", "rar", 2, arm(0.1, 0.0, 0.3, 2.0)), mtime=500)
    # nothing kept → no distilled model (null arm)
    write(root / "1_last_letter_system1" / "results.json", record("last_letter", "system1", 0, None), mtime=1000)
    (root / "1_last_letter_system1" / "artifacts").mkdir()
    (root / "1_last_letter_system1" / "artifacts" / "generate.jsonl").write_text(
        json.dumps({"id": "a", "traces": [{"tokens": 3}, {"tokens": 4}]}) + "\n"
        + json.dumps({"id": "b", "traces": [{"tokens": 5}]}) + "\n")
    # swap's resampled variant and the filter's own generation (USC's selection calls) count too
    (root / "1_last_letter_system1" / "artifacts" / "generate_swap_ab.jsonl").write_text(
        json.dumps({"id": "a", "traces": [{"tokens": 100}]}) + "\n")
    (root / "1_last_letter_system1" / "artifacts" / "filter.jsonl").write_text(
        json.dumps({"id": "a", "kept": True, "tokens": 1000}) + "\n" + json.dumps({"id": "b", "tokens": 0}) + "\n")
    (root / "1_last_letter_system1" / "artifacts" / "eval_system1.jsonl").write_text(  # not training-side
        json.dumps({"id": "t", "traces": [{"tokens": 10000}]}) + "\n")
    write(root / "broken" / "results.json", "{not json")  # skipped with a warning
    write(root / "notes.json", {"comment": "not a run"})  # other JSON: ignored
    write(root / ".submitit" / "x" / "results.json", record("coin_flip", "cot", 1, None))  # hidden: ignored
    return root


def test_collect_flattens_config_metrics_and_costs(runs_dir: Path) -> None:
    df = results.collect(runs_dir)
    assert len(df) == 3 and sorted(df.method) == ["rar", "rar", "system1"]
    rar = df[(df.method == "rar") & (df.distilled_acc == 0.75)].iloc[0]
    assert (rar.task, rar["filter"], rar.seed, rar.n_train, rar.n_test, rar.train, rar.filter_threshold) == (
        "coin_flip", "majority", 0, 8, 8, "full", 0.75)
    assert (rar.system1_acc, rar.system2_acc, rar.system2_acc_ci_low, rar.system2_mean_tokens) == (0.5, 0.625, 0.306, 47.75)
    # extra metric keys of an arm, nested dicts one column per leaf, distributions as JSON text
    assert rar.system2_inconsistent_rate == 0.25
    assert rar["system2_acc_by_bias.sycophantic"] == 0.5 and rar["system2_perturbed.name"] == "swap"
    assert json.loads(rar.system1_answer_distribution) == {"yes": 5, "no": 3}
    # costs
    assert (rar.n_kept, rar.kept_frac, rar.majority_baseline) == (2, 0.25, 0.5)
    assert (rar.time_generate_s, rar.time_train_s, rar.time_total_s) == (12.5, 30.0, 42.51)
    assert rar.computed == "generate, filter" and rar.engine_starts == 2
    assert rar["cfg.train.sft.lr"] == 1e-5 and "cfg.paths.cache_dir" not in df.columns
    assert rar.path.endswith("results.json") and rar.run == "0_coin_flip_rar"
    # the null arm: NaN metrics, flagged absent; tokens counted from the run's generate.jsonl copy
    s1 = df[df.method == "system1"].iloc[0]
    assert not s1.distilled_present and math.isnan(s1.distilled_acc) and math.isnan(s1.distilled_mean_tokens)
    assert s1.generate_tokens == 12 + 100 + 1000 and math.isnan(rar.generate_tokens)
    # reruns of one config share config_id; different configs do not
    assert df[df.method == "rar"].config_id.nunique() == 1 and df.config_id.nunique() == 2


def test_generate_tokens_from_results_json_wins(tmp_path: Path) -> None:
    r = record("coin_flip", "rar", 1, None)
    r["generate_tokens"] = 321  # what pipeline.summarize writes (samples + variants + filter calls)
    write(tmp_path / "run" / "results.json", r)
    (tmp_path / "run" / "artifacts").mkdir()
    (tmp_path / "run" / "artifacts" / "generate.jsonl").write_text(json.dumps({"id": "a", "traces": [{"tokens": 3}]}))
    assert results.collect(tmp_path).generate_tokens.iloc[0] == 321


def test_renamed_result_files_count(tmp_path: Path) -> None:
    write(tmp_path / "cpu_smoke" / "coin_flip_cot.json", record("coin_flip", "cot", 1, None))
    write(tmp_path / "cpu_smoke" / "config.json", {"task": "not a run"})
    df = results.collect(tmp_path)
    assert list(df.run) == ["cpu_smoke/coin_flip_cot"] and df.method.iloc[0] == "cot"


def test_all_arms_null_still_has_columns(tmp_path: Path) -> None:
    r = record("coin_flip", "rar", 0, None)
    r["system2"] = None
    write(tmp_path / "a" / "results.json", r)
    df = results.collect(tmp_path)
    assert math.isnan(df.distilled_acc.iloc[0]) and math.isnan(df.system2_acc_ci_high.iloc[0])
    assert "| coin_flip | rar | 50.0 [21.5, 78.5] · 2.0 tok | — | — | 50.0 | 0/8 |" in report.markdown(df)


def test_save_parquet_and_csv_roundtrip(runs_dir: Path, tmp_path: Path) -> None:
    df = results.collect(runs_dir)
    parquet, csv = results.save(df, tmp_path / "out" / "results")
    back_p, back_c = pd.read_parquet(parquet), pd.read_csv(csv)
    assert len(back_p) == len(back_c) == 3
    assert list(back_p.columns) == list(df.columns)
    assert sorted(back_c.system2_acc) == sorted(df.system2_acc)


def test_summary_keeps_latest_run_per_experiment(runs_dir: Path) -> None:
    table = results.summary(results.collect(runs_dir))
    assert list(zip(table.task, table.method)) == [("coin_flip", "rar"), ("last_letter", "system1")]
    assert table.distilled_acc.iloc[0] == 0.75  # the newer of the two coin_flip x rar runs


def test_summary_shows_config_that_differs(tmp_path: Path) -> None:
    write(tmp_path / "s0" / "results.json", record("coin_flip", "rar", 2, None, seed=0))
    write(tmp_path / "s1" / "results.json", record("coin_flip", "rar", 2, None, seed=1))
    df = results.collect(tmp_path)
    assert results.varying(df) == ["seed"]
    assert list(results.summary(df).seed) == [0, 1]
    assert "| task | method | seed | System 1 |" in report.markdown(df)


def test_sizes_that_differ_become_columns(tmp_path: Path) -> None:
    small = record("coin_flip", "rar", 2, None)
    big = {**record("last_letter", "cot", 2, None), "n_train": 96, "n_test": 100}
    big["config"] = {**big["config"], "seed": 5}
    write(tmp_path / "a" / "results.json", small)
    write(tmp_path / "b" / "results.json", big)
    df = results.collect(tmp_path)
    assert results.varying(df) == ["n_train", "n_test"]
    md = report.markdown(df)
    assert "| task | method | n_train | n_test | System 1 |" in md and "| 96 | 100 |" in md
    assert "on 8 / 100 held-out test inputs" in md


def test_report_markdown_table(runs_dir: Path) -> None:
    md = report.markdown(results.collect(runs_dir))
    lines = md.splitlines()
    assert lines[0] == "| task | method | System 1 | System 2 | Distilled | majority | kept/total |"
    assert lines[2] == ("| coin_flip | rar | 50.0 [21.5, 78.5] · 2.0 tok | 62.5 [30.6, 86.3] · 47.8 tok "
                        "| 75.0 [40.9, 92.9] · 2.0 tok | 50.0 | 2/8 |")
    assert lines[3].startswith("| last_letter | system1 |") and lines[3].endswith("| — | 50.0 | 0/8 |")
    assert "on 8 held-out test inputs" in md


def test_report_cli(runs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(runs_dir), "--save"]) == 0
    out = capsys.readouterr().out
    assert "3 runs (2 distinct experiments)" in out and "| coin_flip | rar |" in out
    assert (runs_dir / "results.parquet").is_file() and (runs_dir / "results.csv").is_file()


def test_report_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(tmp_path / "missing")]) == 2
    assert "results directory not found" in capsys.readouterr().err
    assert report.main([str(tmp_path)]) == 2
    assert "no results.json under" in capsys.readouterr().err
