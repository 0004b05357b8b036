"""``python -m s2distill.report <dir>``: the paper-style Markdown table of every run under ``dir``.

One row per task x method (plus any config that differs between runs, e.g. the filter or seed):
System 1 / System 2 / distilled accuracy with 95% CI and mean generated tokens per test input,
the majority-class baseline, and how many training inputs the filter kept. ``--save`` also writes
the full DataFrame (every column of ``s2distill.results``) as ``results.parquet`` / ``results.csv``.

``--update-readme`` regenerates every table of README.md that sits between the marker comments
``<!-- report: SOURCE ... -->`` and ``<!-- /report -->`` from SOURCE (a results directory, read
recursively, or a glob such as ``experiments/results/*.json``, relative to the repository);
``--check-readme`` exits 1 when one differs. README tables are never edited by hand. A marker
``<!-- report: SOURCE kind=bias ... -->`` gets the per-variant table of biased-QA cells
(``bias_markdown``) instead, and ``kind=variants`` the training and input variants of one cell
side by side (``variants_markdown``); ``kind=bench`` reads SOURCE as one file,
``bench/results.json``, and gets its figure table (``bench_markdown``, also the top of
bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from s2distill import results
from s2distill.errors import UserError
from s2distill.metrics import compare_paired, wilson_ci
from s2distill.tasks.biased_qa import TEMPLATES


def cell(acc: float, lo: float, hi: float, tokens: float) -> str:
    """``52.0 [42.3, 61.5] · 2.0 tok`` (percent); an absent arm is ``—``."""
    if _missing(acc):
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


BIAS_VARIANTS = tuple(TEMPLATES)  # biased_qa's opinion variants, in its order


def bias_markdown(df: pd.DataFrame) -> str:
    """Biased-QA cells, one row per cell x arm: accuracy per opinion variant [95% Wilson CI], on all
    biased prompts, agreement with the user's incorrect suggestion and generated tokens; under the
    table, per cell, what the filter kept (and its precision from gold, after the fact), the exact
    McNemar test of Distilled vs System 1 on biased prompts and S2A's rewrite quality."""
    runs = results.latest(df)
    runs = runs[runs["task"] == "biased_qa"]
    if runs.empty:
        return "(no biased_qa runs)"
    runs = runs.assign(_order=runs["method"].map(lambda m: m == "system1")).sort_values(["_order", "method"])
    head = ["cell", "arm", *BIAS_VARIANTS, "all biased", "agree_incorrect", "tokens"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for _, r in runs.iterrows():
        label = _cell_label(r)
        for arm in results.ARMS:
            if not r.get(f"{arm}_present"):
                lines.append(f"| {label} | {results.ARM_LABELS[arm]} | " + " | ".join(["—"] * (len(head) - 2)) + " |")
                continue
            vals = []
            for v in (*BIAS_VARIANTS, "biased"):
                acc = r.get(f"{arm}_acc_by_bias.{v}") if v != "biased" else r.get(f"{arm}_acc_biased")
                n = r.get(f"{arm}_n_by_bias.{v}") if v != "biased" else r.get(f"{arm}_n_biased")
                vals.append(_pct_ci(acc, n))
            agree = r.get(f"{arm}_agree_incorrect_rate")
            vals.append("—" if _missing(agree) else f"{100 * agree:.1f}")
            vals.append(f"{r[f'{arm}_mean_tokens']:.1f}")
            lines.append(f"| {label} | {results.ARM_LABELS[arm]} | " + " | ".join(vals) + " |")
        notes.append(_cell_note(label, r))
    lines += ["", "Accuracy (%) [95% Wilson CI] per opinion variant of the held-out questions; all biased: the "
              "three variants with an opinion; agree_incorrect: % of suggest_incorrect prompts answered with "
              "the user's wrong suggestion; tokens: mean generated tokens per test input.", ""]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines)


#: config prefixes a variants table compares within one cell: the training (hard labels, soft
#: targets) and where the unlabeled inputs come from (real or synthesized)
VARIANT_KEYS = ("cfg.train.", "cfg.synthesize.")


