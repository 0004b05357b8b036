"""vLLM engine: whole stages in one ``LLM.chat`` call, ``SamplingParams(n=k)`` for samples."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from s2distill.engines.base import Chat, Completion, Sampling

log = logging.getLogger(__name__)


def _configure_cpu_env(kvcache_space_gb: int, threads_bind: str | None, reserved_cpus: int) -> None:
    """vLLM's CPU backend reads these at start; user-set values win (measured in ENVIRONMENT.md:
    reserving no core and binding OpenMP to all cores is ~1.4x faster on 2 cores)."""
    ncpu = len(os.sched_getaffinity(0))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kvcache_space_gb))
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", str(reserved_cpus))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", threads_bind or f"0-{ncpu - 1}")


class VLLMEngine:
    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        max_model_len: int = 2048,
        seed: int = 0,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        compile: bool = False,
        cpu_kvcache_space_gb: int = 2,
        cpu_threads_bind: str | None = None,
        cpu_reserved_cpus: int = 0,
        use_tqdm: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.use_tqdm = use_tqdm
        try:
            from vllm.platforms import current_platform

            on_cpu = current_platform.is_cpu()
        except Exception:  # pragma: no cover - platform detection is best effort
            on_cpu = False
        if on_cpu:
            _configure_cpu_env(cpu_kvcache_space_gb, cpu_threads_bind, cpu_reserved_cpus)
        from vllm import LLM

        kwargs: dict[str, Any] = dict(
            model=model,
            dtype=dtype,
            max_model_len=max_model_len,
            seed=seed,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        if not compile:
            # torch.compile warm-up costs ~45 s per start on CPU; eager is right for short jobs.
            kwargs["compilation_config"] = {"mode": 0}
        kwargs.update(extra or {})
        self.llm = LLM(**kwargs)

    def generate(self, chats: list[Chat], n: int, sampling: Sampling, desc: str = "") -> list[list[Completion]]:
        from vllm import SamplingParams

        if not chats:
            return []
        params = SamplingParams(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            max_tokens=sampling.max_tokens,
            **sampling.extra,
        )
        if desc:
            log.info("generating: %s (%d chats x n=%d)", desc, len(chats), n)
        outs = self.llm.chat(chats, params, use_tqdm=self.use_tqdm)
        return [[Completion(o.text, len(o.token_ids)) for o in req.outputs] for req in outs]

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception as e:  # pragma: no cover - depends on vLLM internals
            log.warning("vLLM engine shutdown: %s", e)
        self.llm = None
        gc.collect()
