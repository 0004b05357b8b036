"""The engine interface: chats in, ``n`` sampled completions (text + token count) out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int


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

    def close(self) -> None:
        """Free the engine's memory (processes, KV cache)."""


def user(text: str) -> Chat:
    return [{"role": "user", "content": text}]
