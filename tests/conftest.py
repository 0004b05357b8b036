"""Shared fixtures. Real-engine tests are marked ``slow`` and share ONE vLLM engine per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Converted bundled model: reuse across test sessions (conversion takes ~25 s); stage caches
# always go to a fresh temporary directory per test.
os.environ.setdefault("S2DISTILL_HOME", str(Path.home() / ".cache" / "s2distill"))

# Hypothesis keeps a cache (.hypothesis/) in the working directory even with database=None;
# a test run must not write into the repository.
try:
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "s2distill-hypothesis")
except ImportError:  # hypothesis is a dev extra
    pass


@pytest.fixture(scope="session")
def bundled_model():
    from s2distill.models import resolve

    return resolve("bundled:SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def vllm_engine(bundled_model):
    """The one real vLLM engine of the test session (bundled model, eager, tiny context)."""
    from s2distill.engines.vllm import VLLMEngine

    engine = VLLMEngine(bundled_model.path, dtype="auto", max_model_len=1024, seed=0, use_tqdm=False)
    yield engine
    engine.close()


@pytest.fixture
def cli(tmp_path):
    """Run ``python -m s2distill`` in a subprocess with caches and outputs under ``tmp_path``."""
    import subprocess

    def run(*overrides: str, cache: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "s2distill", *overrides,
               f"paths.cache_dir={cache or tmp_path / 'cache'}", f"paths.output_dir={tmp_path / 'out'}"]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture
def compose(tmp_path):
    """Compose the real Hydra config (conf/) with overrides; caches under ``tmp_path``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    def make(*overrides: str):
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            return hydra_compose("config", overrides=[f"paths.cache_dir={tmp_path / 'cache'}", *overrides])

    return make


def answer_in_text(answer: str, text: str) -> bool:
    """Whether an extracted answer was written in ``text``: its letters and digits appear there in
    one run ("n, y, e, a" → "nyea"), or every one of its words does (answers lose articles and
    apostrophes: "I'll" → "ill")."""
    import re

    squash = lambda t: re.sub(r"[^a-z0-9]", "", t.lower())  # noqa: E731
    words = lambda t: set(re.findall(r"[a-z0-9]+", re.sub(r"['’]", "", t.lower())))  # noqa: E731
    return squash(answer) in squash(text) or words(answer) <= words(text)


class Recording:
    """Wraps an engine and keeps every call's description and completions (what it really produced)."""

    def __init__(self, engine):
        self.engine, self.model = engine, engine.model
        self.calls: list[tuple[str, list]] = []

    def generate(self, chats, n, sampling, desc=""):
        outs = self.engine.generate(chats, n, sampling, desc)
        self.calls.append((desc, outs))
        return outs

    def completions(self, desc: str | None = None) -> list:
        return [c for d, outs in self.calls if desc in (None, d) for cs in outs for c in cs]

    def tokens(self) -> int:
        return sum(c.n_tokens for c in self.completions())


def default_task(name: str):
    """The registered task ``name`` with its defaults; the YAML task type with a shipped file."""
    from s2distill.tasks import TASKS

    if name == "yaml":
        return TASKS.get("yaml")(file=str(REPO / "conf/task/capitals_yn.yaml"))
    return TASKS.get(name)()


