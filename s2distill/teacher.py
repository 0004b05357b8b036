"""What a KD teacher scores (``train=kd``): its context per example, and token sequences aligned
with the student's completion tokens.

The student learns at each completion token of an SFT example (the tokens TRL's SFTTrainer puts
after the prompt). The teacher must give a distribution at exactly those tokens, so its sequence
is *its* prompt (the System-2 context, ``Method.teacher_chat``) followed by the student's own
completion token ids; the engine scores positions ``len(teacher prompt) ..`` (``Engine.score``).
"""

from __future__ import annotations

import logging
from typing import Any

from s2distill.engines.base import Chat
from s2distill.methods.base import Method, Trace
from s2distill.tasks.base import Task

log = logging.getLogger(__name__)

CONTEXTS = ("system2", "none")


def teacher_chats(task: Task, method: Method, examples: list[dict[str, Any]],
                  by_id: dict[Any, tuple[dict[str, Any], Any, list[Trace]]], context: str) -> tuple[list[Chat], int]:
    """The teacher's prompt for every example, and how many fell back to the System-1 prompt.

    ``system2``: the context of the first sample whose answer is the kept one (S2A's rewrite,
    RaR's rephrasing, CoT's reasoning); an example with no such sample, or a method with no
    System-2 context (system1, bsm), gets the System-1 prompt, counted as a fallback.
    ``none``: the System-1 prompt for all (the teacher as a plain second opinion).
    """
    if context not in CONTEXTS:
        raise ValueError(f"unknown teacher context {context!r} (known: {', '.join(CONTEXTS)})")
    chats, fallbacks = [], 0
    for ex in examples:
        chat = None
        if context == "system2":
            row, decision, traces = by_id[ex["id"]]
            trace = next((t for t in traces if t.answer is not None and t.answer == decision.answer), None)
            chat = method.teacher_chat(row, trace, task) if trace is not None else None
            fallbacks += chat is None
        chats.append(chat if chat is not None else ex["prompt"])
    if context == "system2" and fallbacks:
        log.warning("KD teacher: %d of %d examples have no System-2 context (method %s) and are scored on the "
                    "System-1 prompt", fallbacks, len(examples), method.name)
    return chats, fallbacks


def completion_ids(tokenizer: Any, example: dict[str, Any]) -> list[int]:
    """The completion's token ids as TRL's SFTTrainer labels them: the tokens of prompt+completion
    after their common prefix with the prompt rendered with the generation prompt."""
    from trl.data_utils import common_prefix_length

    kw = example.get("chat_template_kwargs") or {}
    prompt = tokenizer.apply_chat_template(example["prompt"], tokenize=True, return_dict=True,
                                           add_generation_prompt=True, **kw)["input_ids"]
    full = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True,
                                         return_dict=True, **kw)["input_ids"]
    return list(full[common_prefix_length(prompt, full):])


def sequences(student_tok: Any, teacher_tok: Any, examples: list[dict[str, Any]], chats: list[Chat],
              chat_template_kwargs: dict[str, Any] | None = None) -> tuple[list[list[int]], list[int]]:
    """Teacher prompt ids + the student's completion ids, and where the completion starts."""
    seqs, starts = [], []
    for ex, chat in zip(examples, chats):
        prompt = teacher_tok.apply_chat_template(chat, tokenize=True, return_dict=True, add_generation_prompt=True,
                                                 **(chat_template_kwargs or {}))["input_ids"]
        seqs.append(list(prompt) + completion_ids(student_tok, ex))
        starts.append(len(prompt))
    return seqs, starts
