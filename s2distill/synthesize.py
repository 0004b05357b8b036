"""Grow the unlabeled training inputs from a few seeds with the model itself (``synthesize.k``).

Self-Instruct (Wang et al. 2023) style: each request shows the model ``per_prompt`` seeds sampled
from the ``k`` seed inputs (the first k of the task's *train* split: the test split is never a
seed) and asks for one new input of the same kind. A candidate is kept when it

- parses (the text after "Question:", else the whole reply) and is non-empty;
- has ``min_words`` .. ``max_words`` words;
- for a task with a closed label set, comes with an answer the task can extract (the reply's
  "Answer: ..." line): a check that the input is of the right kind. The answer is then dropped:
  System 2 builds the training targets, as for real inputs;
- is not a near-duplicate: its ROUGE-L F1 (``rouge-score``, as Self-Instruct) with every seed
  and every input kept so far is at most ``rouge_threshold``.

Rounds of ``batch`` requests run until ``n_train`` inputs exist (seeds included) or ``max_rounds``
is spent; every round is appended to the stage's resumable artifact, so a killed run resumes.
The report counts what was generated, kept and dropped (duplicate, invalid) and the kept inputs'
diversity (mean pairwise ROUGE-L F1).
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import Any

from s2distill.engines.base import Engine, Sampling, derive_seed, user
from s2distill.errors import UserError
from s2distill.tasks.base import Task

log = logging.getLogger(__name__)

KEYS = ("k", "per_prompt", "batch", "max_rounds", "rouge_threshold", "min_words", "max_words", "temperature",
        "top_p", "max_tokens")
PROMPT = ("Here are examples of inputs for a task:\n\n{examples}\n\nWrite one new input of the same kind, different "
          "from the examples. Reply with \"Question:\" followed by the new input{answer}, and nothing else.")
ANSWER_HINT = ', then a line "Answer:" followed by its answer ({labels})'
_QUESTION = re.compile(r"question[ \t]*:[ \t]*(.*?)(?=\n\s*answer\s*:|\Z)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Options:
    k: int = 8
    per_prompt: int = 3
    batch: int = 16
    max_rounds: int = 20
    rouge_threshold: float = 0.7
    min_words: int = 3
    max_words: int = 150
    temperature: float = 1.0
    top_p: float = 0.95
    max_tokens: int = 160

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Options:
        unknown = set(cfg) - set(KEYS)
        if unknown:
            raise UserError(f"synthesize: unknown key(s) {sorted(unknown)} (known: {', '.join(KEYS)})")
        o = cls(**cfg)
        if o.k < 1 or o.per_prompt < 1 or o.batch < 1 or o.max_rounds < 1:
            raise UserError("synthesize.k, per_prompt, batch and max_rounds must be >= 1")
        if not 0 < o.rouge_threshold <= 1:
            raise UserError(f"synthesize.rouge_threshold must be in (0, 1] (got {o.rouge_threshold})")
        if not 1 <= o.min_words <= o.max_words:
            raise UserError(f"synthesize.min_words/max_words: need 1 <= min <= max (got {o.min_words}, {o.max_words})")
        return o


class Deduplicator:
    """ROUGE-L F1 against everything accepted so far (``rouge_score``, tokenised as Self-Instruct)."""

    def __init__(self, threshold: float, texts: list[str] = ()) -> None:
        from rouge_score import rouge_scorer

        self.scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        self.threshold = threshold
        self.kept: list[str] = list(texts)

    def closest(self, text: str) -> float:
        return max((self.scorer.score(k, text)["rougeL"].fmeasure for k in self.kept), default=0.0)

    def add(self, text: str) -> bool:
        """Keep ``text`` unless it is too close to one already kept."""
        if self.closest(text) > self.threshold:
            return False
        self.kept.append(text)
        return True


def parse(reply: str, task: Task) -> tuple[str | None, str]:
    """``(question, why)`` from one reply; ``question`` None when invalid (``why`` says why)."""
    m = _QUESTION.search(reply)
    text = (m.group(1) if m else reply).strip().strip('"').strip()
    if not text:
        return None, "empty"
    if task.labels:
        tail = reply[m.end():] if m else ""
        ans = re.search(r"answer\s*:\s*(.+)", tail, re.IGNORECASE)
        if not ans or task.extract("Answer: " + ans.group(1).strip()) is None:
            return None, "no_valid_answer"
    return text, "ok"


def diversity(texts: list[str], max_pairs: int = 2000, seed: int = 0) -> float | None:
    """Mean pairwise ROUGE-L F1 of ``texts`` (a seeded sample of pairs when there are many)."""
    from rouge_score import rouge_scorer

    if len(texts) < 2:
        return None
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    pairs = [(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))]
    if len(pairs) > max_pairs:
        pairs = random.Random(seed).sample(pairs, max_pairs)
    return sum(scorer.score(texts[i], texts[j])["rougeL"].fmeasure for i, j in pairs) / len(pairs)


def synthesize(engine: Any, task: Task, seeds: list[str], n_target: int, o: Options, seed: int,
               done: dict[int, list[dict[str, Any]]], save: Any) -> list[dict[str, Any]]:
    """Rounds until ``n_target`` inputs exist (seeds included) or the budget is spent. ``done``
    holds rounds an earlier run finished (replayed, not regenerated); ``save(round, records)``
    keeps each new round. ``engine`` is called only when a round must be generated."""
    dedup = Deduplicator(o.rouge_threshold, seeds)
    records: list[dict[str, Any]] = []
    for r in range(o.max_rounds):
        if sum(x["verdict"] == "kept" for x in records) + len(seeds) >= n_target:
            break
        if r in done:
            judged = done[r]
            dedup.kept.extend(x["question"] for x in judged if x["verdict"] == "kept")
        else:
            judged = judge_round(generate_round(engine(), seeds, task, o, r, seed), task, o, dedup)
            save(r, judged)
        records.extend({"round": r, **x} for x in judged)
    return records


def report(records: list[dict[str, Any]], n_seeds: int, n_used: int) -> dict[str, Any]:
    """What was generated, kept and dropped, and the kept inputs' diversity."""
    kept = [x["question"] for x in records if x["verdict"] == "kept"]
    return {"n_seeds": n_seeds, "n_generated": len(records), "n_kept": len(kept), "n_used": n_used,
            "n_duplicate": sum(x["verdict"] == "duplicate" for x in records),
            "n_invalid": sum(x["verdict"] == "invalid" for x in records),
            "invalid_reasons": {w: sum(x.get("why") == w for x in records) for w in
                                sorted({x["why"] for x in records if x.get("why")})},
            "rounds": 1 + max((x["round"] for x in records), default=-1),
            "tokens": sum(x["tokens"] for x in records),
            "diversity_rouge_l": diversity(kept)}


