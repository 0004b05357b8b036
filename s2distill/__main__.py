"""Hydra entry point: ``python -m s2distill method=rar task=coin_flip`` (``-m`` for sweeps)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig

from s2distill.errors import UserError
from s2distill.logs import route_vllm_logs

log = logging.getLogger("s2distill")


class JobFailed(CompactHydraException):
    """A sweep job stopped by a user error. Hydra marks that job failed, runs the others, and
    prints this one line (not a traceback) when the sweep ends; the exit status is then 1."""


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from s2distill.pipeline import run

    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and int(os.environ.get("SLURM_PROCID", "0")) > 0:
        # a job on several nodes (train.num_machines > 1) runs this function once per node; the
        # first task runs the pipeline and starts the training processes on every node (srun)
        log.info("SLURM task %s: the pipeline runs in task 0", os.environ["SLURM_PROCID"])
        return
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    route_vllm_logs(run_dir)
    try:
        results = run(cfg, run_dir)
    except UserError as e:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # In a sweep, fail this job only: the other jobs still run and keep their results;
            # the job's log (with this line) stays in its directory.
            log.error("job failed: %s", e)
            raise JobFailed(f"s2distill: error: {e}") from None
        # A user's mistake: one line, non-zero exit, and no half-made run directory.
        print(f"s2distill: error: {e}", file=sys.stderr)
        logging.shutdown()
        if not (run_dir / "results.json").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        sys.exit(2)
    print(_summary(results))


def _summary(r: dict) -> str:
    prec = r.get("kept_precision")
    prec = f" (precision of kept answers, from gold after the fact: {prec:.2f})" if prec is not None else ""
    lines = [f"{r['task']} x {r['method']} ({r['model']}): kept {r['n_kept']}/{r['n_train']}{prec}, "
             f"majority baseline {r['majority_baseline']:.2f}"]
    by_bias = next((list(r[a]["acc_by_bias"]) for a in ("system1", "system2", "distilled")
                    if r.get(a) and r[a].get("acc_by_bias")), [])
    head = f"  {'arm':9s} {'acc':>5s} {'95% CI':>12s} {'tokens':>7s}" + "".join(f" {v[:12]:>12s}" for v in by_bias)
    lines.append(head + (f" {'agree_incorrect':>15s}" if by_bias else "") + "  answers")
    for arm in ("system1", "system2", "distilled"):
        m = r.get(arm)
        if not m:
            lines.append(f"  {arm:9s} (none: nothing was kept to train on)")
            continue
        row = f"  {arm:9s} {m['acc']:5.3f} [{m['acc_ci_low']:.2f}, {m['acc_ci_high']:.2f}] {m['mean_tokens']:7.1f}"
        row += "".join(f" {m['acc_by_bias'].get(v, float('nan')):12.3f}" for v in by_bias)
        if by_bias:
            row += f" {m.get('agree_incorrect_rate') or 0:15.3f}"
        bal = f" bal {m['balanced_acc']:.2f}" if m.get("balanced_acc") is not None else ""
        lines.append(row + bal + f"  {dict(list(m['answer_distribution'].items())[:4])}")
    tests = (r.get("paired") or {}).get("distilled_vs_system1")
    if tests:
        lines.append("  distilled vs system1, exact McNemar: " + ", ".join(
            f"{g} p={t['mcnemar_p']:.3g} (+{t['wins']}/-{t['losses']})" for g, t in tests.items()))
    sm = (r.get("system2") or {})
    if sm.get("rewrite_format_rate") is not None:
        op = sm.get("rewrite_opinion_rate")
        lines.append(f"  system2 rewrites: format followed {sm['rewrite_format_rate']:.2f}, "
                     f"opinion kept {'n/a' if op is None else f'{op:.2f}'}")
    return "\n".join(lines)


if __name__ == "__main__":
    from s2distill.overrides import check

    if problem := check(sys.argv[1:]):
        print(f"s2distill: error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
