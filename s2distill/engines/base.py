"""The engine interface: chats in, ``n`` sampled completions (text + token count) out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int


@dataclass(frozen=True)
class Sampling:
    """Sampling options shared by all engines; ``extra`` passes engine-specific ones through."""

    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 256
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **kw: Any) -> Sampling:
        return Sampling(**{**self.__dict__, **kw})


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
