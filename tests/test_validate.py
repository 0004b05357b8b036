"""Issue 14: every bad option is rejected in one line by ``pipeline.build()`` before any model loads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from s2distill import pipeline, validate
from s2distill.errors import UserError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def compose(compose, tmp_path):
    """conftest's compose with ``paths.home`` (where passed checks are stamped) under ``tmp_path``."""
    return lambda *o: compose(f"paths.home={tmp_path / 'home'}", *o)


@pytest.fixture
def no_model(monkeypatch):
    """build() must fail before it resolves (converts or loads) the model."""
    def resolve(*a, **kw):
        raise AssertionError("the model was resolved before the bad option was rejected")

    monkeypatch.setattr(pipeline, "resolve", resolve)


def repo_entries() -> set[str]:
    return {p.name for p in REPO.iterdir()}


# the table, then one row per family of library and own options
TABLE = [
    ("train.sft.learning_rate=abc", r"train\.sft\.learning_rate: Input should be a valid number \(got 'abc'\)"),
    ("+train.sft.learnin_rate=1e-5", r"train\.sft\.learnin_rate: unknown SFTConfig field; did you mean learning_rate\?"),
    ("+engine.extra.max_num_seqz=4", r"engine\.extra\.max_num_seqz: unknown vllm EngineArgs field; did you mean max_num_seqs\?"),
    ("generate.temperature=-1", r"generate\.temperature: temperature must be non-negative, got -1\.0\."),
    ("eval.top_p=2", r"eval\.top_p: top_p must be in \(0, 1\], got 2\.0\."),
]
FAMILIES = [
    # trl.SFTConfig: its enums, its own cross-field checks, keys s2distill sets itself
    ("train.sft.lr_scheduler_type=cosin", r"train\.sft\.lr_scheduler_type: cosin is not a valid SchedulerType.*; did you mean cosine\?"),
    ("train.sft.logging_steps=5.5", r"train\.sft\.logging_steps: --logging_steps must be an integer"),
    ("train.sft.report_to=wandbb", r"train\.sft\.report_to: wandbb is not supported, .*; did you mean wandb\?"),
    ("train.sft.learning_rate='1e-5'", r"train\.sft\.learning_rate: Input should be a valid number"),
    ("+train.sft.output_dir=/tmp/x", r"train\.sft\.output_dir: set by s2distill itself"),
    ("train.dtype=float64", r"train\.dtype: unknown dtype 'float64'"),
    ("train.save_dtype=auto", r"train\.save_dtype: unknown dtype 'auto'"),
    ("+train.dtyp=float32", r"train\.dtyp: unknown train option; did you mean dtype\?"),
    # peft.LoraConfig
    ("train=lora train.lora.r=abc", r"train\.lora\.r: Input should be a valid integer"),
    ("train=lora +train.lora.lora_alpah=8", r"train\.lora\.lora_alpah: unknown LoraConfig field; did you mean lora_alpha\?"),
    ("train=lora +train.lora.use_dora=maybe", r"train\.lora\.use_dora: Input should be a valid boolean"),
    # vllm.SamplingParams in every sampling block (extra fields too) and the filter's own call
    ("+generate.extra.min_tokens=500", r"generate\.extra\.min_tokens: min_tokens must be less than or equal to max_tokens"),
    ("+eval.extra.top_kk=5", r"eval\.extra\.top_kk: unknown SamplingParams field; did you mean top_k\?"),
    ("+generate.temprature=0.5", r"generate\.temprature: unknown option; did you mean temperature\?"),
    ("generate.top_p=abc", r"generate\.top_p: Expected `float`, got `str` \(got 'abc'\)"),
    ("eval.k=2 eval.temperature=nan", r"eval\.temperature: temperature must be a finite number"),
    ("generate.n=0", r"generate\.n must be >= 1 \(got 0\)"),
    ("method.max_tokens.respond=abc", r"method\.max_tokens\.respond: Input should be a valid integer"),
    ("filter=usc filter.max_tokens=abc", r"filter\.max_tokens: Input should be a valid integer"),
    # vllm.EngineArgs: names, declared types, vLLM config constraints; the engine's own options
    ("engine.max_model_len=abc", r"engine\.max_model_len: Input should be a valid integer"),
    ("engine.gpu_memory_utilization=1.5", r"engine\.gpu_memory_utilization: Input should be less than or equal to 1"),
    ("engine.tensor_parallel_size=0", r"engine\.tensor_parallel_size: Input should be greater than or equal to 1"),
    ("engine.dtype=bfloat17", r"engine\.dtype: Input should be 'auto', .*'bfloat16'"),
    ("+engine.extra.enforce_eager=maybe", r"engine\.extra\.enforce_eager: Input should be a valid boolean"),
    ("+engine.max_num_seqs=4", r"engine\.max_num_seqs: unknown vllm engine option"),
    ("engine.cpu_threads_bind=3", r"engine\.cpu_threads_bind: Input should be a valid string"),
    ("engine.compile=maybe", r"engine\.compile must be true, false or auto"),
    ("engine=hf engine.dtype=float64x", r"engine\.dtype: 'float64x' is not a torch dtype"),
    ("engine=hf engine.batch_size=0", r"engine\.batch_size must be >= 1"),
    ("engine=hf +engine.batch_sise=4", r"engine\.batch_sise: unknown hf engine option; did you mean batch_size\?"),
    # s2distill's own options: the signatures of the classes they go to
    ("task.n_train=abc", r"task\.n_train: Input should be a valid integer \(got 'abc'\)"),
    ("+task.n_tset=5", r"task\.n_tset: unknown task coin_flip option; did you mean n_test\?"),
    ("filter.threshold=high", r"filter\.threshold: Input should be a valid number"),
    ("seed=abc", r"seed: Input should be a valid integer"),
    # accelerate config (train.accelerate_config / train.num_processes, when the config has them)
    ("train.accelerate_config=fsdpp", r"train\.accelerate_config: no accelerate config 'fsdpp' .*; did you mean fsdp\?"),
    ("train.num_processes=0", r"train\.num_processes must be an integer >= 1"),
]


