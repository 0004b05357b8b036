"""s2distill: distil System-2 reasoning of an LLM into direct (System-1) answers."""

__version__ = "0.1.0"
