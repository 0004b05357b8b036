"""Inference engines (vLLM by default, transformers as a fallback) and a lazy pool."""

from __future__ import annotations

import logging
from typing import Any

from s2distill.engines.base import Chat, Completion, Engine, Sampling, derive_seed, user
from s2distill.errors import UserError

log = logging.getLogger(__name__)

__all__ = ["Chat", "Completion", "Engine", "EnginePool", "Sampling", "derive_seed", "make_engine", "user"]


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


class EnginePool:
    """Starts an engine only when a stage really generates; at most one alive at a time.

    Stages whose artifacts are cached never call ``get``, so a fully cached run starts nothing.
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self._engine: Engine | None = None
        self.starts = 0

    def get(self, model: str) -> Engine:
        if self._engine is not None and self._engine.model != model:
            self.close()
        if self._engine is None:
            log.info("starting %s engine on %s", self.cfg.get("name", "vllm"), model)
            self._engine = make_engine(model, self.cfg)
            self.starts += 1
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> EnginePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
