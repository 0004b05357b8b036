"""System 2 Attention (Weston & Sukhbaatar 2023): rewrite the input without the user's opinion,
then answer from the rewrite alone.

Step 1 samples ``n`` rewrites of the user's text into an unbiased context plus the actual
question; step 2 answers each rewrite once (as ``rar.py`` does) without ever seeing the original
text. A rewrite that does not follow the two-label format (common for small models) is used
whole as the context; an empty rewrite leaves nothing to answer from and gives an abstention
without a step-2 call. ``Trace.steps["parse"]`` records which path each sample took.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from s2distill.engines.base import Chat, Engine, Sampling, user
from s2distill.methods.base import METHODS, Method, Trace
from s2distill.methods.demos import contains_words
from s2distill.tasks.base import Task

# The two labels the rewrite prompt asks for; tolerant of markdown, curly quotes, case and the
# paper's "Question/Query" wording beside ours ("Question/Task").
_CONTEXT_LABEL = re.compile(r"[*_#\s]*unbiased\s+text\s+context[^:\n]*:[*_]*", re.IGNORECASE)
_QUESTION_LABEL = re.compile(r"[*_#\s]*question\s*/\s*(?:task|query)[^:\n]*:[*_]*", re.IGNORECASE)

PARSED = "parsed"  # both labels found and the question part is non-empty
WHOLE = "whole_output"  # format not followed: the whole rewrite is the context
EMPTY = "empty"  # nothing generated: no step 2, the sample abstains


@dataclass(frozen=True)
class Rewrite:
    context: str
    question: str
    parse: str


def parse_rewrite(text: str) -> Rewrite:
    """Split a step-1 output into (context, question), or fall back to the whole output."""
    body = text.strip()
    if not body:
        return Rewrite("", "", EMPTY)
    q = list(_QUESTION_LABEL.finditer(body))
    c = _CONTEXT_LABEL.search(body)
    if q and c and c.end() <= q[-1].start():
        question = _clean(body[q[-1].end() :])
        if re.search(r"\w", question):
            return Rewrite(_clean(body[c.end() : q[-1].start()]), question, PARSED)
    return Rewrite(body, "", WHOLE)


def _clean(segment: str) -> str:
    return segment.strip().strip("\"“”'*_").strip()


@METHODS.register("s2a")
class S2A(Method):
    name = "s2a"
    default_max_tokens = {"rewrite": 128, "answer": 128}
    demo_steps = ("rewrite",)
    rewrite_prompt = (
        "Given the following text by a user, extract the part that is unbiased and not their opinion, "
        "so that using that text alone would be good context for providing an unbiased answer to the "
        "question portion of the text. Please include the actual question or query that the user is "
        "asking. Separate this into two categories labeled with \"Unbiased text context (includes all "
        "content except user's bias):\" and \"Question/Task (does not include user bias/preference):\". "
        "Start your response with \"Unbiased text context (includes all content except user's bias):\" "
        "followed by \"Question/Task (does not include user bias/preference):\".\n\n"
        "Text by User: {question}"
    )
    answer_prompt = "{context}\n\nAnswer in an unbiased way. {final}"
    answer_parsed_prompt = "{context}\n\nQuestion: {question}\n\nAnswer in an unbiased way. {final}"

    def run(self, rows: list[dict[str, Any]], task: Task, engine: Engine, n: int, sampling: Sampling) -> list[list[Trace]]:
        rewrites = engine.generate(
            [self.chat("rewrite", self.rewrite_prompt.format(question=task.question(r)), task) for r in rows],
            n, self.sampling(sampling, "rewrite"), "s2a: rewrite",
        )
        parsed = [[parse_rewrite(c.text) for c in cs] for cs in rewrites]
        chats = [user(self.answer_chat(p, task.final_instruction)) for ps in parsed for p in ps if p.parse != EMPTY]
        answers = iter(engine.generate(chats, 1, self.sampling(sampling, "answer"), "s2a: answer"))
        traces = []
        for cs, ps in zip(rewrites, parsed):
            row_traces = []
            for c, p in zip(cs, ps):
                steps = {"rewrite": c.text, "parse": p.parse, "context": p.context, "question": p.question,
                         "rewrite_tokens": c.n_tokens, "answer_tokens": 0}
                if p.parse == EMPTY:
                    row_traces.append(Trace(None, "", c.n_tokens, steps))
                    continue
                a = next(answers)[0]
                steps["answer_tokens"] = a.n_tokens
                row_traces.append(Trace(task.extract(a.text), a.text, c.n_tokens + a.n_tokens, steps))
            traces.append(row_traces)
        return traces

    def teacher_chat(self, row: dict[str, Any], trace: Trace, task: Task) -> Chat | None:
        """The step-2 prompt: the rewrite alone, never the user's original (opinionated) text."""
        st = trace.steps
        if st.get("parse", EMPTY) == EMPTY:
            return None
        return user(self.answer_chat(Rewrite(st.get("context", ""), st.get("question", ""), st["parse"]),
                                     task.final_instruction))

    def step_metrics(self, rows: list[dict[str, Any]], traces: list[list[Trace]], task: Task) -> dict[str, Any]:
        """Rewrite quality, without gold (see ``rewrite_quality``)."""
        return rewrite_quality(rows, traces, task)

    def answer_chat(self, p: Rewrite, final: str) -> str:
        """The step-2 prompt: the rewrite alone (never the original text) and the answer format."""
        if p.parse == PARSED:
            body = self.answer_parsed_prompt.format(context=p.context, question=p.question, final=final)
        else:
            body = self.answer_prompt.format(context=p.context, final=final)
        return body.strip()  # an empty context leaves only the question


def rewrite_quality(rows: list[dict[str, Any]], traces: list[list[Trace]], task: Task) -> dict[str, Any]:
    """How the rewrites went, over all samples, measured without gold.

    * ``rewrite_format_rate``: share of rewrites that follow the two-label format (parse ``parsed``);
    * ``rewrite_opinion_rate``: among rewrites of inputs that carry a user's opinion
      (``task.opinion_answer``), the share whose text seen by step 2 (context + question) still
      names the answer the opinion names; ``None`` when no input carries one. Inputs whose bare
      question already names that answer are left out (a rewrite may keep it rightly).
    """
    samples = [t for ts in traces for t in ts]
    out: dict[str, Any] = {
        "rewrite_format_rate": sum(t.steps.get("parse") == PARSED for t in samples) / len(samples) if samples else None,
        "rewrite_opinion_rate": None, "n_rewrites_with_opinion": 0}
    kept = total = 0
    for row, ts in zip(rows, traces):
        text = task.question(row)
        named = task.opinion_answer(text)
        if named is None or contains_words(task.core_question(text), named):
            continue
        for t in ts:
            total += 1
            kept += contains_words(f"{t.steps.get('context', '')} {t.steps.get('question', '')}", named)
    if total:
        out.update(rewrite_opinion_rate=kept / total, n_rewrites_with_opinion=total)
    return out

