"""The SFT dataset: System-1 prompt → kept System-2 answer, fitted to ``max_length`` without
ever cutting the completion.

TRL truncates a too-long tokenized example at its end (``truncation_mode="keep_start"``), which
cuts the completion first: the target answer and its EOS are lost, and with completion-only loss
the example then trains on nothing, silently. Here the *prompt* side gives way instead: the middle
of the last user message is cut (its start and end are kept: a judge prompt's question and its
closing instruction), or, with ``truncation: drop`` or when even that cannot fit, the example is
dropped. Both are counted (``n_truncated``, ``n_dropped``) and reported in results.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from s2distill.errors import UserError

log = logging.getLogger(__name__)

#: the marker left where the middle of an over-long prompt was cut
ELISION = "\n[…]\n"
TRUNCATION_MODES = ("prompt", "drop")


@dataclass
class Fitted:
    examples: list[dict[str, Any]]
    n_truncated: int
    n_dropped: int


def sft_examples(task: Any, rows: list[dict[str, Any]], decisions: list[Any],
                 chat_template_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Prompt → completion chats: the System-1 prompt and the kept System-2 final answer, with
    the input's ``id`` (which the trainer drops; KD's teacher stage finds the input by it).

    ``chat_template_kwargs`` (e.g. Qwen3's ``enable_thinking: false``) ride along per example,
    which is how TRL's SFTTrainer passes them to ``apply_chat_template``.
    """
    out = []
    for r, d in zip(rows, decisions):
        if d.kept and d.answer is not None:
            ex = {"id": r["id"], "prompt": [{"role": "user", "content": task.direct_prompt(r)}],
                  "completion": [{"role": "assistant", "content": task.target(d.answer)}]}
            if chat_template_kwargs:
                ex["chat_template_kwargs"] = dict(chat_template_kwargs)
            out.append(ex)
    return out


def n_tokens(tokenizer: Any, example: dict[str, Any]) -> int:
    """Length of the tokenized prompt + completion, tokenized as TRL's SFTTrainer does."""
    kw = example.get("chat_template_kwargs") or {}
    ids = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True,
                                        return_dict=True, **kw)["input_ids"]
    return len(ids)


def fit(examples: list[dict[str, Any]], tokenizer: Any, max_length: int | None, mode: str = "prompt") -> Fitted:
    """Make every example fit ``max_length`` tokens by shortening or dropping its prompt side."""
    if mode not in TRUNCATION_MODES:
        raise UserError(f"train.truncation must be one of {', '.join(TRUNCATION_MODES)} (got {mode!r})")
    if max_length is None:
        return Fitted(list(examples), 0, 0)
    kept, n_trunc, n_drop = [], 0, 0
    for ex in examples:
        length = n_tokens(tokenizer, ex)
        if length <= max_length:
            kept.append(ex)
            continue
        short = _shorten(ex, tokenizer, max_length, length) if mode == "prompt" else None
        if short is None:
            n_drop += 1
        else:
            kept.append(short)
            n_trunc += 1
    if n_trunc or n_drop:
        log.warning("SFT data: %d of %d examples exceed max_length=%d tokens: %d had the middle of their "
                    "prompt cut, %d were dropped (completions are never cut)",
                    n_trunc + n_drop, len(examples), max_length, n_trunc, n_drop)
    return Fitted(kept, n_trunc, n_drop)


def _shorten(ex: dict[str, Any], tokenizer: Any, max_length: int, length: int) -> dict[str, Any] | None:
    """``ex`` with tokens cut from the middle of its last user message so that it fits, or None."""
    msgs = ex["prompt"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    content = tokenizer(msgs[last]["content"], add_special_tokens=False)["input_ids"]
    excess = length - max_length
    for _ in range(4):  # re-tokenizing the cut text can differ by a few tokens: tighten and retry
        keep = len(content) - excess - len(tokenizer(ELISION, add_special_tokens=False)["input_ids"])
        if keep < 2:
            return None
        head, tail = keep - keep // 2, keep // 2
        text = tokenizer.decode(content[:head]) + ELISION + (tokenizer.decode(content[-tail:]) if tail else "")
        new = {**ex, "prompt": [*msgs[:last], {**msgs[last], "content": text}, *msgs[last + 1:]]}
        now = n_tokens(tokenizer, new)
        if now <= max_length:
            return new
        excess += now - max_length
    return None
