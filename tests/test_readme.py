"""README.md's result tables are generated from the committed results, never hand-copied."""

from __future__ import annotations

import json

import pytest

from s2distill import report
from s2distill.errors import UserError
from s2distill.report import BLOCK, REPO, update_readme


def test_readme_tables_match_the_committed_results():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    sources = [m["src"] for m in BLOCK.finditer(text)]
    assert sources == ["experiments/results/positive_control", "experiments/results/*.json",
                       "experiments/results/kd", "experiments/results/synth", "experiments/results/cpu_smoke",
                       "experiments/results/real_scale", "bench/results.json"]
    # the results section opens with the positive control, as its per-variant table
    assert [m["kind"] for m in BLOCK.finditer(text)][0] == "bias"
    assert update_readme(text) == text, "README tables are stale: run python -m s2distill.report --update-readme"


def test_check_and_update_readme_cli(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    rec = json.loads((REPO / "experiments/results/cpu_smoke/coin_flip_rar.json").read_text())
    (tmp_path / "runs" / "a.json").write_text(json.dumps(rec))
    readme = tmp_path / "README.md"
    readme.write_text("# prose stays\n\n<!-- report: runs (generated) -->\n| hand | copied |\n<!-- /report -->\nmore prose\n")
    assert report.main(["--check-readme", "--readme", str(readme)]) == 1  # the hand-copied table drifted
    assert report.main(["--update-readme", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# prose stays\n") and text.endswith("<!-- /report -->\nmore prose\n")
    assert "| hand |" not in text and "| coin_flip | rar |" in text
    assert report.main(["--check-readme", "--readme", str(readme)]) == 0
    rec["system2"]["acc"] = 0.99  # the results change → the README must follow
    (tmp_path / "runs" / "a.json").write_text(json.dumps(rec))
    assert report.main(["--check-readme", "--readme", str(readme)]) == 1


def test_bias_table_shows_per_variant_accuracy_mcnemar_and_rewrites():
    df = report.collect_source("experiments/results/positive_control")
    table = report.bias_markdown(df)
    head = table.splitlines()[0]
    assert all(v in head for v in report.BIAS_VARIANTS) and "agree_incorrect" in head
    s2a = df[df["method"] == "s2a"].iloc[0]
    # the S2A cell's System-2 row, formatted from its own results.json
    acc = s2a["system2_acc_by_bias.suggest_incorrect"]
    row = next(ln for ln in table.splitlines() if ln.startswith("| s2a + demos (s2a_rewrite) | System 2 |"))
    assert f"{100 * acc:.1f} [" in row.split("|")[5]
    assert f"exact McNemar p = {s2a['paired.distilled_vs_system1.biased.mcnemar_p']:.3g}" in table
    assert "rewrites following the format" in table and "precision of kept answers" in table
    assert len([ln for ln in table.splitlines() if ln.startswith("| system1 |")]) == 3  # the control cell


def _kd_run(tmp_path, name, train, correct, synth=None, n_train=None, **kd):
    """A biased-QA results file whose config differs from its siblings only in ``train`` (and in
    ``synthesize`` when ``synth`` is the synthesis report of its inputs; ``n_train``: how many
    training inputs the run had)."""
    rec = json.loads((REPO / "experiments/results/positive_control/s2a_demos.json").read_text())
    if n_train is not None:
        rec["n_train"] = rec["config"]["task"]["n_train"] = n_train
    rec["config"]["train"] = {"name": train, **({"kd": kd} if kd else {})}
    rec["config"]["synthesize"] = {"k": 8 if synth else 0}
    if synth:
        rec["synthesis"] = synth
    rec["test_subsets"] = {"biased": [0, 1, 2, 3, 4, 5], "unbiased": [6, 7]}
    rec["distilled"] = {**rec["distilled"], "n": len(correct), "acc": sum(correct) / len(correct), "correct": correct}
    rec["training"] = {"train_runtime_s": 12.0, **({"teacher_scoring": {"n_scored_tokens": 345, "compute_time_s": 7.0}}
                                                  if kd else {})}
    (tmp_path / f"{name}.json").write_text(json.dumps(rec))


def test_variants_table_pairs_each_variant_with_the_cells_hard_label_sft_on_real_inputs(tmp_path):
    _kd_run(tmp_path, "sft", "full", [0, 0, 0, 0, 1, 1, 1, 0])
    _kd_run(tmp_path, "ctx", "kd", [1, 1, 1, 0, 1, 0, 1, 1], divergence="forward_kl", context="system2",
            alpha=0.5, temperature=1.0)
    _kd_run(tmp_path, "synth", "full", [0, 0, 0, 0, 0, 0, 1, 0], n_train=58, synth={
        "n_seeds": 8, "n_generated": 70, "n_kept": 50, "n_duplicate": 15, "n_invalid": 5, "rounds": 3,
        "tokens": 9000, "diversity_rouge_l": 0.31})
    # synthesis reached 58 inputs of 315: its like-for-like reference is SFT on 58 real inputs
    _kd_run(tmp_path, "real58", "full", [1, 0, 0, 0, 1, 0, 1, 1], n_train=58)
    table = report.variants_markdown(report.collect_source(str(tmp_path), tmp_path))
    rows = [ln for ln in table.splitlines() if ln.startswith("| biased_qa")]
    assert len(rows) == 4 and "SFT (hard labels)" in rows[0] and "(reference)" in rows[0]
    ctx = rows[1].split(" | ")
    assert "teacher given the System-2 context" in ctx[1]
    assert ctx[3].startswith("75.0 [") and ctx[4].startswith("66.7 [") and ctx[5].startswith("100.0 [")
    # all 8: KD right where SFT is wrong on 0, 1, 2, 7; SFT right where KD is wrong on 5 -> 4/1;
    # biased (0-5): 3/1; exact two-sided binomial p = 0.375 and 0.625
    assert ctx[7] == "4/1, p = 0.38" and ctx[8] == "3/1, p = 0.62"
    assert ctx[10] == "12" and ctx[11].startswith("345 · 7")
    assert ctx[9] == "—"  # open answers: no answer counts
    assert report._top_answers('{"no": 59, "<none>": 1}') == "no 59, <none> 1"
    synth = next(r for r in rows if "inputs synthesized from 8 seeds" in r).split(" | ")
    # vs SFT on 58 real inputs (vs the 315-input run it would be 0/2): it loses inputs 0, 4 and 7
    assert synth[2] == "73/58" and synth[7] == "0/3, p = 0.25"
    assert "kept 50, near-duplicates 15, invalid 5; mean pairwise ROUGE-L of the kept inputs 0.31" in table


def test_variants_table_reports_every_round_of_an_iterated_cell(tmp_path):
    _kd_run(tmp_path, "sft", "full", [0, 0, 0, 0, 1, 1, 1, 0])
    rec = json.loads((tmp_path / "sft.json").read_text())
    arm = lambda acc, biased: {"n": 8, "acc": acc, "acc_biased": biased}  # noqa: E731
    rec["rounds"] = [{"round": 1, "n_kept": 40, "n_train": 90, "system1": arm(0.5, 0.25),
                      "system2": arm(0.625, 0.5), "distilled": arm(0.75, 0.5)},
                     {"round": 2, "n_kept": 0, "n_train": 90, "system1": arm(0.75, 0.5),
                      "system2": arm(0.5, 0.375), "distilled": None}]
    rec["config"]["rounds"] = 2
    (tmp_path / "sft.json").write_text(json.dumps(rec))
    table = report.variants_markdown(report.collect_source(str(tmp_path), tmp_path))
    assert ("round 1: kept 40/90, System 1 50.0 (biased 25.0), System 2 62.5 (biased 50.0), Distilled 75.0 "
            "(biased 50.0); round 2: kept 0/90, System 1 75.0 (biased 50.0), System 2 50.0 (biased 37.5), "
            "Distilled —.") in table


def test_readme_tables_do_not_depend_on_when_result_files_were_written(tmp_path):
    """A fresh clone gives the result files checkout-order modification times: every generated
    table must come out the same whichever file looks newest."""
    import os
    import shutil

    text = (REPO / "README.md").read_text(encoding="utf-8")
    shutil.copytree(REPO / "experiments/results", tmp_path / "experiments/results")
    (tmp_path / "bench").mkdir()
    shutil.copy(REPO / "bench/results.json", tmp_path / "bench/results.json")
    files = sorted(p for p in (tmp_path / "experiments/results").rglob("*.json"))
    tables = []
    for order in (files, files[::-1]):
        for t, p in enumerate(order):
            os.utime(p, (1_700_000_000 + t, 1_700_000_000 + t))
        tables.append(update_readme(text, tmp_path))
    assert tables[0] == tables[1]


def test_bench_table_shows_each_figure_with_its_verdict_meaning_and_the_run_that_measured_it(tmp_path):
    data = {"fast_s": 3.0, "speedup": 0.8, "same": True, "untargeted": 12345.678,
            "targets": [["speedup", 1.5, "higher", "new / old tokens/s"], ["fast_s", 5.0, "lower", "seconds"],
                        ["same", None, "", "same texts"]],
            "recorded_by": {"speedup": "a", "fast_s": "b"},
            "details": {"a": {"measured": "2026-12-04 16:33"}, "b": {"measured": "2026-11-23 04:06"}}}
    rows = report.bench_markdown(data).splitlines()[2:]
    # targeted figures first, in the targets' order, then the rest by name
    assert [r.split(" | ")[0] for r in rows] == ["| `speedup`", "| `fast_s`", "| `same`", "| `untargeted`"]
    assert rows[0] == "| `speedup` | 0.8 | NOT met (>= 1.5) | new / old tokens/s | `a.py`, 2026-12-04 |"
    assert rows[1] == "| `fast_s` | 3 | met (<= 5) | seconds | `b.py`, 2026-11-23 |"
    assert rows[2] == "| `same` | True |  | same texts |  |"
    assert rows[3] == "| `untargeted` | 1.23e+04 |  |  |  |"
    # the README block reads the file; a missing one is one clear error
    readme = "<!-- report: bench/results.json kind=bench (generated) -->\nold\n<!-- /report -->\n"
    (tmp_path / "bench").mkdir()
    with pytest.raises(UserError, match="no file"):
        update_readme(readme, tmp_path)
    (tmp_path / "bench/results.json").write_text(json.dumps(data))
    assert "| `speedup` | 0.8 | NOT met (>= 1.5) |" in update_readme(readme, tmp_path)
