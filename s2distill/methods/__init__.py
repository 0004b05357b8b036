"""System-1 and System-2 strategies, one file each, registered by name."""

from s2distill.methods.base import METHODS, Method, Trace

__all__ = ["METHODS", "Method", "Trace"]