def prompts(seeds: list[str], task: Task, o: Options, round_: int, seed: int) -> list[str]:
    """One round's requests: each shows ``per_prompt`` seeds drawn for (seed, round, request)."""
    hint = ANSWER_HINT.format(labels=", ".join(task.labels)) if task.labels else ""
    out = []
    for i in range(o.batch):
        rng = random.Random(derive_seed(seed, "synthesize", round_, i))
        shown = rng.sample(seeds, min(o.per_prompt, len(seeds)))
        out.append(PROMPT.format(examples="\n\n".join(f"Question: {s}" for s in shown), answer=hint))
    return out


def judge_round(replies: list[tuple[str, int]], task: Task, o: Options, dedup: Deduplicator) -> list[dict[str, Any]]:
    """Each reply of a round with its verdict: kept, duplicate or invalid (with the reason)."""
    out = []
    for r, tokens in replies:
        q, why = parse(r, task)
        if q is not None:
            n = len(q.split())
            if not o.min_words <= n <= o.max_words:
                q, why = None, "length"
        if q is None:
            out.append({"reply": r, "tokens": tokens, "verdict": "invalid", "why": why})
        elif dedup.add(q):
            out.append({"reply": r, "tokens": tokens, "question": q, "verdict": "kept"})
        else:
            out.append({"reply": r, "tokens": tokens, "question": q, "verdict": "duplicate",
                        "rouge_l": round(dedup.closest(q), 3)})
    return out


def generate_round(engine: Engine, seeds: list[str], task: Task, o: Options, round_: int,
                   seed: int) -> list[tuple[str, int]]:
    """One round's replies and their generated token counts."""
    samp = Sampling(temperature=o.temperature, top_p=o.top_p, max_tokens=o.max_tokens,
                    seed=derive_seed(seed, "synthesize", round_))
    outs = engine.generate([user(p) for p in prompts(seeds, task, o, round_, seed)], 1, samp,
                           f"synthesize: round {round_}")
    return [(cs[0].text, cs[0].n_tokens) for cs in outs]
