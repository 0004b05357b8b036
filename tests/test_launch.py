"""Training as a launched stage: the accelerate command (one node, several via srun), and the
train.* mistakes that must fail before any generation."""

from __future__ import annotations

import pytest

from s2distill import launch, pipeline
from s2distill.errors import UserError
from tests.conftest import REPO, make_tiny_model


def test_one_node_command_launches_the_training_entry_point():
    cmd = launch.command(["--data", "d.jsonl"], {"num_processes": 2, "accelerate_config": "cpu_ddp", "sft": {}})
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("--config_file") + 1] == str(REPO / "conf" / "accelerate" / "cpu_ddp.yaml")
    assert cmd[cmd.index("--mixed_precision") + 1] == "no"  # sft.bf16 null on a CPU
    assert cmd[-4:] == ["-m", "s2distill.train", "--data", "d.jsonl"]


def test_mixed_precision_follows_sft_bf16():
    assert launch.mixed_precision({"bf16": True}) == "bf16"
    assert launch.mixed_precision({"bf16": False, "fp16": True}) == "fp16"
    assert launch.mixed_precision({"bf16": False}) == "no"


def test_several_nodes_start_one_launcher_per_node_with_srun():
    cmd = launch.command(["--out", "o"], {"num_processes": 8, "num_machines": 2,
                                          "accelerate_config": "deepspeed_zero3", "sft": {"bf16": True}})
    assert cmd[:5] == ["srun", "--overlap", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1"]
    script = cmd[-1]
    assert "--num_processes 16" in script and "--num_machines 2" in script  # 8 GPUs x 2 nodes
    assert "--machine_rank $SLURM_NODEID" in script and "--main_process_ip $S2D_MAIN_HOST" in script
    assert script.startswith('export S2D_MAIN_HOST=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1);')
    assert "--mixed_precision bf16" in script and script.endswith("-m s2distill.train --out o")


@pytest.mark.parametrize("override,message", [
    ("train.num_processes=0", "train.num_processes must be an integer >= 1"),
    ("train.num_machines=-1", "train.num_machines must be an integer >= 1"),
    ("train.accelerate_config=no_such_file", "train.accelerate_config: no accelerate config 'no_such_file'"),
    ("train.truncation=left", "train.truncation must be one of prompt, drop"),
])
def test_bad_training_options_fail_at_build(compose, override, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        pipeline.build(compose(override), None)


def test_lora_adapter_with_an_engine_that_cannot_serve_it_fails_at_build(compose):
    with pytest.raises(UserError, match="engine=hf cannot serve"):
        pipeline.build(compose("train=lora", "engine=hf"), None)
    assert pipeline.build(compose("train=lora", "engine=hf", "train.merge=true"), None).adapter is False
    assert pipeline.build(compose("train=lora"), None).adapter is True


def test_model_without_chat_template_fails_at_build(compose, bundled_model, tmp_path):
    folder = make_tiny_model(bundled_model.path, tmp_path / "plain", drop_chat_template=True)
    with pytest.raises(UserError, match="has no chat template"):
        pipeline.build(compose(f"model.name_or_path={folder}"), None)


def test_other_slurm_tasks_of_a_multi_node_job_leave_the_pipeline_to_task_0(tmp_path):
    """On several nodes submitit runs the job once per node: only task 0 runs the pipeline."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SUBMITIT_EXECUTOR": "slurm", "SLURM_PROCID": "1"}
    run = subprocess.run([sys.executable, "-m", "s2distill", "task.n_train=2", f"paths.cache_dir={tmp_path / 'c'}",
                          f"paths.output_dir={tmp_path / 'out'}"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not list((tmp_path / "out").rglob("results.json")) and not (tmp_path / "c").exists()
