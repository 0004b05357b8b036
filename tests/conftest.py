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


@pytest.fixture(scope="session")
def bundled_model():
    from s2distill.models import resolve

    return resolve("bundled:SmolLM2-135M-Instruct")


@pytest.fixture(scope="session")
def vllm_engine(bundled_model):
    """The one real vLLM engine of the test session (bundled model, eager, tiny context)."""
    from s2distill.engines.vllm import VLLMEngine

    engine = VLLMEngine(bundled_model.path, dtype="bfloat16", max_model_len=1024, seed=0, use_tqdm=False)
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
