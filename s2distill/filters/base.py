"""The filter interface: N traces per input → keep the input with one answer, or drop it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from s2distill.engines.base import Engine
from s2distill.methods.base import Trace
from s2distill.registry import Registry
from s2distill.tasks.base import Task


@dataclass
class Decision:
    kept: bool
    answer: str | None
    reason: str
    votes: dict[str, int] = field(default_factory=dict)
    abstentions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Filter:
    name: str = ""

    def decide(
        self,
        rows: list[dict[str, Any]],
        traces: list[list[Trace]],
        task: Task,
        engine: Callable[[], Engine],
    ) -> list[Decision]:
        """One decision per row. ``engine()`` starts the model only for filters that need it."""
        raise NotImplementedError

    def fingerprint_config(self) -> dict[str, Any]:
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


FILTERS: Registry[type[Filter]] = Registry("filter", "s2distill.filters")
