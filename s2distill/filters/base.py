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
    tokens: int = 0  # tokens the filter itself generated for this input (e.g. USC's selection call)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FilterTools:
    """What a filter may use besides the samples; both start the engine only when called.

    ``engine()`` — the base model's engine, for filters that prompt the model (USC).
    ``resample(rows, tag)`` — the method run again on transformed rows with the same ``n`` and
    sampling, cached as its own artifact under ``tag`` (input perturbation, e.g. BSM's A/B swap).
    """

    engine: Callable[[], Engine]
    resample: Callable[[list[dict[str, Any]], str], list[list[Trace]]]


class Filter:
    name: str = ""

    def check_task(self, task: Task) -> None:
        """Raise ``UserError`` if this filter cannot work on ``task`` (checked before any work)."""

    def decide(
        self, rows: list[dict[str, Any]], traces: list[list[Trace]], task: Task, tools: FilterTools
    ) -> list[Decision]:
        """One decision per row (rows carry no gold labels)."""
        raise NotImplementedError

    def fingerprint_config(self) -> dict[str, Any]:
        return {"name": self.name, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


FILTERS: Registry[type[Filter]] = Registry("filter", "s2distill.filters")
