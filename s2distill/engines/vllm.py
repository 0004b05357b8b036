"""vLLM engine: whole stages in one ``LLM.chat`` call, ``SamplingParams(n=k)`` for samples."""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ClassVar

from s2distill.engines import fast_top_p
from s2distill.engines.base import Chat, Completion, Sampling, TopK, derive_seed, resolve_dtype
from s2distill.errors import UserError

log = logging.getLogger(__name__)

#: What ``engine.compile: auto`` weighs (``engine.compile_costs`` overrides them), measured on 2 CPU
#: cores with the bundled model (bench/compile_cache.py, bench/RESULTS.md): eager decoding 232
#: tokens/s, compiled 240 (1.03x) on a 128 x n=8 job; an engine starts in 14 s eager, 21.5 s
#: compiled with a warm compile cache and 106 s with a cold one.
COMPILE_COSTS: dict[str, float] = {
    "eager_tokens_per_s": 232.0,
    "speedup": 1.03,
    "eager_start_s": 14.0,
    "compiled_start_warm_s": 21.5,
    "compiled_start_cold_s": 106.0,
}
#: see ``__getattr__`` below
AOT_LOAD_FIX = f"{__name__}.AOTLoadFix"
#: compiled starts that finished, per ``compile_key``: the compile cache is warm for them
WARM_LEDGER = "s2distill-warm.json"


def compile_saving_s(expected_tokens: int, costs: dict[str, float]) -> float:
    """Decode seconds compiling saves on a job of ``expected_tokens`` generated tokens."""
    return int(expected_tokens) / float(costs["eager_tokens_per_s"]) * (1 - 1 / float(costs["speedup"]))


def compile_start_cost_s(warm: bool, costs: dict[str, float]) -> float:
    """Extra start seconds a compiled engine costs over an eager one (cache warm or cold)."""
    start = costs["compiled_start_warm_s"] if warm else costs["compiled_start_cold_s"]
    return float(start) - float(costs["eager_start_s"])


def use_compile(setting: bool | str, expected_tokens: int | None, warm: bool = False,
                costs: dict[str, float] | None = None) -> bool:
    """Resolve ``engine.compile``: ``true``/``false``, or ``auto`` = compile only when the decode
    time it saves on the expected job beats what it adds to the start (``warm``: whether the
    compile cache already holds this model's artifacts; a cold compile costs ~90 s more here)."""
    if isinstance(setting, bool):
        return setting
    s = str(setting).strip().lower()
    if s == "auto":
        c = {**COMPILE_COSTS, **(costs or {})}
        return expected_tokens is not None and compile_saving_s(expected_tokens, c) > compile_start_cost_s(warm, c)
    if s in ("true", "false"):
        return s == "true"
    raise UserError(f"engine.compile must be true, false or auto (got {setting!r})")


def resolve_compile(model: str, setting: bool | str = "auto", expected_tokens: int | None = None,
                    dtype: str = "auto", max_model_len: int = 2048,
                    costs: dict[str, float] | None = None) -> tuple[bool, bool]:
    """``(compile?, compile cache warm?)`` for an engine on ``model``: what ``VLLMEngine`` does,
    for callers that must know it before the engine starts (e.g. to fingerprint the mode)."""
    warm = str(setting).strip().lower() == "auto" and compile_cache_warm(compile_key(model, dtype, max_model_len))
    return use_compile(setting, expected_tokens, warm, costs), warm


def compile_key(model: str, dtype: str, max_model_len: int) -> str:
    """What a compile-cache entry depends on that s2distill varies (plus the library versions)."""
    import torch
    import vllm

    return f"{Path(model).resolve() if Path(model).exists() else model}|{dtype}|{max_model_len}|vllm {vllm.__version__}|torch {torch.__version__}"


