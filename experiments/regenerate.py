"""Re-run the committed result cells with the current code and copy each results.json into place.

    python experiments/regenerate.py              # every cell below, one after another
    python experiments/regenerate.py cot_gsm8k    # only the named cells
    python experiments/regenerate.py --list       # print the cells and their commands

Each cell is one ``python -m s2distill`` command (its overrides are recorded in the results
file's ``overrides``); the run directory is ``outputs/regenerate/<cell>`` and its log is copied
beside the results as ``logs/<cell>.log``. Cells run one at a time: two vLLM processes on one
CPU slow each other down many times over. The positive-control cells
(``experiments/results/positive_control``) have their own commands in the README and are not
listed here. Afterwards, ``python -m s2distill.report --update-readme`` regenerates the README's
tables from the new files.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"

# target file (relative to experiments/results) -> overrides
CELLS: dict[str, list[str]] = {
    "system1_coin_flip.json": ["task=coin_flip", "method=system1"],
    "rar_coin_flip.json": ["task=coin_flip", "method=rar"],
    "rar_last_letter.json": ["task=last_letter", "method=rar"],
    "cot_gsm8k.json": ["task=gsm8k", "method=cot", "task.n_train=64", "task.n_test=60"],
    "s2a_biased_qa.json": ["task=biased_qa", "method=s2a", "filter=usc", "task.n_train=64", "task.n_test=80"],
    "bsm_llm_judge.json": ["task=llm_judge", "method=bsm", "filter=swap", "task.n_train=48", "generate.n=2"],
    **{f"cpu_smoke/{t}_{m}.json": ["+experiment=cpu_smoke", f"task={t}", f"method={m}"]
       for t in ("coin_flip", "last_letter") for m in ("system1", "rar", "cot")},
    "real_scale/system1_coin_flip_2proc.json": [
        "task=coin_flip", "method=system1", "task.n_train=32", "task.n_test=20", "generate.n=2",
        "train.num_processes=2"],
}


def name_of(target: str) -> str:
    return target.removesuffix(".json").replace("/", "__")


def run_cell(target: str, overrides: list[str]) -> float:
    run_dir = REPO / "outputs" / "regenerate" / name_of(target)
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "s2distill", *overrides, f"hydra.run.dir={run_dir}"]
    print("$", " ".join(cmd[1:]), flush=True)
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=REPO, check=True)
    dest = RESULTS / target
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "results.json", dest)
    logs = dest.parent / "logs"
    logs.mkdir(exist_ok=True)
    for log in run_dir.glob("*.log"):  # the pipeline's log and vLLM's
        shutil.copyfile(log, logs / f"{Path(target).stem}.{log.name}")
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cells", nargs="*", help="cell names (target file stems, e.g. cot_gsm8k or cpu_smoke/coin_flip_rar)")
    ap.add_argument("--list", action="store_true", help="print the cells and exit")
    a = ap.parse_args(argv)
    chosen = {t: o for t, o in CELLS.items() if not a.cells or t.removesuffix(".json") in a.cells}
    unknown = set(a.cells) - {t.removesuffix(".json") for t in CELLS}
    if unknown:
        print(f"regenerate: error: unknown cell(s) {sorted(unknown)}; see --list", file=sys.stderr)
        return 2
    if a.list:
        for t, o in chosen.items():
            print(f"{t:45s} python -m s2distill {' '.join(o)}")
        return 0
    for t, o in chosen.items():
        print(f"{t}: {run_cell(t, o):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