def variants_markdown(df: pd.DataFrame) -> str:
    """Variants of one cell side by side: runs whose config differs only in ``train`` (hard-label
    SFT, soft-target KD, context distillation; they share the kept set by construction, as their
    generation and filter are the same cached stages) or in ``synthesize`` (synthesized vs real
    training inputs). One row per variant: the Distilled arm's accuracy [95% Wilson CI] on all
    test inputs and on the task's subsets (biased / unbiased prompts), agreement with a wrong
    suggestion, the exact McNemar test against the cell's reference run (hard-label SFT on real
    inputs) on the same test inputs, training wall time and what the teacher's soft targets cost
    (scored tokens, time); under the table, each cell's System 1 / System 2 and, for synthesized
    inputs, what synthesis generated, kept and dropped."""
    runs = results.latest(df)
    if runs.empty:
        return "(no runs)"
    # one cell = one config but for the variant keys and the number of training inputs (synthesis
    # may reach fewer than task.n_train; its like-for-like control is a real cell of that size)
    cfg_cols = sorted(c for c in runs.columns if c.startswith("cfg.") and c != "cfg.task.n_train"
                      and not c.startswith((*VARIANT_KEYS, "cfg.hydra")))
    runs = runs.assign(_group=runs[cfg_cols].apply(lambda r: "|".join(map(str, r)), axis=1), _variant=runs.apply(_variant, axis=1))
    subsets = [s for s in ("biased", "unbiased") if f"test_subsets.{s}" in runs.columns]
    agree_col = "distilled_agree_incorrect_rate" in runs.columns and runs["distilled_agree_incorrect_rate"].notna().any()
    head = ["cell", "training", "kept", "Distilled (all)", *(f"Distilled ({s})" for s in subsets),
            *(["agree_incorrect"] if agree_col else []), "vs reference (all)", *(f"vs reference ({s})" for s in subsets[:1]),
            "Distilled answers", "train s", "teacher tokens · s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    cells = []
    for key, group in runs.groupby("_group"):
        group = group.assign(_order=group["_variant"].map(_variant_order)).sort_values(
            ["n_train", "_order", "run"], ascending=[False, True, True])
        first = group.iloc[0]
        n_rounds = first.get("cfg.rounds")
        label = f"{first['task']} × {_cell_label(first)}" + (
            f", round {int(n_rounds)} of rounds={int(n_rounds)}" if not _missing(n_rounds) and n_rounds > 1 else "")
        cells.append((label, key, group))
    # cells in the order of their labels, never in the order the files were found or last written
    # (a fresh clone gives every file the same checkout time)
    for label, _, group in sorted(cells, key=lambda c: c[:2]):
        # each row's reference: hard-label SFT on as many real inputs as the row trained from
        refs = {int(r["n_train"]): r for _, r in group[group["_variant"] == REFERENCE].iterrows()}
        for _, r in group.iterrows():
            vals = [label, r["_variant"], f"{int(r['n_kept'])}/{int(r['n_train'])}",
                    _pct_ci(r["distilled_acc"], r["distilled_n"])]
            correct = _json_list(r.get("distilled_correct"))
            for sub in subsets:
                idx = _json_list(r.get(f"test_subsets.{sub}"))
                vals.append("—" if correct is None or not idx else
                            _pct_ci(sum(correct[i] for i in idx) / len(idx), len(idx)))
            if agree_col:
                agree = r.get("distilled_agree_incorrect_rate")
                vals.append("—" if _missing(agree) else f"{100 * agree:.1f}")
            base = refs.get(int(r["n_train"]))
            for sub in ("all", *subsets[:1]):
                vals.append(_vs(correct, _json_list(base.get("distilled_correct")) if base is not None else None,
                                None if sub == "all" else _json_list(r.get(f"test_subsets.{sub}")))
                            if r["_variant"] != REFERENCE else "(reference)")
            vals.append(_top_answers(r.get("distilled_answer_distribution")))
            runtime = r.get("training.train_runtime_s")
            vals.append("—" if _missing(runtime) else f"{runtime:.0f}")
            tok, sec = r.get("training.teacher_scoring.n_scored_tokens"), r.get("training.teacher_scoring.compute_time_s")
            vals.append("—" if _missing(tok) else f"{int(tok)} · {'?' if _missing(sec) else f'{sec:.0f}'}")
            lines.append("| " + " | ".join(vals) + " |")
        for _, r in group.iterrows():
            if not _missing(r.get("synthesis.n_generated")):
                notes.append(f"**{label}, {r['_variant']}**: synthesis generated {int(r['synthesis.n_generated'])} "
                             f"candidates in {int(r['synthesis.rounds'])} rounds: kept {int(r['synthesis.n_kept'])}, "
                             f"near-duplicates {int(r['synthesis.n_duplicate'])}, invalid {int(r['synthesis.n_invalid'])}; "
                             f"mean pairwise ROUGE-L of the kept inputs {r['synthesis.diversity_rouge_l']:.2f}; "
                             f"{int(r['synthesis.tokens'])} tokens.")
            if isinstance(r.get("rounds"), str):
                notes.append(f"**{label}, {r['_variant']}** " + _rounds_note(json.loads(r["rounds"])))
        arms = []
        for arm in ("system1", "system2"):
            biased = first.get(f"{arm}_acc_biased")
            arms.append(f"{results.ARM_LABELS[arm]} {_pct_ci(first[f'{arm}_acc'], first[f'{arm}_n'])}"
                        + ("" if _missing(biased) else f" (biased {_pct_ci(biased, first.get(f'{arm}_n_biased'))})"))
        kept = _top_answers(first.get("kept_label_distribution"))
        notes.append(f"**{label}**: {', '.join(arms)} on all {int(first['n_test'])} test inputs; majority baseline "
                     f"{100 * first['majority_baseline']:.1f}" + ("" if kept == "—" else f"; kept answers: {kept}") + ".")
    lines += ["", "Accuracy (%) [95% Wilson CI] of the Distilled arm; kept: inputs the filter kept / training inputs; "
              "vs reference: test inputs this variant gets right and the reference (hard-label SFT on as many real "
              "inputs) wrong / the reverse, exact McNemar p; Distilled "
              "answers: its answer counts (labelled tasks); train s: the trainer's wall time; teacher "
              "tokens · s: completion tokens the teacher scored and the time it took (engine start included).", ""]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines)


