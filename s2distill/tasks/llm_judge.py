"""LLM-as-judge (MT-bench style, Zheng et al. 2023): which of two responses is better, or a tie?

Rows hold ``question``, ``response_a``, ``response_b`` and the human verdict as ``gold``
(``"A"``, ``"B"`` or ``"tie"``). Offline the bundled pairs (``data/llm_judge/pairs.jsonl``, see
its README) are used; with a hub, training inputs are OASST2-derived pairs and the test split is
MT-bench human judgments. Test splits are balanced over A/B winners plus a share of human ties.
The answer must not depend on the order of A and B: ``perturbation()`` swaps them.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from typing import Any

from datasets import DatasetDict

from s2distill.errors import UserError
from s2distill.metrics import wilson_ci
from s2distill.tasks.base import (
    TASKS,
    Perturbation,
    Task,
    bundled_path,
    read_records,
    to_dataset,
)

SOURCES = ("local", "hub")
HUB_DEFAULTS = {
    "train_dataset": "OpenAssistant/oasst2",  # pairs derived here: two ranked replies to one first prompt
    "train_split": "train",
    "train_lang": "en",
    "test_dataset": "lmsys/mt_bench_human_judgments",
    "test_split": "human",
}
VERDICTS = {"a": "A", "b": "B", "c": "tie", "tie": "tie"}
TARGETS = {"A": "[[A]]", "B": "[[B]]", "tie": "[[C]]"}
SWAP = {"A": "B", "B": "A", "tie": "tie"}

PREAMBLE = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user question displayed below. You should choose the assistant that follows "
    "the user's instructions and answers the user's question better, considering helpfulness, "
    "relevance, accuracy, depth and level of detail. Avoid any position bias: the order in which the "
    "responses are presented must not influence your decision, and neither must their length. "
    "Be as objective as possible."
)
PAIR = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{response_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{response_b}\n[The End of Assistant B's Answer]"
)
_FORMAT = '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'

# Verdict patterns, most to least explicit. Within the first tier that matches, a text naming
# two different verdicts (e.g. the instruction echoed back) is ambiguous and gives no answer:
# taking the first or last one would favour a position.
_L = r"(tie|a|b|c)(?![\w'])"
# After "verdict"/"winner"/"decision" a bare letter is a verdict only when capitalised ("A") or
# followed by punctuation ("a."): "my final verdict is a close call" reads "a" as the article.
_BARE = r"(?:(?-i:([ABC]))(?![\w'])|([abc])(?=\s*(?:[.,;:!)\]*\"'`]|$)))"
_TIERS = [
    re.compile(r"\[\[\s*" + _L + r"\s*\]\]", re.IGNORECASE),
    re.compile(r"\[\s*" + _L + r"\s*\]", re.IGNORECASE),
    re.compile(
        r"(?:verdict|winner|decision)\s*(?:is)?\s*[:\-]?\s*[*_\"'`(]*\s*(?:it'?s\s+|it\s+is\s+)?(?:a\s+)?"
        r"(?:(?:assistant|response)\s+([ab])(?![\w'])|(tie)\b|" + _BARE + ")",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:assistant|response)\s+(a|b)(?:'s\s+(?:answer|response))?\s+(?:is|was|provides|gives)\s+"
        r"(?:a\s+|the\s+)?(?:much\s+|slightly\s+|clearly\s+|far\s+)?(?:better|superior|stronger|best|more\s+\w+)",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:it'?s|it\s+is)\s+a\s+(tie)\b|\bboth\s+(?:responses|answers|assistants)\s+are\s+(equal)(?:ly)?\b",
               re.IGNORECASE),
]


def extract_verdict(text: str) -> str | None:
    """``"A"``, ``"B"``, ``"tie"`` or ``None`` from a judge's output (see ``_TIERS``)."""
    for pattern in _TIERS:
        found = {VERDICTS.get(g.lower(), "tie") for m in pattern.finditer(text) for g in m.groups() if g}
        if found:
            return found.pop() if len(found) == 1 else None
    return None


def swap_row(row: dict[str, Any]) -> dict[str, Any]:
    """The same comparison with the responses' positions exchanged (gold relabelled if present)."""
    out = {**row, "response_a": row["response_b"], "response_b": row["response_a"]}
    if "gold" in row:
        out["gold"] = SWAP[row["gold"]]
    return out


def unswap(answer: str | None) -> str | None:
    """A verdict given on swapped responses, in the original order."""
    return None if answer is None else SWAP.get(answer)


