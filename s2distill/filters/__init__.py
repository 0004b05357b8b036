"""Unsupervised consistency filters, one file each, registered by name."""

from s2distill.filters.base import FILTERS, Decision, Filter

__all__ = ["FILTERS", "Decision", "Filter"]
