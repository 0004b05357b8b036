"""``engine.compile: auto`` picks eager for small jobs, and the compile-cache load fix."""

from __future__ import annotations

import pytest

from s2distill import pipeline
from s2distill.engines.vllm import (
    COMPILE_COSTS,
    compile_cache_warm,
    compile_saving_s,
    compile_start_cost_s,
    mark_compile_cache_warm,
    resolve_compile,
    use_compile,
)
from s2distill.errors import UserError

# tokens at which compiling breaks even with bench/RESULTS.md's costs: the start it adds (7.5 s
# warm, 92 s cold) over the (1 - 1/1.03) / 232 s it saves per token (1.26e-4 s)
WARM_EVEN = 7.5 / (1 / 232 - 1 / (232 * 1.03))
COLD_EVEN = 92.0 / (1 / 232 - 1 / (232 * 1.03))


def test_break_even_follows_the_measured_costs():
    assert 59_000 < WARM_EVEN < 60_500 and 730_000 < COLD_EVEN < 735_000
    assert compile_start_cost_s(True, COMPILE_COSTS) == pytest.approx(7.5)
    assert compile_start_cost_s(False, COMPILE_COSTS) == pytest.approx(92.0)
    assert compile_saving_s(int(WARM_EVEN), COMPILE_COSTS) == pytest.approx(7.5, abs=1e-3)


@pytest.mark.parametrize(
    "setting, expected, warm, want",
    [(True, None, False, True), (False, 10**9, True, False), ("true", None, False, True),
     ("False", None, True, False), ("auto", None, True, False),
     ("auto", int(WARM_EVEN) - 100, True, False), ("auto", int(WARM_EVEN) + 100, True, True),
     ("auto", int(WARM_EVEN) + 100, False, False),  # the same job with a cold cache: not worth it
     ("auto", int(COLD_EVEN) - 100, False, False), ("auto", int(COLD_EVEN) + 100, False, True)],
)
def test_use_compile(setting, expected, warm, want):
    assert use_compile(setting, expected, warm) is want


def test_costs_can_be_overridden():
    gpu = {"eager_tokens_per_s": 5000, "speedup": 1.5, "eager_start_s": 30, "compiled_start_cold_s": 90}
    assert use_compile("auto", 10**6, False, gpu)  # 66.7 s saved > 60 s cold cost
    assert not use_compile("auto", 8 * 10**5, False, gpu)  # 53 s saved


def test_bad_compile_setting_is_a_user_error():
    with pytest.raises(UserError, match="engine.compile must be true, false or auto"):
        use_compile("sometimes", 10)


def test_warm_ledger(tmp_path):
    d = tmp_path / "torch_compile_cache"
    assert not compile_cache_warm("m|bf16|1024", d)
    mark_compile_cache_warm("m|bf16|1024", d)
    assert not compile_cache_warm("m|bf16|1024", d)  # a ledger without vLLM's artifacts: cleared cache
    (d / "abc123").mkdir()
    assert compile_cache_warm("m|bf16|1024", d) and not compile_cache_warm("other|bf16|1024", d)


def test_resolve_compile_reads_the_ledger(monkeypatch, tmp_path):
    import s2distill.engines.vllm as mod

    monkeypatch.setattr(mod, "compile_cache_dir", lambda: tmp_path)
    job = int(WARM_EVEN) + 1000
    assert resolve_compile("m", "auto", job, "bfloat16", 1024) == (False, False)
    mark_compile_cache_warm(mod.compile_key("m", "bfloat16", 1024))
    (tmp_path / "abc").mkdir()
    assert resolve_compile("m", "auto", job, "bfloat16", 1024) == (True, True)
    assert resolve_compile("m", "auto", job, "bfloat16", 2048) == (False, False)  # another config: cold
    assert resolve_compile("m", False, job, "bfloat16", 1024) == (False, False)


def test_default_cell_compiles_only_with_a_warm_cache_small_runs_stay_eager(compose):
    default = pipeline.build(compose(), None)
    big = default.engines.cfg["expected_tokens"]
    # conf defaults: 96 inputs x 4 samples x (96 + 160) tokens, plus both evaluation arms: 16 s
    # saved, worth a warm compiled start (+7.5 s), not a cold one (+92 s)
    assert big == 96 * 4 * 256 + 100 * 32 + 100 * 256
    assert use_compile("auto", big, warm=True) and not use_compile("auto", big, warm=False)
    distilled = pipeline.expected_tokens(default.cfg, default.task, default.method, ("distilled",))
    assert distilled == 100 * 32 and not use_compile("auto", distilled, warm=True)
    tiny = pipeline.build(compose("task.n_train=8", "task.n_test=8", "generate.n=2"), None)
    assert not use_compile("auto", tiny.engines.cfg["expected_tokens"], warm=True)


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