@pytest.mark.parametrize("overrides, line", TABLE + FAMILIES, ids=[o for o, _ in TABLE + FAMILIES])
def test_bad_option_is_one_line_before_any_model_loads(compose, no_model, tmp_path, overrides, line):
    before = repo_entries()
    with pytest.raises(UserError) as err:
        pipeline.build(compose(*overrides.split()), tmp_path / "run")
    assert re.match(line, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)
    assert not [p for p in tmp_path.rglob("*")]  # nothing written: no run dir, cache or stamp
    assert repo_entries() == before  # e.g. no trainer_output/ from constructing SFTConfig


def test_accelerate_config_that_does_not_parse(compose, no_model, tmp_path):
    bad = tmp_path / "acc.yaml"
    bad.write_text("compute_environment: LOCAL_MACHINE\nnum_processes: 2\nno_such_key: 1\n")
    with pytest.raises(UserError, match=r"^train\.accelerate_config: .*acc\.yaml is not a valid accelerate config"):
        pipeline.build(compose(f"train.accelerate_config={bad}"), None)


@pytest.mark.parametrize("overrides", [
    "", "train=lora filter=usc", "engine=hf", "task=llm_judge method=bsm filter=swap", "task=biased_qa method=s2a",
    "task=gsm8k method=cot", "+experiment=cpu_smoke", "train.accelerate_config=fsdp train.num_processes=8",
    "train.accelerate_config=multi_gpu", "train.accelerate_config=auto train.num_processes=1",
    f"train.accelerate_config={REPO / 'conf' / 'accelerate' / 'fsdp.yaml'}",
    "+generate.extra.top_k=50 +engine.extra.max_num_seqs=8 +train.sft.pad_token=pad",
])
def test_valid_configs_pass(compose, tmp_path, overrides):
    before = repo_entries()
    validate.check_config(compose(*overrides.split()))
    assert repo_entries() == before


def test_a_passed_config_is_not_checked_again(compose, monkeypatch):
    cfg = compose("train.sft.learning_rate=3e-5")
    validate.check_config(cfg)
    monkeypatch.setattr(validate, "_check_train", lambda *a: pytest.fail("checked again"))
    validate.check_config(cfg)  # the stamp in paths.home/validated answers
    with pytest.raises(pytest.fail.Exception):
        validate.check_config(compose("train.sft.learning_rate=4e-5"))  # another config is checked


# -- the CLI and sweeps (subprocesses; each imports vLLM and TRL once) ------------------------------
def test_cli_exits_2_with_one_line_and_no_run_dir(cli, tmp_path):
    proc = cli("method=system1", "task=coin_flip", "+train.sft.learnin_rate=1e-5", timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "s2distill: error: train.sft.learnin_rate: unknown SFTConfig field; did you mean learning_rate?")
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "out").rglob("*.log"))  # no run directory left behind
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_dir() and p.name[0].isdigit()]


def test_sweep_job_with_bad_option_fails_alone_before_its_engine(tmp_path):
    """Job 0 has a bad temperature; job 1 passes validation and goes on (to a malformed data file,
    so neither job needs an engine): job 0 failing did not stop the sweep."""
    data = tmp_path / "bad.json"
    data.write_text("[not json")
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "s2distill", "-m", "generate.temperature=-1,0.5", "method=system1",
         f"task.data_file={data}", f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={tmp_path / 'out'}",
         f"hydra.sweep.dir={sweep}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    logs = {p.parent.name[0]: p.read_text() for p in sweep.glob("*/__main__.log")}
    assert sorted(logs) == ["0", "1"]
    assert "job failed: generate.temperature: temperature must be non-negative" in logs["0"]
    assert "job failed: malformed JSON" in logs["1"]  # past build(): job 1 ran on after job 0 failed
    assert not any("starting vllm engine" in text for text in logs.values())
