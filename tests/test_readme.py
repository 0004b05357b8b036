"""README.md's result tables are generated from the committed results, never hand-copied."""

from __future__ import annotations

import json

from s2distill import report
from s2distill.report import BLOCK, REPO, update_readme


def test_readme_tables_match_the_committed_results():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    sources = [m["src"] for m in BLOCK.finditer(text)]
    assert sources == ["experiments/results/*.json", "experiments/results/cpu_smoke", "experiments/results/real_scale"]
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
