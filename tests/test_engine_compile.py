"""``engine.compile: auto`` picks eager for small jobs, and the compile-cache load fix."""

from __future__ import annotations

import pytest

from s2distill import pipeline
from s2distill.engines.vllm import COMPILE_MIN_TOKENS, use_compile
from s2distill.errors import UserError


@pytest.mark.parametrize(
    "setting, expected, want",
    [(True, None, True), (False, 10**9, False), ("true", None, True), ("False", None, False),
     ("auto", None, False), ("auto", COMPILE_MIN_TOKENS - 1, False), ("auto", COMPILE_MIN_TOKENS, True)],
)
def test_use_compile(setting, expected, want):
    assert use_compile(setting, expected) is want


def test_bad_compile_setting_is_a_user_error():
    with pytest.raises(UserError, match="engine.compile must be true, false or auto"):
        use_compile("sometimes", 10)


def test_default_cell_compiles_small_runs_and_distilled_eval_stay_eager(compose):
    default = pipeline.build(compose(), None)
    big = default.engines.cfg["expected_tokens"]
    # conf defaults: 96 inputs x 4 samples x (96 + 160) tokens, plus both evaluation arms
    assert big == 96 * 4 * 256 + 100 * 32 + 100 * 256 and use_compile("auto", big)
    distilled = pipeline.expected_tokens(default.cfg, default.task, default.method, ("distilled",))
    assert distilled == 100 * 32 and not use_compile("auto", distilled)
    tiny = pipeline.build(compose("task.n_train=8", "task.n_test=8", "generate.n=2"), None)
    assert not use_compile("auto", tiny.engines.cfg["expected_tokens"])


def test_aot_load_fix_gives_the_inductor_artifact_a_finalize_loading():
    import s2distill.engines.vllm as mod

    cls = mod.AOTLoadFix  # what vLLM's worker resolves from worker_extension_cls
    from torch._dynamo.aot_compile_types import BundledAOTAutogradSerializableCallable as Artifact

    assert cls.__name__ == "_AOTLoadFix" and callable(Artifact.finalize_loading)
    with pytest.raises(AttributeError):
        mod.NoSuchThing  # noqa: B018 - module __getattr__ answers only its one name


@pytest.mark.slow
def test_session_engine_is_eager(vllm_engine):
    """Tests start engines with no expected size: auto keeps them eager (no ~50 s compile)."""
    assert vllm_engine.compiled is False