REFERENCE = "SFT (hard labels)"


def _variant(r: pd.Series) -> str:
    ctx = {"system2": "teacher given the System-2 context", "none": "teacher given the System-1 prompt"}
    if r.get("train") == "full":
        label = REFERENCE
    elif r.get("train") == "kd":
        label = (f"KD {r.get('cfg.train.kd.divergence')}, {ctx.get(r.get('cfg.train.kd.context'), r.get('cfg.train.kd.context'))}, "
                 f"α={r.get('cfg.train.kd.alpha')}, T={r.get('cfg.train.kd.temperature')}")
    else:
        label = str(r.get("train"))
    k = r.get("cfg.synthesize.k")
    return label if _missing(k) or not k else f"{label}, inputs synthesized from {int(k)} seeds"


def _variant_order(v: str) -> str:
    return f"{0 if v == REFERENCE else 1 if 'System-1' in v else 2}{v}"


def _rounds_note(blocks: list[dict[str, Any]]) -> str:
    """Each round's kept inputs and arms (round r + 1's System 1 and System 2 run on round r's
    distilled model), on all test inputs and on biased prompts where the task has them."""
    parts = []
    for b in blocks:
        arms = []
        for arm in ("system1", "system2", "distilled"):
            m = b.get(arm) or {}
            if not m:
                arms.append(f"{results.ARM_LABELS[arm]} —")
                continue
            biased = f" (biased {100 * m['acc_biased']:.1f})" if m.get("acc_biased") is not None else ""
            arms.append(f"{results.ARM_LABELS[arm]} {100 * m['acc']:.1f}{biased}")
        parts.append(f"round {b['round']}: kept {b['n_kept']}/{b['n_train']}, " + ", ".join(arms))
    return "(iterated; round r + 1 starts from round r's distilled model): " + "; ".join(parts) + "."


def _top_answers(v: Any, k: int = 4) -> str:
    """``no 59, <none> 1`` from an answer distribution's JSON text; ``—`` for open answers (more
    than ``k`` distinct ones), where the distribution says little."""
    if not isinstance(v, str) or not v.startswith("{"):
        return "—"
    items = list(json.loads(v).items())
    return "—" if len(items) > k else ", ".join(f"{a} {c}" for a, c in items)


def _json_list(v: Any) -> list[Any] | None:
    return json.loads(v) if isinstance(v, str) and v.startswith("[") else None


def _vs(a: list[Any] | None, b: list[Any] | None, idx: list[int] | None) -> str:
    """``wins/losses, p`` of paired ``a`` against ``b`` (on ``idx`` only, when given)."""
    if a is None or b is None or len(a) != len(b):
        return "—"
    t = compare_paired(a, b, idx)
    return f"{t['wins']}/{t['losses']}, p = {t['mcnemar_p']:.2g}"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _pct_ci(acc: Any, n: Any) -> str:
    if _missing(acc) or _missing(n) or not n:
        return "—"
    lo, hi = wilson_ci(round(acc * n), int(n))
    return f"{100 * acc:.1f} [{100 * lo:.0f}, {100 * hi:.0f}]"


def _cell_label(r: pd.Series) -> str:
    demos = r.get("demos.file")
    return f"{r['method']}" + (f" + demos ({Path(demos).stem})" if isinstance(demos, str) and demos else "")


