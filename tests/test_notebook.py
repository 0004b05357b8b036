"""notebooks/compare.ipynb runs headless (nbclient) on the repo's real experiments/results."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "compare.ipynb"
RESULTS = REPO / "experiments" / "results"


def outputs(nb: nbformat.NotebookNode, mime: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if mime in o.get("data", {})]


def test_notebook_has_no_pipeline_logic() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "from s2distill import report, results" in code and "results.collect(" in code
    for forbidden in ("s2distill.pipeline", "s2distill.engines", "s2distill.train", "vllm", "json.load"):
        assert forbidden not in code


def test_committed_notebook_carries_its_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert outputs(nb, "image/png") and outputs(nb, "text/markdown")


def test_notebook_executes_against_experiments_results(monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    from s2distill.results import collect

    if collect(RESULTS).empty:
        pytest.skip("experiments/results/ holds no run results yet")
    monkeypatch.delenv("S2DISTILL_RESULTS", raising=False)  # the notebook's default: experiments/results
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    # raises CellExecutionError on the first cell that fails
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert len(outputs(nb, "image/png")) >= 2  # CI error bars + accuracy-vs-tokens
    table = outputs(nb, "text/markdown")[0]["data"]["text/markdown"]
    assert table.startswith("| task | method |") and "System 2" in table
