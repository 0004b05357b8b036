"""Last-letter concatenation (Wei et al. 2022; RaR's last_letter_concatenation4.json)."""

from __future__ import annotations

import random
import re

from datasets import DatasetDict

from s2distill.errors import UserError
from s2distill.tasks.base import TASKS, Task, names, read_records, split, to_dataset

# A quoted span: "x", “x”, 'x' (not an apostrophe: no letter outside either quote), **x**, `x`.
_QUOTED = (r'"([^"\n]{1,200}?)"|“([^”\n]{1,200}?)”|(?<![^\W\d_])\'([^\'\n]{1,200}?)\'(?![^\W\d_])'
           r"|\*\*([^*\n]{1,200}?)\*\*|`([^`\n]{1,200}?)`")
# Tokens of a text: a quoted span (groups 1-5), a bare word, a separator of spelled letters, else.
_TOKEN = re.compile(rf"(?:{_QUOTED})|([^\W\d_]+)|([\s,;:+&\-]+)|(.)", re.DOTALL)
_WORD, _SEP, _OTHER = 6, 7, 8  # token kinds (``match.lastindex``); 1-5 are quoted spans
# The marker we instruct: "Answer: X" (last one wins; nothing else outranks it).
_MARKER = re.compile(r"\banswer\s*:", re.IGNORECASE)
# Cues after which a response states its result, e.g. "the answer is X", "the result is X",
# "we get X", "gives X", "they form X", "resulting in X", "Concatenated: X", "... = X".
_CUE = re.compile(
    r"\b(?:answer|result|outcome|output|concatenation|concatenated|combination)\b"
    r"[^\n\"'“”.:=\-]{0,60}?(?:\b(?:is|are|was|would\s+be|will\s+be|becomes)\b|:)"
    r"|\b(?:get|gets|got|gives?|giving|forms?|forming|spells?|spelling|yields?|produces?"
    r"|results?\s+in|resulting\s+in|makes?)\b"
    r"|=",
    re.IGNORECASE,
)
# A result stated before its cue: '"ayna" is the result', 'so aoat is the answer'.
_BACK_CUE = re.compile(
    rf"(?:{_QUOTED}|\b([^\W\d_]+))[.,]?\s+(?:is|was|would\s+be)\s+(?:the|our|your)\s+"
    r"(?:final\s+|correct\s+|resulting\s+)?(?:answer|result|concatenation|string)\b",
    re.IGNORECASE,
)
#: how far after its cue a stated answer is looked for (characters)
_WINDOW = 300
#: a quoted answer may follow its cue after at most this many words ("gives us the new word "x"")
_NEAR = 5
# Words allowed between a cue and a bare (unquoted) answer ("we get the word X", "gives us the string X").
_FILLER = {"the", "a", "an", "us", "you", "me", "word", "string", "letters", "letter", "result",
           "final", "answer", "new", "sequence", "combination", "concatenation", "following", "as"}
# A sentence ends at . ! ? before a space, or at a line break (a period inside quotes does not).
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


@TASKS.register("last_letter")
class LastLetter(Task):
    name = "last_letter"
    labels = None
    direct_instruction = "Answer with the concatenated letters only."
    final_instruction = 'End your response with "Answer: " followed by the concatenated letters.'
    extractor_version = 2

    def __init__(self, n_names: int = 4, **kw):
        super().__init__(**kw)
        if n_names < 1:
            raise UserError(f"task.n_names must be >= 1 (got {n_names})")
        self.n_names = int(n_names)

    def load(self) -> DatasetDict:
        if self.data_file:
            recs = read_records(self.data_file, ["question", "answer"])
            rows = [{"question": str(r["question"]), "gold": normalise(str(r["answer"]))} for r in recs]
            return split(rows, self.n_train, self.n_test, self.seed)
        rng = random.Random(self.seed)
        pool = names()
        seen: set[str] = set()
        out = {}
        for part, n in (("test", self.n_test), ("train", self.n_train)):
            rows = []
            while len(rows) < n:
                words = rng.sample(pool, self.n_names)
                q = f'Take the last letters of the words in "{" ".join(words)}" and concatenate them.'
                if q in seen:
                    continue
                seen.add(q)
                rows.append({"question": q, "gold": "".join(w[-1] for w in words).lower()})
            out[part] = rows
        return DatasetDict(train=to_dataset(out["train"], "train"), test=to_dataset(out["test"], "test"))

    def extract(self, text: str) -> str | None:
        """The letters the response states as its final answer (see ``extract_letters``)."""
        return extract_letters(text)


def normalise(answer: str) -> str:
    """Only the letters, lowercased; accented letters are letters ("Léon" → léon)."""
    return re.sub(r"[\W\d_]", "", answer.lower())