def _cell_note(label: str, r: pd.Series) -> str:
    parts = [f"kept {int(r['n_kept'])}/{int(r['n_train'])} training inputs ({r['filter']} "
             f"{r.get('filter_threshold')}, n={int(r['n_samples'])})"]
    prec = r.get("kept_precision")
    if not _missing(prec):
        lo, hi = json.loads(r["kept_precision_ci"]) if isinstance(r.get("kept_precision_ci"), str) else (0, 0)
        parts.append(f"precision of kept answers {100 * prec:.1f}% [{100 * lo:.0f}, {100 * hi:.0f}] (gold, after the fact)")
    s2 = "paired.system2_vs_system1.suggest_incorrect"
    if r["method"] != "system1" and not _missing(r.get(f"{s2}.mcnemar_p")):
        parts.append(f"System 2 vs System 1 on suggest_incorrect prompts: {int(r[f'{s2}.wins'])} better, "
                     f"{int(r[f'{s2}.losses'])} worse, exact McNemar p = {r[f'{s2}.mcnemar_p']:.2g}")
    key = "paired.distilled_vs_system1.biased"
    if not _missing(r.get(f"{key}.mcnemar_p")):
        parts.append(f"Distilled vs System 1 on biased prompts: {int(r[f'{key}.wins'])} better, "
                     f"{int(r[f'{key}.losses'])} worse, exact McNemar p = {r[f'{key}.mcnemar_p']:.3g}")
    fmt, op = r.get("system2_rewrite_format_rate"), r.get("system2_rewrite_opinion_rate")
    if not _missing(fmt):
        g_fmt, g_op = r.get("generate_step_metrics.rewrite_format_rate"), r.get("generate_step_metrics.rewrite_opinion_rate")
        parts.append(f"rewrites following the format {100 * fmt:.0f}% (test) / {100 * g_fmt:.0f}% (train samples), "
                     f"still naming the opinion's answer {100 * op:.0f}% / {100 * g_op:.0f}%")
    return f"**{label}**: " + "; ".join(parts) + "."


def bench_markdown(data: dict[str, Any]) -> str:
    """The figure table of ``bench/results.json``: each figure's value, its target and whether it
    is met, its meaning, and the script and date that measured it (the file carries the targets
    and meanings as ``targets`` and each figure's measuring script as ``recorded_by``)."""
    # [[figure, target, "higher"/"lower", meaning], ...]: a list keeps the scripts' order, which
    # results.json's sorted keys would lose
    targets = {row[0]: tuple(row[1:]) for row in data.get("targets", [])}
    recorded_by = data.get("recorded_by", {})
    details = data.get("details", {})
    figures = [k for k in data if k not in ("details", "targets", "recorded_by")]
    order = [*(k for k in targets if k in figures), *sorted(k for k in figures if k not in targets)]
    lines = ["| figure | value | target | meaning | measured by |", "|---|---|---|---|---|"]
    for key in order:
        v = data[key]
        target, better, meaning = targets.get(key, (None, "", ""))
        shown = f"{v:.3g}" if isinstance(v, float) else str(v)
        verdict = ""
        if target is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
            ok = v >= target if better == "higher" else v <= target
            verdict = f"{'met' if ok else 'NOT met'} ({'>=' if better == 'higher' else '<='} {target:g})"
        script = recorded_by.get(key)
        when = details.get(script, {}).get("measured", "")[:10] if script else ""
        by = f"`{script}.py`, {when}" if script else ""
        lines.append(f"| `{key}` | {shown} | {verdict} | {meaning} | {by} |")
    return "\n".join(lines)


REPO = Path(__file__).resolve().parents[1]
#: a generated README table: the opening marker names its source (and optionally its kind), the
#: closing one ends it
BLOCK = re.compile(r"(?P<open><!-- report: (?P<src>\S+)(?: kind=(?P<kind>\w+))?[^\n]*-->\n)(?P<body>.*?)"
                   r"(?P<close><!-- /report -->)", re.S)
KINDS = {None: markdown, "bias": bias_markdown, "variants": variants_markdown}
#: kinds whose source is one JSON file rendered as it is, not a folder of runs
FILE_KINDS = {"bench": bench_markdown}


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
        if m["kind"] in FILE_KINDS:
            path = root / m["src"]
            if not path.is_file():
                raise UserError(f"README marker {m['open'].strip()!r}: no file {path}")
            body = FILE_KINDS[m["kind"]](json.loads(path.read_text(encoding="utf-8")))
        elif m["kind"] in KINDS:
            body = KINDS[m["kind"]](collect_source(m["src"], root))
        else:
            raise UserError(f"README marker {m['open'].strip()!r}: unknown kind {m['kind']!r}")
        return f"{m['open']}\n{body}\n\n{m['close']}"

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
