"""Tasks: data, prompts, answer extraction and scoring. One file per task."""

from s2distill.tasks.base import TASKS, Task

__all__ = ["TASKS", "Task"]