def compile_cache_warm(key: str, cache_dir: Path | None = None) -> bool:
    """Whether a compiled engine for ``key`` started before and vLLM's cache still holds files."""
    d = cache_dir or compile_cache_dir()
    try:
        ledger = json.loads((d / WARM_LEDGER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return key in ledger and any(p.name != WARM_LEDGER for p in d.iterdir())


def mark_compile_cache_warm(key: str, cache_dir: Path | None = None) -> None:
    d = cache_dir or compile_cache_dir()
    try:
        ledger = json.loads((d / WARM_LEDGER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        ledger = {}
    ledger[key] = time.time()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{WARM_LEDGER}.{os.getpid()}"
    tmp.write_text(json.dumps(ledger, indent=1), encoding="utf-8")
    os.replace(tmp, d / WARM_LEDGER)


def compile_cache_dir() -> Path:
    """Where vLLM keeps torch.compile artifacts (``$VLLM_CACHE_ROOT/torch_compile_cache``)."""
    import vllm.envs

    return Path(vllm.envs.VLLM_CACHE_ROOT) / "torch_compile_cache"


class _AOTLoadFix:
    """vLLM worker extension whose only job is to be imported in the worker (see ``__getattr__``)."""


def __getattr__(name: str) -> Any:
    """Make vLLM 0.32's CPU worker load its saved torch.compile artifact instead of recompiling.

    vLLM saves the compiled model under ``compile_cache_dir()`` at every compiled start, but
    loading it calls ``compiled_fn.finalize_loading(...)``, which only artifacts of vLLM's own
    piecewise backend have. On CPU vLLM compiles with plain Inductor, whose artifact (torch's
    ``BundledAOTAutogradSerializableCallable``) is ready to run as loaded but lacks the method,
    so every load failed ("'function' object has no attribute 'finalize_loading'") and each
    start compiled again (73 s per start, bench/RESULTS.md). Passing ``AOT_LOAD_FIX`` as ``worker_extension_cls`` makes
    the worker resolve this attribute before the model compiles; resolving it adds the missing
    no-op method, in the worker process only.
    """
    if name != "AOTLoadFix":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from torch._dynamo.aot_compile_types import (
            BundledAOTAutogradSerializableCallable as Artifact,
        )
    except ImportError:  # another torch: nothing to fix
        return _AOTLoadFix
    if not hasattr(Artifact, "finalize_loading"):
        Artifact.finalize_loading = lambda self, vllm_config: None
    return _AOTLoadFix


def _configure_cpu_env(kvcache_space_gb: int, threads_bind: str | None, reserved_cpus: int, inprocess: bool) -> None:
    """vLLM's CPU backend reads these at start; user-set values win (measured in ENVIRONMENT.md:
    reserving no core and binding OpenMP to all cores is ~1.4x faster on 2 cores).

    ``inprocess`` runs the engine core in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0):
    measured here (bench/RESULTS.md), a start takes 14 s instead of 29 s (no two extra interpreters
    importing vLLM; ~3 s for a later engine in the same process) at 220 vs 233 tokens/s; ``close()`` hands
    the KV cache back (resident memory flat over repeated engines); and sampling becomes
    reproducible: with a separate engine-core process, how requests trickle into the first
    scheduler steps depends on timing, so the same seed gave different samples run to run.
    """
    ncpu = len(os.sched_getaffinity(0))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kvcache_space_gb))
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", str(reserved_cpus))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", threads_bind or f"0-{ncpu - 1}")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0" if inprocess else "1")


@contextmanager
def _dist_state_kept() -> Iterator[None]:
    """Within this block vLLM's post-shutdown ``cleanup_dist_env_and_memory`` only collects
    garbage: it leaves the process-global parallel state to the other live engines."""
    import vllm.v1.engine.core as core

    def gc_only(*_a: Any, **_kw: Any) -> None:
        gc.unfreeze()
        gc.collect()

    original, core.cleanup_dist_env_and_memory = core.cleanup_dist_env_and_memory, gc_only
    try:
        yield
    finally:
        core.cleanup_dist_env_and_memory = original


def lora_rank_slot(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts (a fixed set of sizes) that holds ``rank``."""
    from typing import get_args

    from vllm.config.lora import MaxLoRARanks

    sizes = sorted(get_args(MaxLoRARanks))
    fits = [s for s in sizes if s >= rank]
    if not fits:
        raise UserError(f"train.lora.r={rank} is above vLLM's largest max_lora_rank ({sizes[-1]})")
    return fits[0]


class VLLMEngine:
    #: engines whose core runs in this process and is not closed yet. Their distributed state
    #: (vLLM's world / tensor- / pipeline-parallel groups) is global to the process and shared:
    #: a later engine reuses it, and vLLM's shutdown tears it down, which would break every
    #: other live engine ("pipeline model parallel group is not initialized"). ``close()``
    #: therefore tears it down only when it closes the last one.
    _live_inprocess: ClassVar[int] = 0

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        max_model_len: int = 2048,
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        compile: bool | str = "auto",
        compile_costs: dict[str, float] | None = None,
        expected_tokens: int | None = None,
        cpu_kvcache_space_gb: int = 2,
        cpu_threads_bind: str | None = None,
        cpu_reserved_cpus: int = 0,
        cpu_inprocess: bool = True,
        cpu_top_p_prefilter: int = fast_top_p.DEFAULT_PREFILTER,
        use_tqdm: bool = True,
        chat_template_kwargs: dict[str, Any] | None = None,
        max_lora_rank: int | None = None,
        max_logprobs: int = 20,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.use_tqdm = use_tqdm
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._adapters: dict[str, int] = {}
        dtype = self.dtype = resolve_dtype(dtype)
        self.compiled, warm = resolve_compile(model, compile, expected_tokens, dtype, max_model_len, compile_costs)
        log.info("vLLM compile: %s (engine.compile=%s, expected ~%s generated tokens, compile cache %s)",
                 "on" if self.compiled else "off", compile, expected_tokens, "warm" if warm else "cold")
        try:
            from vllm.platforms import current_platform

            on_cpu = current_platform.is_cpu()
        except Exception:  # pragma: no cover - platform detection is best effort
            on_cpu = False
        if on_cpu:
            _configure_cpu_env(cpu_kvcache_space_gb, cpu_threads_bind, cpu_reserved_cpus, cpu_inprocess)
            # top-p without vLLM's whole-vocabulary sort at every step (engines/fast_top_p.py): the
            # same mask, so the same samples; 0 keeps vLLM's own. Installed before the engine
            # core starts (in this process, or forked from it)
            if int(cpu_top_p_prefilter) > 0:
                fast_top_p.install(int(cpu_top_p_prefilter))
            else:
                fast_top_p.uninstall()
        from vllm import LLM

        kwargs: dict[str, Any] = dict(
            model=model,
            dtype=dtype,
            max_model_len=max_model_len,
            seed=seed,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        if on_cpu:
            # Per-request seeds (Sampling.seed) need whole-prompt prefills on CPU: when a prompt is
            # split over steps (chunked prefill), vLLM 0.32 undoes the random draw of the step
            # that completes no token with ``generator.set_offset(generator.get_offset() - 4)``
            # (gpu_model_runner._bookkeeping_sync), which only CUDA's Philox generator has; a
            # seeded request's CPU generator raises "CPU Generator does not use offset". Without
            # chunking a step takes whole prompts (up to max_num_batched_tokens), so nothing is undone.
            kwargs["enable_chunked_prefill"] = False
            kwargs["max_num_batched_tokens"] = max(int(max_model_len), 4096)
        if not self.compiled:
            # the torch.compile warm-up costs ~90 s at a cold start on CPU; eager suits short jobs
            kwargs["compilation_config"] = {"mode": 0}
        elif on_cpu:
            kwargs["worker_extension_cls"] = AOT_LOAD_FIX  # reuse compiled artifacts (see above)
        if int(max_logprobs) != 20:  # vLLM's default cap on (prompt_)logprobs; KD's top_k may need more
            kwargs["max_logprobs"] = int(max_logprobs)
        if max_lora_rank:  # the distilled arm is a LoRA adapter served on this base model
            kwargs.update(enable_lora=True, max_lora_rank=lora_rank_slot(int(max_lora_rank)))
        kwargs.update(extra or {})
        self.llm = LLM(**kwargs)
        if self.compiled:
            mark_compile_cache_warm(compile_key(model, dtype, max_model_len))  # the next compiled start of this model loads, not compiles
        self._inprocess = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "0"
        if self._inprocess:
            VLLMEngine._live_inprocess += 1

    def generate(self, chats: list[Chat], n: int, sampling: Sampling, desc: str = "",
                 adapter: str | None = None) -> list[list[Completion]]:
        from vllm import SamplingParams

        if not chats:
            return []
        opts: dict[str, Any] = dict(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            max_tokens=sampling.max_tokens,
            **sampling.extra,
        )
        params: SamplingParams | list[SamplingParams] = SamplingParams(**opts)
        if sampling.seed is not None:
            # each chat its own random stream (vLLM seeds its n samples seed, seed + 1, ...): the
            # call's samples no longer depend on the engine's history
            params = [SamplingParams(**opts, seed=derive_seed(sampling.seed, i)) for i in range(len(chats))]
        # cached prefixes of earlier calls change which tokens a step computes (and so the
        # numerics): every call starts from an empty prefix cache, as it would after a restart
        self.llm.reset_prefix_cache()
        if desc:
            log.info("generating: %s (%d chats x n=%d)", desc, len(chats), n)
        lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            lora_id = self._adapters.setdefault(adapter, len(self._adapters) + 1)
            lora = LoRARequest(f"adapter{lora_id}", lora_id, adapter)
        outs = self.llm.chat(chats, params, use_tqdm=self.use_tqdm, lora_request=lora,
                             chat_template_kwargs=self.chat_template_kwargs or None)
        return [[Completion(o.text, len(o.token_ids)) for o in req.outputs] for req in outs]

    def score(self, sequences: list[list[int]], starts: list[int], top_k: int, desc: str = "") -> list[TopK]:
        """vLLM ``prompt_logprobs=top_k`` on the token sequences (one token generated, discarded)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not sequences:
            return []
        if desc:
            log.info("scoring: %s (%d sequences, top-%d)", desc, len(sequences), top_k)
        self.llm.reset_prefix_cache()
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=int(top_k), detokenize=False)
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=list(s)) for s in sequences], params,
                                 use_tqdm=self.use_tqdm)
        scored = []
        for out, seq, start in zip(outs, sequences, starts):
            ids, lps = [], []
            for pos in range(start, len(seq)):
                # the position's dict holds the top-k (rank 1..k) plus the actual token at its rank
                top = sorted((lp.rank, tok, lp.logprob) for tok, lp in out.prompt_logprobs[pos].items()
                             if lp.rank is not None and lp.rank <= top_k)[:top_k]
                ids.append([t for _, t, _ in top])
                lps.append([float(v) for _, _, v in top])
            scored.append(TopK(ids, lps))
        return scored

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        # another in-process engine still needs the shared parallel state: leave it in place
        others_live = self._inprocess and VLLMEngine._live_inprocess > 1
        try:
            with _dist_state_kept() if others_live else nullcontext():
                llm.llm_engine.engine_core.shutdown()
        except Exception as e:  # pragma: no cover - depends on vLLM internals
            log.warning("vLLM engine shutdown: %s", e)
        finally:
            if self._inprocess:
                VLLMEngine._live_inprocess -= 1
        self.llm = None
        gc.collect()
