"""Sweeps: experiment bundles and launchers compose; a failing job fails alone; reruns compute nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
TINY = ["task=coin_flip", "method=system1", "task.n_train=8", "generate.n=2", "train.sft.num_train_epochs=1",
        "engine.use_tqdm=false"]


def cfg_of(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=["hydra.job.name=test", *overrides], return_hydra_config=True)


def sweep_jobs(cfg: DictConfig) -> list[list[str]]:
    """The job overrides Hydra's basic sweeper makes of ``hydra.sweeper.params``."""
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
    return [list(job) for job in batch]


def _results(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/results.json")}


def _submitit_intervals(sweep: Path) -> list[tuple[datetime, datetime]]:
    """(start, end) of every submitit job, from the times submitit logs in each job's log files."""
    stamp = re.compile(r"submitit INFO \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\) - (Starting with|Job completed)")
    out = []
    for job in sorted(p for p in (sweep / ".submitit").iterdir() if p.is_dir() and p.name.isdigit()):
        text = "".join(f.read_text() for f in job.glob("*_log.*"))
        times = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f") for m in stamp.finditer(text)]
        out.append((min(times), max(times)))
    return sorted(out)


# -- composition (fast) ------------------------------------------------------------------------------
def test_cpu_smoke_grid_is_six_small_cells() -> None:
    jobs = sweep_jobs(cfg_of("+experiment=cpu_smoke"))
    assert len(jobs) == 6
    cells = set()
    for job in jobs:
        cfg = cfg_of("+experiment=cpu_smoke", *job)
        cells.add((cfg.task.name, cfg.method.name))
        assert (cfg.task.n_train, cfg.task.n_test, cfg.generate.n) == (64, 60, 4)
        assert cfg.model.name_or_path == "bundled:SmolLM2-135M-Instruct" and cfg.engine.name == "vllm"
        assert cfg.hydra.runtime.choices["hydra/launcher"] == "basic"
    assert cells == {(t, m) for t in ("coin_flip", "last_letter") for m in ("system1", "rar", "cot")}


def test_paper_grid_cells_compose_at_paper_scale() -> None:
    grid = cfg_of("+experiment=paper_grid")
    jobs = sweep_jobs(grid)
    cell_files = sorted(p.stem for p in (REPO / "conf" / "experiment" / "paper").glob("*.yaml"))
    assert sorted(job[0].split("=")[1] for job in jobs) == cell_files  # every cell file is in the grid
    for job in jobs:
        cfg = cfg_of("+experiment=paper_grid", *job)
        name = job[0].split("=")[1]
        assert name == f"{cfg.task.name}_{cfg.method.name}"
        assert cfg.model.name_or_path == "meta-llama/Llama-2-70b-chat-hf"
        assert cfg.engine.tensor_parallel_size == 8 and cfg.engine.max_model_len == 4096
        assert cfg.task.n_train >= 1000 and cfg.generate.n == 8
        # the cell's own choices win over the grid's defaults (e.g. the swap filter keeps its threshold)
        assert cfg.filter.threshold == {"majority": 0.75, "usc": 0.0, "swap": 0.5}[cfg.filter.name]
        assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
        assert cfg.hydra.launcher.gpus_per_node == 8  # one job asks for the engine's tensor-parallel GPUs


def test_slurm_launcher_instantiates_with_config_values() -> None:
    cfg = cfg_of("+experiment=paper_grid", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=600")
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    assert (launcher.params["partition"], launcher.params["gpus_per_node"], launcher.params["timeout_min"]) == ("gpu", 8, 600)
    small = cfg_of("hydra/launcher=slurm", "engine.tensor_parallel_size=2")
    assert small.hydra.launcher.gpus_per_node == 2


def test_local_launcher_queues_jobs_on_a_lock() -> None:
    cfg = cfg_of("+experiment=cpu_smoke", "hydra/launcher=local", "hydra.sweep.dir=/tmp/sweep")
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "LocalLauncher"
    assert launcher.params["setup"][-2:] == ['exec 9>"/tmp/sweep/.submitit/queue.lock"', "flock 9"]
    assert launcher.params["submitit_folder"] == "/tmp/sweep/.submitit/%j"


def test_accelerate_configs_parse() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    ddp = load_config_from_file(str(REPO / "conf" / "accelerate" / "multi_gpu.yaml"))
    fsdp = load_config_from_file(str(REPO / "conf" / "accelerate" / "fsdp.yaml"))
    assert (ddp.distributed_type, ddp.num_processes) == ("MULTI_GPU", 8)
    assert fsdp.distributed_type == "FSDP" and fsdp.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"


# -- multirun, jobs failing before any engine starts (fast) -------------------------------------------
def _failing_sweep(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Two jobs that both fail in config validation (no engine starts)."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "s2distill", "-m", "task.n_test=0,-1", *extra, f"paths.cache_dir={tmp_path / 'cache'}",
         f"paths.output_dir={tmp_path / 'out'}", f"hydra.sweep.dir={sweep}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    return proc, sweep


def test_multirun_user_errors_fail_each_job_with_one_line(tmp_path: Path) -> None:
    proc, sweep = _failing_sweep(tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert re.search(r"^s2distill: error: task.n_train and task.n_test must be >= 1 \(got \d+, 0\)$", proc.stderr, re.M)
    logs = sorted(sweep.glob("*/__main__.log"))
    assert len(logs) == 2 and all("job failed" in p.read_text() for p in logs)  # job 1 ran after job 0 failed


def test_local_launcher_runs_jobs_in_own_processes_in_turn(tmp_path: Path) -> None:
    proc, sweep = _failing_sweep(tmp_path, "hydra/launcher=local")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "s2distill: error: task.n_train and task.n_test must be >= 1" in proc.stderr
    jobs = _submitit_intervals(sweep)
    assert len(jobs) == 2 and jobs[0][1] <= jobs[1][0], jobs  # own processes, the second after the first
    assert all("job failed" in p.read_text() for p in sweep.glob("*/__main__.log"))


# -- real sweeps (slow) ------------------------------------------------------------------------------
@pytest.mark.slow
def test_sweep_survives_failing_job_and_rerun_computes_nothing(cli, tmp_path: Path) -> None:
    # job 0 fails on a user error (n_test=0); job 1 must still run and write its results
    first = cli("-m", *TINY, "task.n_test=0,8", f"hydra.sweep.dir={tmp_path / 's1'}")
    assert first.returncode == 1, first.stderr[-3000:]
    assert "s2distill: error: task.n_train and task.n_test must be >= 1" in first.stderr
    res = _results(tmp_path / "s1")
    assert list(res) == ["1_coin_flip_system1"], first.stderr[-3000:]
    assert res["1_coin_flip_system1"]["computed"] and res["1_coin_flip_system1"]["engine_starts"] >= 1
    assert "job failed" in (tmp_path / "s1" / "0_coin_flip_system1" / "__main__.log").read_text()

    # the same sweep again: the finished job comes entirely from the stage cache
    again = cli("-m", *TINY, "task.n_test=0,8", f"hydra.sweep.dir={tmp_path / 's2'}")
    assert again.returncode == 1
    r = _results(tmp_path / "s2")["1_coin_flip_system1"]
    assert r["computed"] == [] and r["engine_starts"] == 0
    assert {k: r[k] for k in ("system1", "system2", "distilled")} == {
        k: res["1_coin_flip_system1"][k] for k in ("system1", "system2", "distilled")}

    # and through the submitit_local launcher: each job in its own process, one at a time
    local = cli("-m", *TINY, "task.n_test=0,8", "hydra/launcher=local", f"hydra.sweep.dir={tmp_path / 's3'}")
    assert local.returncode == 1, local.stderr[-3000:]
    r = _results(tmp_path / "s3")["1_coin_flip_system1"]
    assert r["computed"] == [] and r["engine_starts"] == 0
    jobs = _submitit_intervals(tmp_path / "s3")
    assert len(jobs) == 2 and jobs[0][1] <= jobs[1][0], jobs  # the second started after the first ended


@pytest.mark.slow
def test_jobs_in_one_process_release_engine_and_memory(tmp_path: Path) -> None:
    """What Hydra's basic launcher does: several jobs' run() in ONE process. No engine process may
    outlive its job, no model or engine front end may stay reachable, nothing may pile up job after
    job, and live memory must not grow by an engine's worth."""
    import ctypes
    import gc

    import psutil

    from s2distill.pipeline import run

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}

    def leftovers() -> dict[int, str]:
        procs = [p for p in me.children(recursive=True) if p.pid not in before]
        return {p.pid: f"{p.name()}: {' '.join(p.cmdline())[:120]}" for p in procs
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE}

    def models() -> list:
        """vLLM front ends and models (HF's and vLLM's *ForCausalLM) reachable in this process."""
        gc.collect()
        return [o for o in gc.get_objects()
                if type(o).__name__ in ("LLM", "LLMEngine") or type(o).__name__.endswith("ForCausalLM")]

    earlier = models()  # e.g. the session's shared test engine (held here, so ids stay theirs)

    def models_alive() -> list[str]:
        return [type(o).__name__ for o in models() if not any(o is e for e in earlier)]

    rss, starts, left, alive = [], [], [], []
    for seed in range(3):  # three jobs of one kind (new data each: nothing cached); n=1 keeps every
        # answered input, so every job trains and evaluates a distilled model (2 engine starts)
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[*TINY, "generate.n=1", "task.n_test=8", f"seed={seed}",
                                               f"paths.cache_dir={tmp_path / 'cache'}"])
        result = run(cfg, tmp_path / f"job{seed}")
        starts.append(result["engine_starts"])
        del result
        left.append(leftovers())
        alive.append(models_alive())
        raw = me.memory_info().rss / 2**20
        # glibc keeps freed heap pages (RSS after a training stays ~2 GiB either way); hand them
        # back so what remains is live memory
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        rss.append((round(raw), round(me.memory_info().rss / 2**20)))
    print(f"\nengine starts per job {starts}; RSS after each job (MiB, raw / after gc+malloc_trim) {rss}; "
          f"processes left after each job {left}; models alive after each job {alive}")
    assert starts == [2, 2, 2]
    assert alive == [[], [], []]  # no engine front end, base or trained model outlives its job
    for procs in left:  # an engine core / worker process (when vLLM runs one) is gone after every job
        assert not [d for d in procs.values() if "VLLM" in d or "EngineCore" in d], procs
    # at most one-time helpers (e.g. multiprocessing's resource tracker), the same ones each time
    assert set(left[2]) <= set(left[0]), left
    # live memory may creep (measured ~0.15 GiB per job, mostly tokenizers) but not by an engine's
    # KV cache (2 GiB here) or a model
    assert rss[2][1] - rss[1][1] < 500, rss
