"""Training as a launched stage: ``accelerate launch`` of ``s2distill.train`` on N processes.

The pipeline writes the SFT dataset as an artifact and runs, in a child process group::

    accelerate launch --config_file <conf/accelerate/X.yaml> --num_processes N \\
        --mixed_precision bf16 -m s2distill.train --data ... --model ... --config ... --out ... --work ...

Several nodes (SLURM): the job's one task runs the pipeline on the first node and starts the
training processes on every node of its allocation with ``srun``, one ``accelerate launch`` per
node (``--machine_rank $SLURM_NODEID``, the first node as rendezvous host).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from s2distill.errors import UserError

log = logging.getLogger(__name__)

ACCELERATE_DIR = Path(__file__).resolve().parents[1] / "conf" / "accelerate"
#: where ``--main_process_port`` comes from on several nodes
DEFAULT_PORT = 29500


def on_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def find_accelerate_config(name: str) -> Path | None:
    """A name in conf/accelerate/ (with or without .yaml) or a path, as a file; None if neither."""
    path = ACCELERATE_DIR / f"{name.removesuffix('.yaml')}.yaml"
    if not path.is_file():
        path = Path(name).expanduser()
    return path if path.is_file() else None


def accelerate_config(name: str | None) -> Path:
    """``train.accelerate_config``: ``auto`` (cpu_ddp here, multi_gpu with CUDA), a file name in
    conf/accelerate/, or a path to an accelerate YAML (``validate.py`` checked that it parses)."""
    if not name or name == "auto":
        name = "multi_gpu" if on_gpu() else "cpu_ddp"
    path = find_accelerate_config(name)
    if path is None:
        raise UserError(f"train.accelerate_config: {name} not found")
    return path


def mixed_precision(sft: dict[str, Any]) -> str:
    """The launcher's ``--mixed_precision``, resolved as ``train.train`` resolves ``sft.bf16``
    (accelerate's setting would otherwise override a Trainer that asked for none)."""
    bf16, fp16 = sft.get("bf16"), sft.get("fp16")
    if bf16 is None:
        try:
            import torch

            bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        except ImportError:  # pragma: no cover
            bf16 = False
    return "bf16" if bf16 else ("fp16" if fp16 else "no")


def command(entry_args: list[str], cfg: dict[str, Any]) -> list[str]:
    """The command line that trains with ``cfg`` (the composed ``train`` config)."""
    n, machines = int(cfg.get("num_processes", 1)), int(cfg.get("num_machines", 1))
    launch = [sys.executable, "-m", "accelerate.commands.launch",
              "--config_file", str(accelerate_config(cfg.get("accelerate_config"))),
              "--num_processes", str(n * machines),
              "--mixed_precision", mixed_precision(dict(cfg.get("sft") or {}))]
    if machines > 1:
        port = int(cfg.get("main_process_port") or DEFAULT_PORT)
        launch += ["--num_machines", str(machines), "--machine_rank", "$SLURM_NODEID",
                   "--main_process_ip", "$S2D_MAIN_HOST", "--main_process_port", str(port)]
    else:
        launch += ["--num_machines", "1", "--main_process_port", str(_free_port())]
    launch += ["-m", "s2distill.train", *entry_args]
    if machines == 1:
        return launch
    script = ('export S2D_MAIN_HOST=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1); '
              + " ".join(a if a.startswith("$") else shlex.quote(a) for a in launch))
    # --overlap: the job's own step (this pipeline) keeps running beside the training step
    return ["srun", "--overlap", f"--nodes={machines}", f"--ntasks={machines}", "--ntasks-per-node=1", "bash", "-c", script]


def run(cmd: list[str], log_file: Path) -> None:
    """Run the training command; its output goes to the console and to ``log_file``."""
    log.info("training: %s", " ".join(cmd))
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(log_file, "w") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            out.write(line)
            sys.stderr.write(line)
            tail = (tail + [line])[-30:]
        if proc.wait() != 0:
            raise RuntimeError(f"training processes failed (exit {proc.returncode}); log: {log_file}\n"
                               + "".join(tail))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
