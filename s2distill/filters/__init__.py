"""Unsupervised consistency filters, one file each, registered by name."""

from s2distill.filters.base import FILTERS, Decision, Filter, FilterTools

__all__ = ["FILTERS", "Decision", "Filter", "FilterTools"]