@TASKS.register("llm_judge")
class LLMJudge(Task):
    name = "llm_judge"
    synthesizable = False
    labels = ("A", "B", "tie")
    direct_instruction = f"Output only your final verdict: {_FORMAT}"
    final_instruction = f"After your explanation, output your final verdict strictly in this format: {_FORMAT}"
    extractor_version = 2

    def __init__(
        self,
        source: str = "local",
        test_tie_share: float = 0.1,
        max_response_chars: int = 2000,
        hub: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if source not in SOURCES:
            raise UserError(f"task.source must be one of {SOURCES} (got {source!r})")
        if not 0 <= float(test_tie_share) < 1:
            raise UserError(f"task.test_tie_share must be in [0, 1) (got {test_tie_share})")
        if int(max_response_chars) < 1:
            raise UserError(f"task.max_response_chars must be >= 1 (got {max_response_chars})")
        if source == "hub" and kw.get("data_file"):
            raise UserError("task.data_file and task.source=hub exclude each other")
        self.source = source
        self.test_tie_share = float(test_tie_share)
        self.max_response_chars = int(max_response_chars)
        unknown = set(hub or {}) - set(HUB_DEFAULTS)
        if unknown:
            raise UserError(f"task.hub: unknown key(s) {sorted(unknown)} (known: {sorted(HUB_DEFAULTS)})")
        self.hub = {**HUB_DEFAULTS, **(hub or {})}

    # -- data -------------------------------------------------------------------------------
    def load(self) -> DatasetDict:
        if self.source == "hub":
            rng = random.Random(self.seed)
            train = oasst2_pairs(self.hub, rng)
            test = mt_bench_pairs(self.hub)
            rng.shuffle(train)
            rng.shuffle(test)
            rows = {"train": train[: self.n_train], "test": balanced_test(test, self.n_test, self.test_tie_share, rng)}
        else:
            path = self.data_file or bundled_path("llm_judge", "pairs.jsonl")
            recs = read_records(path, ["question", "response_a", "response_b", "human_winner"])
            pairs = [to_row(r["question"], r["response_a"], r["response_b"], r["human_winner"], str(path), i)
                     for i, r in enumerate(recs, 1)]
            rng = random.Random(self.seed)
            rng.shuffle(pairs)
            test = balanced_test(pairs, self.n_test, self.test_tie_share, rng)
            taken = {id(r) for r in test}
            rows = {"train": [r for r in pairs if id(r) not in taken][: self.n_train], "test": test}
            if not rows["train"]:
                raise UserError(f"{path} has {len(pairs)} pairs: none left for training after the test split")
        cut = self.max_response_chars
        for part in rows.values():
            for r in part:
                r["response_a"], r["response_b"] = r["response_a"][:cut], r["response_b"][:cut]
        return DatasetDict(train=to_dataset(rows["train"], "train"), test=to_dataset(rows["test"], "test"))

    # -- prompts and answers ---------------------------------------------------------------
    def question(self, row: dict[str, Any]) -> str:
        return f"{PREAMBLE}\n\n{PAIR.format(**pair_fields(row))}"

    def extract(self, text: str) -> str | None:
        return extract_verdict(text)

    def target(self, answer: str) -> str:
        return TARGETS[answer]

    def perturbation(self) -> Perturbation:
        return Perturbation("swap_ab", swap_row, unswap)

    def extra_metrics(self, preds: list[str | None], rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Agreement with the human votes, counted as MT-bench does (Zheng et al. 2023, FastChat's
        ``compute_agreement.py``; Yu et al. 2024 follow it).

        A row judged by several annotators (``human_votes``, see ``mt_bench_pairs``) counts each
        of their votes once, compared with the model's one verdict. ``agreement`` ("with tie")
        counts every vote, a human tie matched only by a tie verdict. ``agreement_non_tie``
        ("without tie") drops every vote that is a human tie and every row whose verdict is a
        tie; an abstention (no verdict) stays in both and counts as disagreement. ``n_votes`` /
        ``n_non_tie`` are the votes counted; the Wilson CI treats them as independent.
        """
        both: list[bool] = []
        non_tie: list[bool] = []
        for p, r in zip(preds, rows):
            for v in r.get("human_votes") or [r["gold"]]:
                both.append(p == v)
                if p != "tie" and v != "tie":
                    non_tie.append(p == v)
        lo, hi = wilson_ci(sum(non_tie), len(non_tie))
        return {
            "agreement": sum(both) / len(both) if both else float("nan"),
            "agreement_non_tie": sum(non_tie) / len(non_tie) if non_tie else float("nan"),
            "agreement_non_tie_ci_low": lo,
            "agreement_non_tie_ci_high": hi,
            "n_votes": len(both),
            "n_non_tie": len(non_tie),
        }


# -- helpers ------------------------------------------------------------------------------------
def pair_fields(row: dict[str, Any]) -> dict[str, str]:
    return {k: row[k] for k in ("question", "response_a", "response_b")}


def to_row(question: Any, a: Any, b: Any, winner: Any, source: str, i: int) -> dict[str, Any]:
    w = str(winner).strip()
    gold = {"a": "A", "b": "B", "model_a": "A", "model_b": "B"}.get(w.lower(), "tie" if w.lower().startswith("tie") else None)
    if gold is None:
        raise UserError(f"{source} record {i}: human_winner must be A, B or tie (got {winner!r})")
    return {"question": str(question), "response_a": str(a), "response_b": str(b), "gold": gold}


def balanced_test(rows: list[dict[str, Any]], n_test: int, tie_share: float, rng: random.Random) -> list[dict[str, Any]]:
    """``n_test`` rows: equally many A and B human winners, about ``tie_share`` ties for the rest.

    Equal A and B counts make "always A" (a pure position bias) score exactly chance on the
    non-tie rows; the tie count absorbs the parity (``n_test`` odd: at least one tie).
    """
    per = math.floor(n_test * (1 - tie_share) / 2 + 0.5)
    n_tie = n_test - 2 * per
    pools = {lab: [r for r in rows if r["gold"] == lab] for lab in ("A", "B", "tie")}
    need = {"A": per, "B": per, "tie": n_tie}
    short = {lab: len(pools[lab]) for lab in need if len(pools[lab]) < need[lab]}
    if per == 0 or short:
        raise UserError(
            f"cannot build a test split of {n_test} ({per} A, {per} B, {n_tie} tie wins): available "
            f"{({lab: len(p) for lab, p in pools.items()})}"
        )
    test = [r for lab in ("A", "B", "tie") for r in pools[lab][: need[lab]]]
    rng.shuffle(test)
    return test


# -- hub sources (need network access; not exercised offline) -----------------------------------
def hub_dataset(name: str, split: str) -> Any:
    """``datasets.load_dataset`` with every failure (offline, missing, renamed) as one clear line."""
    import datasets

    try:
        return datasets.load_dataset(name, split=split)
    except Exception as e:  # the hub boundary: any failure here is the user's setup, not a bug
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise UserError(
            f"cannot load {name!r} (split {split!r}) from the Hugging Face hub: {type(e).__name__}: {first} "
            f"-- offline? use task.source=local (the bundled pairs) or task.data_file"
        ) from None


def oasst2_pairs(hub: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Training inputs: each first prompt in ``train_lang`` with its best-ranked reply and one other."""
    ds = hub_dataset(hub["train_dataset"], hub["train_split"])
    cols = ["message_id", "parent_id", "role", "text", "lang", "rank", "deleted"]
    msgs = ds.select_columns(cols).to_list()
    prompts = {m["message_id"]: m["text"] for m in msgs
               if m["role"] == "prompter" and m["parent_id"] is None and m["lang"] == hub["train_lang"] and not m["deleted"]}
    replies: dict[str, list[dict[str, Any]]] = {}
    for m in msgs:
        if m["role"] == "assistant" and m["parent_id"] in prompts and m["rank"] is not None and not m["deleted"]:
            replies.setdefault(m["parent_id"], []).append(m)
    out = []
    for pid, rs in sorted(replies.items()):
        if len(rs) < 2:
            continue
        rs = sorted(rs, key=lambda m: m["rank"])
        best, other = rs[0], rng.choice(rs[1:])
        a, b, w = (best, other, "A") if rng.random() < 0.5 else (other, best, "B")
        out.append(to_row(prompts[pid], a["text"], b["text"], w, hub["train_dataset"], len(out) + 1))
    if not out:
        raise UserError(f"{hub['train_dataset']}: no prompt in language {hub['train_lang']!r} has two ranked replies")
    return out


def mt_bench_pairs(hub: dict[str, Any]) -> list[dict[str, Any]]:
    """Test pairs: MT-bench human judgments of first turns only (the judge prompt shows one
    question and two answers, not a dialogue), one row per pair.

    The dataset has one record per *vote*: a pair (question, two models) judged by several
    annotators appears several times, sometimes with the models in the other order. Votes are
    grouped by (question_id, unordered model pair) as FastChat's ``compute_agreement.py`` does,
    turned to the first vote's A/B order, and kept as ``human_votes`` ("A", "B", "tie";
    "tie (bothbad)" is a tie), which ``extra_metrics`` counts one by one. ``gold`` (for
    ``is_correct``, the balanced split and ``acc``) is the plurality vote, and a tie for the
    plurality between different verdicts (e.g. one A, one B) is ``"tie"``.
    """
    ds = hub_dataset(hub["test_dataset"], hub["test_split"])
    groups: dict[tuple[Any, frozenset[str]], dict[str, Any]] = {}
    for i, r in enumerate(ds, 1):
        if int(r["turn"]) != 1:
            continue
        key = (r["question_id"], frozenset((str(r["model_a"]), str(r["model_b"]))))
        ca, cb = r["conversation_a"], r["conversation_b"]
        vote = to_row(ca[0]["content"], ca[1]["content"], cb[1]["content"], r["winner"], hub["test_dataset"], i)
        if key not in groups:
            groups[key] = {**vote, "model_a": str(r["model_a"]), "human_votes": []}
        g = groups[key]
        g["human_votes"].append(vote["gold"] if str(r["model_a"]) == g["model_a"] else SWAP[vote["gold"]])
    out = []
    for g in groups.values():
        votes = g.pop("human_votes")
        g.pop("model_a")
        ranked = Counter(votes).most_common()
        top = [v for v, c in ranked if c == ranked[0][1]]
        out.append({**g, "gold": top[0] if len(top) == 1 else "tie", "human_votes": votes})
    return out