class FakeEngine:
    """Deterministic stand-in for pure-logic tests: answers from a hash of the prompt."""

    #: what a FakeEngine answers unless told otherwise (tests may patch it per task)
    default_answers: tuple[str, ...] = ("Answer: yes", "Answer: no")

    def __init__(self, model: str = "fake", answers: tuple[str, ...] | None = None):
        self.model = model
        self.answers = answers or self.default_answers
        self.calls: list[tuple[int, int]] = []
        self.generated = 0  # tokens generated so far (3 per completion)

    def generate(self, chats, n, sampling, desc=""):
        import hashlib

        from s2distill.engines.base import Completion

        self.calls.append((len(chats), n))
        self.generated += 3 * len(chats) * n
        out = []
        for c in chats:
            h = int(hashlib.sha256(c[-1]["content"].encode()).hexdigest(), 16)
            out.append([Completion(self.answers[(h >> j) % len(self.answers)], 3) for j in range(n)])
        return out

    def score(self, sequences, starts, top_k, desc=""):
        """Deterministic top-k per scored position: ids from the position's token, log-probs falling."""
        import math

        from s2distill.engines.base import TopK

        self.calls.append((len(sequences), 0))
        out = []
        for seq, start in zip(sequences, starts):
            ids = [[(seq[p] + j) % 1000 for j in range(top_k)] for p in range(start, len(seq))]
            lps = [[math.log(0.5 ** (j + 1)) for j in range(top_k)] for _ in range(start, len(seq))]
            out.append(TopK(ids, lps))
        return out

    def close(self):
        pass


@pytest.fixture
def fake_engine(monkeypatch):
    """Make every EnginePool start a FakeEngine (pure pipeline logic only)."""
    import s2distill.engines as engines

    made: list[FakeEngine] = []

    def make_engine(model, cfg):
        made.append(FakeEngine(model))
        return made[-1]

    monkeypatch.setattr(engines, "make_engine", make_engine)
    return made


def make_tiny_model(bundled_path: str, out: Path, strip_tokens: tuple[str, ...] = (),
                    drop_chat_template: bool = False) -> Path:
    """A tiny random-init model (2 layers, hidden 128) with the bundled model's config family and
    tokenizer: a second model for tests (a student, a Llama-3-like tokenizer) with nothing
    downloaded. ``strip_tokens`` unsets special tokens (e.g. ``("pad", "unk")``)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    cfg = AutoConfig.from_pretrained(bundled_path)
    cfg.update({"num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 256,
                "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64})
    tok = AutoTokenizer.from_pretrained(bundled_path)
    for name in strip_tokens:
        setattr(tok, f"{name}_token", None)
        setattr(cfg, f"{name}_token_id", None)
    if drop_chat_template:
        tok.chat_template = None
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    if drop_chat_template:
        for f in ("chat_template.jinja", "chat_template.json"):
            (out / f).unlink(missing_ok=True)
    return out


@pytest.fixture(scope="session")
def tiny_model(bundled_model, tmp_path_factory) -> Path:
    return make_tiny_model(bundled_model.path, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def fake_run(compose, fake_engine, monkeypatch, tmp_path):
    """``pipeline.run`` end to end on FakeEngines with a stand-in for TRL training (a model folder
    holding only the training examples): pure pipeline logic, seconds per run.

    ``fake_run(*overrides, run_dir=..., setup=None)`` returns ``results``; ``setup(ctx)`` runs
    right after ``pipeline.build`` (e.g. to corrupt gold columns or watch what stages receive)."""
    import json

    from s2distill import pipeline
    from s2distill import train as sft

    def fake_train(examples, base_model, cfg, out_dir, work_dir=None, teacher=None):
        (Path(out_dir) / "examples.json").write_text(json.dumps(examples, sort_keys=True))
        if teacher is not None:
            (Path(out_dir) / "teacher.json").write_text(json.dumps(teacher, sort_keys=True))
        (Path(out_dir) / "config.json").write_text("{}")
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(base_model).save_pretrained(out_dir)  # as SFTTrainer.save_model does
        info = {"n_examples": len(examples), "world_size": 1}
        (Path(out_dir) / sft.INFO_FILE).write_text(json.dumps(info))
        return info

    monkeypatch.setattr(sft, "train", fake_train)

    def run(*overrides: str, run_dir: Path | None = None, setup=None):
        cfg = compose(*overrides)
        with monkeypatch.context() as m:
            if setup is not None:
                real_build = pipeline.build

                def build(cfg, run_dir):
                    ctx = real_build(cfg, run_dir)
                    setup(ctx)
                    return ctx

                m.setattr(pipeline, "build", build)
            return pipeline.run(cfg, run_dir or tmp_path / "run")

    return run
