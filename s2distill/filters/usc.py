"""Universal self-consistency (Chen et al. 2023): the model itself picks the response most
consistent with the others.

For every input one more prompt lists its ``N`` final responses ("Response 1: ...") and asks
which is most consistent with the majority; the reply "The most consistent response is
Response X" selects sample X, whose extracted answer is kept (optionally only when that answer's
share of the ``N`` samples is at least ``threshold``). A reply with no parseable or in-range X
falls back to majority vote (``majority.vote``, ties dropped). All selection prompts go to the
engine in ONE call; inputs whose samples all give the same answer skip it (``skip_unanimous``:
any pick would return that answer). ``Decision.extra["path"]`` records how each input was
decided and ``Decision.tokens`` the selection call's generated tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from s2distill.engines.base import Sampling, user
from s2distill.errors import UserError
from s2distill.filters.base import FILTERS, Decision, Filter, FilterTools
from s2distill.filters.majority import vote
from s2distill.methods.base import Trace
from s2distill.tasks.base import Task

_NUMBER = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
# Most explicit first: the requested sentence, then any "Response X", "#X", a leading "X." / "X".
_CHOICE = [
    re.compile(r"most consistent response is\W*(?:response\W*)?(?:number\W*|no\.\s*)?" + _NUMBER + r"\b", re.IGNORECASE),
    re.compile(r"\bresponse\s*(?:#|number|no\.)?\s*" + _NUMBER + r"\b", re.IGNORECASE),
    re.compile(r"#\s*(\d+)"),
    re.compile(r"^\W*(\d+)\b"),
]


def parse_choice(reply: str) -> int | None:
    """The response number X in a selection reply (1-based, not range-checked), or ``None``."""
    for pattern in _CHOICE:
        m = pattern.search(reply)
        if m:
            tok = m.group(1).lower()
            return int(tok) if tok.isdigit() else _WORDS[tok]
    return None


def clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, keeping its start and its end (where answers sit)."""
    text = text.strip()
    if len(text) <= limit:
        return text
    half = max(1, (limit - 5) // 2)
    return f"{text[:half]} ... {text[-half:]}"


@FILTERS.register("usc")
class USC(Filter):
    name = "usc"
    prompt = (
        "I have generated the following responses to the question: {question}\n\n{responses}\n\n"
        "Evaluate these responses.\nSelect the most consistent response based on majority consensus.\n"
        'Start your answer with "The most consistent response is Response X" (without quotes), '
        "where X is the number of that response."
    )

    def __init__(self, threshold: float = 0.0, max_tokens: int = 32, max_prompt_chars: int = 2000,
                 skip_unanimous: bool = True) -> None:
        if not 0 <= float(threshold) <= 1:
            raise UserError(f"filter.threshold must be in [0, 1] (got {threshold})")
        if int(max_tokens) < 1:
            raise UserError(f"filter.max_tokens must be >= 1 (got {max_tokens})")
        if int(max_prompt_chars) < 200:
            raise UserError(f"filter.max_prompt_chars must be >= 200 (got {max_prompt_chars})")
        self.threshold = float(threshold)
        self.max_tokens = int(max_tokens)
        self.max_prompt_chars = int(max_prompt_chars)
        self.skip_unanimous = bool(skip_unanimous)

    def decide(
        self, rows: list[dict[str, Any]], traces: list[list[Trace]], task: Task, tools: FilterTools
    ) -> list[Decision]:
        ask = [i for i, ts in enumerate(traces) if not (self.skip_unanimous and _unanimous(ts))]
        replies: dict[int, tuple[str, int]] = {}
        if ask:  # the engine starts only when some input needs the model's pick
            chats = [user(self.selection_prompt(task.question(rows[i]), traces[i])) for i in ask]
            samp = Sampling(temperature=0.0, top_p=1.0, max_tokens=self.max_tokens)
            outs = tools.engine().generate(chats, 1, samp, "usc: select")
            replies = {i: (cs[0].text, cs[0].n_tokens) for i, cs in zip(ask, outs)}
        return [self.decide_one(ts, *replies.get(i, (None, 0))) for i, ts in enumerate(traces)]

    def selection_prompt(self, question: str, traces: list[Trace]) -> str:
        """The question and every response, clipped so the prompt stays near ``max_prompt_chars``."""
        q = clip(question, self.max_prompt_chars // 4)
        per = max(40, (self.max_prompt_chars - len(q)) // max(1, len(traces)))
        responses = "\n".join(f"Response {k}: {clip(t.text, per)}" for k, t in enumerate(traces, 1))
        return self.prompt.format(question=q, responses=responses)

    def decide_one(self, traces: list[Trace], reply: str | None, tokens: int = 0) -> Decision:
        """The decision for one input given the selection reply (``None``: no call was made)."""
        answers = [t.answer for t in traces]
        counts = Counter(a for a in answers if a is not None)
        votes, abstain = dict(counts.most_common()), sum(a is None for a in answers)
        if reply is None:
            path, choice = "unanimous", 1
        else:
            choice = parse_choice(reply)
            path = "usc" if choice is not None and 1 <= choice <= len(traces) else (
                "unparseable" if choice is None else "out_of_range")
        extra: dict[str, Any] = {"path": path, "selected": choice, "reply": reply}
        if path in ("unparseable", "out_of_range"):
            d = vote(answers, threshold=max(self.threshold, 1e-9))
            d.reason, d.tokens = f"fallback_{d.reason}", tokens
            d.extra = {**d.extra, **extra}
            return d
        answer = traces[choice - 1].answer
        if answer is None:
            reason = "no_answer" if path == "unanimous" else "selected_no_answer"
            return Decision(False, None, reason, votes, abstain, extra, tokens)
        share = counts[answer] / len(traces)
        extra["share"] = share
        if share < self.threshold:
            return Decision(False, answer, "below_threshold", votes, abstain, extra, tokens)
        return Decision(True, answer, path, votes, abstain, extra, tokens)

    def fingerprint_config(self) -> dict[str, Any]:
        return {**super().fingerprint_config(), "prompt": self.prompt}


def _unanimous(traces: list[Trace]) -> bool:
    return len({t.answer for t in traces}) <= 1
