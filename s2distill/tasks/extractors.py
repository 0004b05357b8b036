"""Answer extraction and scoring kinds for tasks configured in YAML (``tasks/yaml_task.py``).

Each kind is one rule a user can name in a task file (``extraction.kind``):

- ``choice``: a closed label set. The last marked answer ("Answer: X", "the answer is X") whose
  X is a label wins; else a label opening the response; else the last label said on its own
  (followed by punctuation or the end: "so, yes."). Labels are matched as whole words, case-
  insensitively, except one-letter labels (A/B/C/D) outside a marker, which must be upper case:
  the article "a" is never read as the choice A.
- ``regex``: the last match of ``pattern`` (its first group, or the whole match), normalised.
- ``number``: the final number, as GSM8k's extractor finds it (``tasks/gsm8k.extract_number``;
  equality by math-verify in scoring ``numeric``).
- ``text``: a short free-text answer, as biased QA's extractor finds it
  (``tasks/biased_qa.extract_answer``: the last marked answer cut at its clause, else a short
  response's first sentence), in lower case without punctuation.

Scoring kinds (``scoring``): ``exact`` (equality with the gold in lower case without punctuation,
or without articles and accents too: "The Beatles" = "beatles"), ``alias`` (the gold or
any alias, as a whole-word match not denied by a negation: ``biased_qa.matches``) and
``numeric`` (math-verify equivalence).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from s2distill.errors import UserError
from s2distill.tasks.biased_qa import extract_answer, matches, normalise
from s2distill.tasks.gsm8k import extract_number, same_number

KINDS = ("choice", "regex", "number", "text")
SCORINGS = ("exact", "alias", "numeric")


def choice_extractor(labels: Sequence[str]) -> Callable[[str], str | None]:
    """The ``choice`` rule (module docstring) for ``labels``; returns the label as configured."""
    if not labels:
        raise UserError("extraction.kind=choice needs answers.labels (the closed label set)")
    canon = {str(label).lower(): str(label) for label in labels}
    alt = "|".join(re.escape(str(label)) for label in sorted(labels, key=lambda x: -len(str(x))))
    marked = re.compile(rf"\banswer\b[^\n:]{{0,30}}?(?:\bis\b|:)\s*[*_\"'`(\[]*\s*({alt})(?![\w])", re.IGNORECASE)
    opening = re.compile(rf"[\s*_\"'`#>(\[]*({alt})(?![\w])", re.IGNORECASE)
    words = [str(label) for label in labels if len(str(label)) > 1]
    letters = [str(label) for label in labels if len(str(label)) == 1]
    parts = []
    if words:
        parts.append(rf"(?i:\b(?:{'|'.join(map(re.escape, words))})\b)")
    if letters:
        parts.append(rf"\b(?:{'|'.join(re.escape(x.upper()) for x in letters)})\b")
    alone = re.compile(rf"({'|'.join(parts)})[*_\"'`)\]]*(?=\s*(?:[.,!;:)]|$))")

    def extract(text: str) -> str | None:
        found = marked.findall(text)
        if found:
            return canon[found[-1].lower()]
        head = opening.match(text)
        if head and (len(head.group(1)) > 1 or head.group(1).isupper()):
            return canon[head.group(1).lower()]
        said = alone.findall(text)
        return canon[said[-1].lower()] if said else None

    return extract


def regex_extractor(pattern: str) -> Callable[[str], str | None]:
    try:
        rx = re.compile(pattern, re.IGNORECASE | re.DOTALL)
    except re.error as e:
        raise UserError(f"extraction.pattern is not a valid regular expression: {e}") from None

    def extract(text: str) -> str | None:
        found = list(rx.finditer(text))
        if not found:
            return None
        m = found[-1]
        got = plain(m.group(1) if rx.groups else m.group(0))
        return got or None

    return extract


def text_extractor() -> Callable[[str], str | None]:
    def extract(text: str) -> str | None:
        got = extract_answer(text)
        return (plain(got) or None) if got is not None else None

    return extract


def plain(text: str) -> str:
    """Lower case, punctuation as spaces, single spaces ("Paris!" → "paris")."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def make_extractor(kind: str, labels: Sequence[str] | None = None, pattern: str | None = None) -> Callable[[str], str | None]:
    if kind == "choice":
        return choice_extractor(labels or ())
    if kind == "regex":
        if not pattern:
            raise UserError("extraction.kind=regex needs extraction.pattern (a regular expression, one group)")
        return regex_extractor(pattern)
    if kind == "number":
        return extract_number
    if kind == "text":
        return text_extractor()
    raise UserError(f"extraction.kind: unknown kind {kind!r} (known: {', '.join(KINDS)})")


def is_correct(scoring: str, pred: str | None, gold: str, aliases: Sequence[str] = ()) -> bool:
    """``pred`` (already extracted) against the gold answer under ``scoring``."""
    if pred is None:
        return False
    if scoring == "exact":  # "The Beatles" = "beatles"; "A" = "a" (a choice, not an article)
        n = normalise(str(gold))
        return plain(pred) == plain(str(gold)) or (bool(n) and normalise(pred) == n)
    if scoring == "alias":
        return matches(pred, [str(gold), *map(str, aliases)])
    if scoring == "numeric":
        return same_number(pred, str(gold))
    raise UserError(f"scoring: unknown kind {scoring!r} (known: {', '.join(SCORINGS)})")
