"""Inference engines (vLLM by default, transformers as a fallback) and a lazy pool."""

from __future__ import annotations

import logging
from typing import Any

from s2distill.engines.base import Chat, Completion, Engine, Sampling, derive_seed, user
from s2distill.errors import UserError

log = logging.getLogger(__name__)

__all__ = ["AdapterEngine", "Chat", "Completion", "Engine", "EnginePool", "Sampling", "derive_seed", "make_engine",
           "user"]


def make_engine(model: str, cfg: dict[str, Any]) -> Engine:
    """Start the engine named ``cfg["name"]`` on ``model`` (a local folder or hub id)."""
    name = cfg.get("name", "vllm")
    opts = {k: v for k, v in cfg.items() if k != "name"}
    if name == "vllm":
        from s2distill.engines.vllm import VLLMEngine

        return VLLMEngine(model, **opts)
    if name == "hf":
        from s2distill.engines.hf import HFEngine

        return HFEngine(model, **opts)
    raise UserError(f"unknown engine {name!r} (known: hf, vllm)")


class AdapterEngine:
    """``engine`` generating through a LoRA adapter folder (the distilled arm of ``train=lora``):
    the base model's engine serves it, so no merged copy is written or loaded."""

    def __init__(self, engine: Engine, adapter: str) -> None:
        self.engine, self.adapter, self.model = engine, adapter, engine.model

    def generate(self, chats: list[Chat], n: int, sampling: Sampling, desc: str = "") -> list[list[Completion]]:
        return self.engine.generate(chats, n, sampling, desc, adapter=self.adapter)

    def close(self) -> None:
        """The base engine belongs to the pool."""


#: engines that serve LoRA adapters next to their base model (``generate(..., adapter=path)``)
ADAPTER_ENGINES = ("vllm",)


class EnginePool:
    """Starts an engine only when a stage really generates; at most one alive at a time.

    Stages whose artifacts are cached never call ``get``, so a fully cached run starts nothing.
    With ``isolate`` the engine lives in a child process (``engines/child.py``) whose exit hands
    its memory back.
    """

    def __init__(self, cfg: dict[str, Any], isolate: bool = False) -> None:
        self.cfg = cfg
        self.isolate = isolate
        self._engine: Engine | None = None
        self.starts = 0

    def get(self, model: str) -> Engine:
        if self._engine is not None and self._engine.model != model:
            self.close()
        if self._engine is None:
            log.info("starting %s engine on %s%s", self.cfg.get("name", "vllm"), model,
                     " in a child process" if self.isolate else "")
            if self.isolate:
                from s2distill.engines.child import ChildEngine

                self._engine = ChildEngine(model, self.cfg)
            else:
                self._engine = make_engine(model, self.cfg)
            self.starts += 1
        return self._engine

    @property
    def alive(self) -> bool:
        return self._engine is not None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
