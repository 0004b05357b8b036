"""Unknown config-group choices are one line and exit 2, before Hydra or any work starts."""

from __future__ import annotations

import subprocess
import sys

from s2distill.overrides import check
from tests.conftest import REPO


def test_known_and_unknown_choices():
    assert check(["method=rar", "task=coin_flip", "task.n_train=3", "generate.n=2"]) is None
    assert check(["method=nope"]).startswith("unknown method 'nope' (known: ")
    assert "unknown task 'x'" in check(["-m", "task=coin_flip,x"])
    assert "unknown filter" in check(["filter=choice(majority,zz)"])
    assert check(["train=lora", "engine=hf", "model=smollm2_135m"]) is None


def test_cli_unknown_method_is_one_line_and_exit_2(tmp_path):
    p = subprocess.run([sys.executable, "-m", "s2distill", "method=nope", f"paths.output_dir={tmp_path}"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "unknown method 'nope'" in p.stderr
    assert not any(tmp_path.iterdir())
