"""Branch-Solve-Merge (Saha et al. 2023) for pairwise LLM-as-judge.

branch: propose up to ``k`` evaluation criteria for the user question (``n`` samples per input);
solve: score both responses 1-5 on each criterion of each sample (one call each, ``n=1``);
merge: ``sum`` adds the scores (no call) or ``llm`` asks the model for the final verdict.
Every step is one engine call for all inputs. The parsing helpers below are pure functions.
"""

from __future__ import annotations

import re
from typing import Any

from s2distill.engines.base import Engine, Sampling, user
from s2distill.errors import UserError
from s2distill.methods.base import METHODS, Method, Trace
from s2distill.tasks.base import Task

MERGES = ("sum", "llm")

#: used when the branch output holds no parseable list (recorded as ``criteria_source: fallback``)
GENERIC_CRITERIA = (
    "Helpfulness: does the response do what the user asked?",
    "Accuracy: is the information in the response correct?",
    "Relevance: does the response stay on the question?",
    "Level of detail: is the response complete without padding?",
    "Clarity: is the response easy to understand?",
)

_ITEM = re.compile(
    r"^\s*(?:\(?\d{1,2}[.):]|[-*\u2022+]|(?:criterion|criteria|factor|step)\s*\d{1,2}\s*[:.)\-])\s*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
# "gets a score of", "receives a rating of", "scores", ":", "=", "-"
_SEP = (r"\s*(?:[:=]|-|\b(?:gets|receives|earns|is\s+given|scores?)\b(?:\s+an?)?(?:\s+(?:score|rating))?"
        r"(?:\s+of)?)\s*")
_NUM = r"\**\s*(\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+))?"
# Who is scored: "Assistant A", "Response b", "**A**", a capital A/B, or a lower-case a/b right
# before ":" or "=". Any other lower-case "a" is the article ("receives a score of 4").
_WHO = r"(?:\b(?:assistant|response)\s+([ab])|\*\*([ab])\*\*|(?-i:\b([AB]))|\b([ab])(?=\s*[:=]))\b"
_SCORE = [
    # "A: 4", "Assistant A: 4/5", "Response B's score - 3", "A gets 4", "B receives a score of 4", "**A**: 4"
    re.compile(_WHO + r"(?:\*\*)?(?:'s)?(?:\s+(?:score|rating))?" + _SEP + _NUM, re.IGNORECASE),
    # "score for A: 4", "rating of assistant B = 3"
    re.compile(r"\b(?:score|rating)\s+(?:for|of)\s+" + _WHO + r"\s*[:=\-]?\s*" + _NUM, re.IGNORECASE),
]
#: bump when ``parse_scores`` reads texts differently: traces cache the verdicts it produced
SCORES_PARSER_VERSION = 2


def parse_criteria(text: str, k: int) -> list[str]:
    """Up to ``k`` distinct criteria from a numbered or bulleted list (markdown stripped)."""
    out: list[str] = []
    for m in _ITEM.finditer(text):
        item = re.sub(r"[*_`#]+", "", m.group(1)).strip(" :-")
        if len(item) >= 3 and item.lower() not in {c.lower() for c in out}:
            out.append(item[:200])
        if len(out) == k:
            break
    return out


def parse_scores(text: str) -> tuple[float | None, float | None]:
    """The last 1-5 score given to A and to B; anything else (missing, 0, 7, "x/10") is ``None``."""
    found: dict[str, float | None] = {"a": None, "b": None}
    for m in sorted((m for pat in _SCORE for m in pat.finditer(text)), key=lambda m: m.start()):
        letter = next(g for g in m.groups()[:4] if g).lower()
        value, denom = float(m.group(5)), m.group(6)
        ok = 1 <= value <= 5 and (denom is None or denom == "5")
        found[letter] = value if ok else None
    return found["a"], found["b"]


def merge_sum(scores: list[tuple[float | None, float | None]]) -> tuple[str | None, float, float]:
    """Verdict from summed scores over criteria where *both* responses got a score.

    A criterion with one score missing is left out of both sums (counting it for one side
    would reward the side the parser happened to read). No usable criterion: no verdict.
    """
    usable = [(a, b) for a, b in scores if a is not None and b is not None]
    total_a, total_b = sum(a for a, _ in usable), sum(b for _, b in usable)
    if not usable:
        return None, total_a, total_b
    return ("A" if total_a > total_b else "B" if total_b > total_a else "tie"), total_a, total_b


def _fmt(x: float | None) -> str:
    return "?" if x is None else f"{x:g}"


@METHODS.register("bsm")
class BSM(Method):
    name = "bsm"
    tasks = ("llm_judge",)
    default_max_tokens = {"branch": 128, "solve": 128, "merge": 96}
    branch_prompt = (
        "We want to evaluate the quality of the responses provided by two AI assistants to the user "
        "question displayed below. Your task is to propose an evaluation plan that can be executed to "
        "compare the two responses. The evaluation plan should be a numbered list of up to {k} criteria "
        "that one should consider, such as helpfulness, relevance or accuracy. In each line, write one "
        "criterion and a short description of how to evaluate it.\n\n"
        "[User Question]\n{question}\n\n[Evaluation Plan]"
    )
    solve_prompt = (
        "You are given a user question and two responses from two AI assistants. Evaluate the two "
        "responses on the single criterion below and on nothing else.\n\n[Criterion]\n{criterion}\n\n"
        "[User Question]\n{question}\n\n"
        "[The Start of Assistant A's Answer]\n{response_a}\n[The End of Assistant A's Answer]\n\n"
        "[The Start of Assistant B's Answer]\n{response_b}\n[The End of Assistant B's Answer]\n\n"
        "Give a short explanation, then score each response from 1 (poor) to 5 (excellent) on this "
        'criterion. End with the scores in exactly this format: "A: <score>, B: <score>".'
    )
    merge_prompt = (
        "You are given a user question, two responses from two AI assistants, and evaluations of the "
        "two responses on several criteria. Merge the evaluations into a final judgement of which "
        "response is better overall.\n\n[User Question]\n{question}\n\n"
        "[The Start of Assistant A's Answer]\n{response_a}\n[The End of Assistant A's Answer]\n\n"
        "[The Start of Assistant B's Answer]\n{response_b}\n[The End of Assistant B's Answer]\n\n"
        "[Evaluations]\n{evaluations}\n\n{final}"
    )

    def __init__(self, k: int = 3, merge: str = "sum", max_tokens: dict[str, int] | None = None) -> None:
        if int(k) < 1:
            raise UserError(f"method bsm: k must be >= 1 (got {k})")
        if merge not in MERGES:
            raise UserError(f"method bsm: merge must be one of {MERGES} (got {merge!r})")
        super().__init__(max_tokens, k=int(k), merge=merge)
        self.k = int(k)
        self.merge = merge

    def run(self, rows: list[dict[str, Any]], task: Task, engine: Engine, n: int, sampling: Sampling) -> list[list[Trace]]:
        fields = [{f: r[f] for f in ("question", "response_a", "response_b")} for r in rows]
        branch = engine.generate(
            [user(self.branch_prompt.format(k=self.k, question=f["question"])) for f in fields],
            n, self.sampling(sampling, "branch"), "bsm: branch",
        )
        # one plan per (input, branch sample); every plan gets its own solve calls
        plans = []
        for f, cs in zip(fields, branch):
            for c in cs:
                parsed = parse_criteria(c.text, self.k)
                crit = parsed or list(GENERIC_CRITERIA[: self.k])
                plans.append({"fields": f, "branch": c, "criteria": crit, "source": "parsed" if parsed else "fallback"})
        solve_chats = [user(self.solve_prompt.format(criterion=crit, **p["fields"])) for p in plans for crit in p["criteria"]]
        solved = iter(engine.generate(solve_chats, 1, self.sampling(sampling, "solve"), "bsm: solve"))
        for p in plans:
            p["solve"] = [next(solved)[0] for _ in p["criteria"]]
            p["scores"] = [parse_scores(c.text) for c in p["solve"]]
        merged: list[Any] = [None] * len(plans)
        if self.merge == "llm":
            chats = [user(self.merge_prompt.format(evaluations=self._evaluations(p), final=task.final_instruction,
                                                   **p["fields"])) for p in plans]
            merged = [cs[0] for cs in engine.generate(chats, 1, self.sampling(sampling, "merge"), "bsm: merge")]
        traces = [self._trace(p, m, task) for p, m in zip(plans, merged)]
        return [traces[i * n : (i + 1) * n] for i in range(len(rows))]

    def fingerprint_config(self) -> dict[str, Any]:
        return {**super().fingerprint_config(), "scores_parser": SCORES_PARSER_VERSION}

    @staticmethod
    def _evaluations(plan: dict[str, Any]) -> str:
        return "\n".join(f"{i}. {crit}\n{c.text.strip()}" for i, (crit, c) in enumerate(zip(plan["criteria"], plan["solve"]), 1))

    def _trace(self, plan: dict[str, Any], merged: Any, task: Task) -> Trace:
        sum_answer, total_a, total_b = merge_sum(plan["scores"])
        lines = [f"{i}. {crit} -- A: {_fmt(a)}, B: {_fmt(b)}"
                 for i, (crit, (a, b)) in enumerate(zip(plan["criteria"], plan["scores"]), 1)]
        lines.append(f"Total A: {total_a:g}, B: {total_b:g} -> {sum_answer or 'no verdict'}")
        if merged is None:
            answer, text, merge_tokens = sum_answer, "\n".join(lines), 0
        else:
            answer, text, merge_tokens = task.extract(merged.text), merged.text, merged.n_tokens
        tokens = plan["branch"].n_tokens + sum(c.n_tokens for c in plan["solve"]) + merge_tokens
        steps = {
            "branch": plan["branch"].text,
            "criteria": plan["criteria"],
            "criteria_source": plan["source"],
            "solve": [c.text for c in plan["solve"]],
            "scores": [list(s) for s in plan["scores"]],
            "scores_summary": "\n".join(lines),
        }
        return Trace(answer, text, tokens, steps)