def extract_letters(text: str) -> str | None:
    """The concatenated letters a response states as its final answer, lowercased, or ``None``.

    Most explicit first, and within a rule the *last* statement wins (a response that states
    two different results has corrected itself, so its final word is its answer):

    1. the last "Answer: X" (the format we instruct);
    2. the last result stated after a cue ("the answer is X", "the result is X", "we get X",
       "gives X", "they form X", "Concatenated: X", "= X") or before one ('"X" is the result');
    3. the last quoted span that is not the question's names restated;
    4. a response that is only letters ("enla", "e n l a").

    X is a quoted span (punctuation inside the quotes dropped: "enla." is enla), else the bare
    word after the cue. Letters spelled out one by one ("e", "n", "l", "a" or e-n-l-a) are
    joined. A quoted span of capitalised words ("Toni Katie Holly Joshua") restates the input
    and is never the answer.
    """
    for m in reversed(list(_MARKER.finditer(text))):
        got = _stated(_line(text, m.end()))
        if got:
            return got
    stated = [(m.start(), _stated(_sentence(text, m.end()))) for m in _CUE.finditer(text)]
    for m in _BACK_CUE.finditer(text):
        span = next(g for g in m.groups() if g)
        stated.append((m.start(), None if _is_names(span) else _joined(span)))
    for _, got in sorted(stated, reverse=True):
        if got:
            return got
    quoted = [q for q in _quoted_spans(text) if not _is_names(q)]
    for q in reversed(quoted):
        if _joined(q):
            return _joined(q)
    words = re.findall(r"[^\W\d_]+", text.lower())
    if len(words) == 1:
        return words[0]
    if words and all(len(w) == 1 for w in words):
        return "".join(words)
    return None


def _stated(segment: str) -> str | None:
    """The answer at the start of ``segment`` (the text after a cue, up to its sentence end).

    It is the first quoted span within ``_NEAR`` words of the cue ("we get the merged word
    "acly""), restated names skipped; else the first bare word after filler words ("the word",
    "us") if it ends its clause ("is by taking" states nothing). Spelled letters are joined.
    """
    tokens = [(m.lastindex, m.group(m.lastindex)) for m in _TOKEN.finditer(segment)]
    words = 0
    for i, (kind, value) in enumerate(tokens):
        if kind < _WORD and not _is_names(value):
            return _letters_from(tokens, i)
        words += kind == _WORD
        if kind == _OTHER or words > _NEAR:
            break
    for i, (kind, value) in enumerate(tokens):
        if kind == _SEP or (kind == _WORD and value.lower() in _FILLER) or (kind < _WORD and _is_names(value)):
            continue
        if kind == _WORD and (len(value) == 1 or _ends_clause(tokens, i)):
            return _letters_from(tokens, i)
        return None
    return None


def _ends_clause(tokens: list[tuple[int, str]], i: int) -> bool:
    """Nothing but punctuation follows token ``i`` before the clause ends."""
    rest = tokens[i + 1 : i + 3]
    if not rest or rest[0][0] == _OTHER or (rest[0][0] == _SEP and re.search(r"[,;:]", rest[0][1])):
        return True
    return rest[0][0] == _SEP and (len(rest) == 1 or rest[1][0] == _OTHER)


def _letters_from(tokens: list[tuple[int, str]], i: int) -> str | None:
    """The answer starting at token ``i``: a word, or a run of single letters (quoted or bare,
    separated by commas, spaces, "and", "+", "-") joined."""
    first = _joined(tokens[i][1])
    if first is None or len(first) > 1:
        return first
    letters = [first]
    for kind, value in tokens[i + 1 :]:
        if kind == _SEP or (kind == _WORD and value.lower() == "and"):
            continue
        v = _joined(value) if kind <= _WORD else None
        if v is None or len(v) != 1:
            break
        letters.append(v)
    return "".join(letters)


def _joined(span: str) -> str | None:
    """A stated answer's letters, lowercased, everything else dropped ("e n l a." → enla)."""
    return normalise(span) or None


def _quoted_spans(text: str) -> list[str]:
    return [m.group(m.lastindex) for m in _TOKEN.finditer(text) if m.lastindex < _WORD]


def _is_names(span: str) -> bool:
    """A span of capitalised words ("Annette", "Toni Katie Holly Joshua"): the input restated."""
    words = re.sub(r"[\s,.]+|\band\b", " ", span).split()
    return bool(words) and all(len(w) > 1 and w[0].isupper() and w[1:].islower() for w in words)


def _line(text: str, start: int) -> str:
    """The rest of the line after ``start``, or the next line when the marker ends its line
    (at most ``_WINDOW`` characters, so a degenerate output is read in linear time)."""
    rest = text[start : start + _WINDOW].lstrip(" \t*_")  # "**Answer:** x"
    if rest.startswith("\n"):
        rest = rest.lstrip()
    return rest.split("\n", 1)[0]


def _sentence(text: str, start: int) -> str:
    """The rest of the sentence after ``start`` (at most ``_WINDOW`` characters)."""
    stop = min(len(text), start + _WINDOW)
    m = _SENTENCE_END.search(text, start, stop)
    return text[start : m.start() if m else stop]
