"""Where does the teacher put its mass on the first answer token? (issue 11)

For a ``train=kd`` run, every kept training input has the answer the filter kept (the SFT target)
and the teacher's top-k log-probabilities at each completion token (``artifacts/teacher.jsonl``).
Gold, read here only to analyse and never trained on, says whether the kept answer is right. At
the first completion token this script reports, over kept inputs whose kept answer is wrong and
over those whose kept answer is right: the teacher's mean probability of the kept answer's first
token and of the gold answer's first token (case and spaces ignored: "No", "no" and " no" all
count; 0 when outside the top-k), and how often gold's first token gets more mass than the kept
one's. Comparing a ``train.kd.context=system2`` run with
a ``context=none`` run on the same kept set shows whether the System-2 context moves the
teacher's mass towards the right answer where its sampled answer was wrong. The first-token
figures are for labelled tasks (one-token answers such as yes/no); for every task it also reports
the teacher's mean probability of the kept completion's tokens (0 outside its top-k).

    python experiments/teacher_mass.py outputs/regenerate/kd__pc_ctx outputs/regenerate/kd__pc_fkl
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from transformers import AutoTokenizer

from s2distill.models import resolve
from s2distill.tasks import TASKS
from s2distill.teacher import completion_ids


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def first_piece(tok: Any, text: str) -> str:
    """The answer's first token as text, case and surrounding spaces ignored: the teacher's mass
    on "No", "no" and " no" all counts for the answer "no" (the task's extraction reads them alike)."""
    return tok.decode(tok(text, add_special_tokens=False)["input_ids"][:1]).strip().lower()


def mass(tok: Any, ids: list[int], logprobs: list[float], piece: str) -> float:
    """The teacher's probability (within its top-k) of tokens that read as ``piece``."""
    return sum(math.exp(lp) for i, lp in zip(ids, logprobs) if tok.decode([i]).strip().lower() == piece)


def analyse(run: Path) -> dict[str, Any]:
    res = json.loads((run / "results.json").read_text())
    cfg = OmegaConf.create(res["config"])
    task_opts = OmegaConf.to_container(cfg.task, resolve=True)
    task = TASKS.get(task_opts.pop("name"))(**task_opts)
    gold = {r["id"]: r for r in task.load()["train"].to_list()}
    tok = AutoTokenizer.from_pretrained(resolve(cfg.model.name_or_path, cfg.paths.models_dir).path)
    examples, teacher = jsonl(run / "artifacts/sft_data.jsonl"), jsonl(run / "artifacts/teacher.jsonl")
    if len(examples) != len(teacher):
        raise SystemExit(f"{run}: {len(examples)} SFT examples but {len(teacher)} teacher rows")
    groups: dict[str, list[tuple[float, float, float]]] = {"kept answer wrong": [], "kept answer right": []}
    for ex, t in zip(examples, teacher):
        row, kept = gold[ex["id"]], ex["completion"][-1]["content"]
        ids, lps = t["teacher_ids"][0], t["teacher_logprobs"][0]
        # the teacher's probability of each token of the kept completion (0 outside its top-k)
        target = completion_ids(tok, ex)
        per_token = [dict(zip(i, lp)).get(tid) for tid, i, lp in zip(target, t["teacher_ids"], t["teacher_logprobs"])]
        seq = sum(0.0 if lp is None else math.exp(lp) for lp in per_token) / max(1, len(per_token))
        groups["kept answer right" if task.is_correct(kept, row) else "kept answer wrong"].append(
            (mass(tok, ids, lps, first_piece(tok, kept)), mass(tok, ids, lps, first_piece(tok, str(row["gold"]))), seq))
    out = {"run": run.name, "task": task.name, "labelled": bool(task.labels), "context": cfg.train.kd.context,
           "divergence": cfg.train.kd.divergence}
    for name, rows in groups.items():
        n = len(rows)
        out[name] = {"n": n, "p_kept_first_token": sum(r[0] for r in rows) / n if n else None,
                     "p_gold_first_token": sum(r[1] for r in rows) / n if n else None,
                     "gold_above_kept": sum(r[1] > r[0] for r in rows),
                     "p_kept_tokens_mean": sum(r[2] for r in rows) / n if n else None}
    return out


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories of train=kd cells")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    a = ap.parse_args(argv)
    rows = [analyse(r) for r in a.runs]
    print("| run | teacher context | kept inputs | P(kept tokens), mean | P(kept 1st token) | P(gold 1st token) | gold above kept |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        for name in ("kept answer wrong", "kept answer right"):
            g = r[name]
            first = (f"{_fmt(g['p_kept_first_token'])} | {_fmt(g['p_gold_first_token'])} | {g['gold_above_kept']}/{g['n']}"
                     if r["labelled"] else "— | — | —")  # open answers: a first token says little
            print(f"| {r['run']} | {r['context']} | {name}: {g['n']} | {_fmt(g['p_kept_tokens_mean'])} | {first} |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
