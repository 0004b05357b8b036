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
    lines = [f"{r['task']} x {r['method']} ({r['model']}): kept {r['n_kept']}/{r['n_train']}, "
             f"majority baseline {r['majority_baseline']:.2f}"]
    for arm in ("system1", "system2", "distilled"):
        m = r.get(arm)
        if m:
            bal = f" bal {m['balanced_acc']:.2f}" if m.get("balanced_acc") is not None else ""
            lines.append(f"  {arm:9s} acc {m['acc']:.3f} [{m['acc_ci_low']:.2f}, {m['acc_ci_high']:.2f}]{bal}"
                         f"  tokens {m['mean_tokens']:.1f}  answers {m['answer_distribution']}")
        else:
            lines.append(f"  {arm:9s} (none: nothing was kept to train on)")
    return "\n".join(lines)


if __name__ == "__main__":
    from s2distill.overrides import check

    if problem := check(sys.argv[1:]):
        print(f"s2distill: error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
