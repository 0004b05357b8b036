"""``python -m s2distill.report <dir>``: the paper-style Markdown table of every run under ``dir``.

One row per task x method (plus any config that differs between runs, e.g. the filter or seed):
System 1 / System 2 / distilled accuracy with 95% CI and mean generated tokens per test input,
the majority-class baseline, and how many training inputs the filter kept. ``--save`` also writes
the full DataFrame (every column of ``s2distill.results``) as ``results.parquet`` / ``results.csv``.

``--update-readme`` regenerates every table of README.md that sits between the marker comments
``<!-- report: SOURCE ... -->`` and ``<!-- /report -->`` from SOURCE (a results directory, read
recursively, or a glob such as ``experiments/results/*.json``, relative to the repository);
``--check-readme`` exits 1 when one differs. README tables are never edited by hand.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import pandas as pd

from s2distill import results
from s2distill.errors import UserError


def cell(acc: float, lo: float, hi: float, tokens: float) -> str:
    """``52.0 [42.3, 61.5] · 2.0 tok`` (percent); an absent arm is ``—``."""
    if acc is None or (isinstance(acc, float) and math.isnan(acc)):
        return "—"
    return f"{100 * acc:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] · {tokens:.1f} tok"


def markdown(df: pd.DataFrame) -> str:
    """The table for a ``results.collect`` DataFrame (latest run per experiment)."""
    table = results.summary(df)
    if table.empty:
        return "(no runs)"
    extra = results.varying(results.latest(df))
    head = ["task", "method", *extra, *(results.ARM_LABELS[a] for a in results.ARMS), "majority", "kept/total"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        arms = [cell(r[f"{a}_acc"], r[f"{a}_acc_ci_low"], r[f"{a}_acc_ci_high"], r[f"{a}_mean_tokens"])
                for a in results.ARMS]
        kept = f"{int(r['n_kept'])}/{int(r['n_train'])}" if pd.notna(r["n_kept"]) else "—"
        values = [r["task"], r["method"], *(r[c] for c in extra), *arms, f"{100 * r['majority_baseline']:.1f}", kept]
        lines.append("| " + " | ".join(str(v) for v in values) + " |")
    tests = sorted({int(n) for n in table["n_test"].dropna()})
    lines += ["", f"Accuracy (%) on {' / '.join(map(str, tests))} held-out test inputs [95% Wilson CI] · mean "
              "generated tokens per test input. majority: accuracy of always giving the most common gold "
              "answer. kept/total: training inputs the filter kept. Distilled —: nothing kept, no model."]
    return "\n".join(lines)


REPO = Path(__file__).resolve().parents[1]
#: a generated README table: the opening marker names its source, the closing one ends it
BLOCK = re.compile(r"(?P<open><!-- report: (?P<src>\S+)[^\n]*-->\n)(?P<body>.*?)(?P<close><!-- /report -->)", re.S)


def collect_source(src: str, root: Path = REPO) -> pd.DataFrame:
    """The runs of one README source: a directory (recursive) or a glob of result files."""
    paths = sorted(root.glob(src)) if any(ch in src for ch in "*?[") else [root / src]
    frames = [results.collect(p) for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        raise UserError(f"no results under {src}")
    return pd.concat(frames, ignore_index=True)


def update_readme(text: str, root: Path = REPO) -> str:
    """``text`` (a README) with every generated table rebuilt from its source."""
    def table(m: re.Match[str]) -> str:
        return f"{m['open']}\n{markdown(collect_source(m['src'], root))}\n\n{m['close']}"

    return BLOCK.sub(table, text)


def readme_main(path: Path, write: bool) -> int:
    text = path.read_text(encoding="utf-8")
    new = update_readme(text, path.parent)
    n = len(BLOCK.findall(text))
    if new == text:
        print(f"{path}: {n} generated table(s) up to date")
        return 0
    if write:
        path.write_text(new, encoding="utf-8")
        print(f"{path}: {n} generated table(s) rewritten")
        return 0
    print(f"{path}: generated tables differ from the committed results; run python -m s2distill.report "
          "--update-readme", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2distill.report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, nargs="?", help="a sweep directory, outputs/ or experiments/results/")
    parser.add_argument("--save", action="store_true", help="also write <dir>/results.parquet and results.csv")
    parser.add_argument("--update-readme", action="store_true", help="regenerate README.md's result tables")
    parser.add_argument("--check-readme", action="store_true", help="exit 1 if README.md's tables are stale")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.update_readme or args.check_readme:
        try:
            return readme_main(args.readme, write=args.update_readme)
        except UserError as e:
            print(f"s2distill.report: error: {e}", file=sys.stderr)
            return 2
    if args.dir is None:
        parser.error("a results directory is required (or --update-readme / --check-readme)")
    try:
        df = results.collect(args.dir)
        if df.empty:
            raise UserError(f"no results.json under {args.dir}")
    except UserError as e:
        print(f"s2distill.report: error: {e}", file=sys.stderr)
        return 2
    n_exp = results.latest(df)["config_id"].nunique()
    print(f"{len(df)} runs ({n_exp} distinct experiments) under {args.dir}\n")
    print(markdown(df))
    if args.save:
        for path in results.save(df, args.dir / "results"):
            print(f"\nwrote {path}", end="")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
