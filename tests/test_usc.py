"""USC filter: reply parsing, fallbacks, threshold, one engine call; real engine."""

from __future__ import annotations

import re

import pytest

from s2distill.engines.base import Completion
from s2distill.errors import UserError
from s2distill.filters import FILTERS, FilterTools
from s2distill.filters.usc import clip, parse_choice
from s2distill.methods.base import Trace
from s2distill.tasks import TASKS
from tests.conftest import Recording


@pytest.mark.parametrize(
    "reply, want",
    [
        ("The most consistent response is Response 3", 3),
        ("The most consistent response is Response 2.\nResponse 1 differs.", 2),
        ("The most consistent response is #4", 4),
        ("The most consistent response is response two.", 2),
        ("Response #2 agrees with the others.", 2),
        ("I pick #3", 3),
        ("3.", 3),
        ("  2", 2),
        ("The most consistent response is Response 12", 12),  # parsed; range is checked by the filter
        ("The most consistent response is Response X.", None),
        ("They all say Paris.", None),
        ("", None),
    ],
)
def test_parse_choice(reply, want):
    assert parse_choice(reply) == want


def test_clip_keeps_start_and_end():
    assert clip("short", 10) == "short"
    c = clip("A" * 50 + " middle " + "Answer: Paris", 40)
    assert len(c) <= 40 and c.startswith("AAA") and c.endswith("Paris")


class Replies:
    """Fake engine answering each selection prompt with the next scripted reply."""

    model = "fake"

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def generate(self, chats, n, sampling, desc=""):
        self.calls.append((len(chats), n, sampling.temperature, sampling.max_tokens))
        return [[Completion(self.replies.pop(0), 4)] for _ in chats]


def tr(*answers):
    return [Trace(a, f"text {i}: {a}", 3) for i, a in enumerate(answers)]


def tools(engine, started):
    def get():
        started.append(1)
        return engine

    return FilterTools(engine=get, resample=None)


TASK = TASKS.get("biased_qa")(n_train=2, n_test=4)


def test_decide_paths_one_call():
    traces = [
        tr("paris", "lyon", "paris"),  # picks Response 1 -> paris, share 2/3
        tr("rome", "milan", "milan"),  # out of range -> majority milan
        tr("a", "b", "c"),  # unparseable -> majority: three-way tie, dropped
        tr("x", None, "y"),  # picks the abstaining sample -> not kept
        tr("same", "same", "same"),  # unanimous: no prompt for it
        tr(None, None, None),  # unanimous abstention
        tr("q", "r", "r"),  # unparseable -> majority r
    ]
    rows = [{"question": f"Q{i}?"} for i in range(len(traces))]
    eng = Replies(["The most consistent response is Response 1", "Response 7", "I cannot tell",
                   "The most consistent response is Response 2", "no idea"])
    started = []
    ds = FILTERS.get("usc")().decide(rows, traces, TASK, tools(eng, started))
    assert eng.calls == [(5, 1, 0.0, 32)] and started == [1]  # ONE greedy call for the 5 that need it
    got = [(d.kept, d.answer, d.reason, d.extra["path"], d.tokens) for d in ds]
    assert got == [
        (True, "paris", "usc", "usc", 4),
        (True, "milan", "fallback_majority", "out_of_range", 4),
        (False, None, "fallback_tie", "unparseable", 4),
        (False, None, "selected_no_answer", "usc", 4),
        (True, "same", "unanimous", "unanimous", 0),
        (False, None, "no_answer", "unanimous", 0),
        (True, "r", "fallback_majority", "unparseable", 4),
    ]
    assert ds[0].extra["share"] == pytest.approx(2 / 3) and ds[0].extra["selected"] == 1
    assert ds[1].extra["selected"] == 7 and ds[1].extra["reply"] == "Response 7"
    assert ds[0].votes == {"paris": 2, "lyon": 1} and ds[3].abstentions == 1


def test_no_engine_when_all_unanimous():
    started = []
    ds = FILTERS.get("usc")().decide([{"question": "Q"}] * 2, [tr("a", "a"), tr("b")], TASK,
                                     tools(Replies([]), started))
    assert started == [] and [d.answer for d in ds] == ["a", "b"] and all(d.kept for d in ds)


def test_skip_unanimous_off_asks_every_input():
    eng = Replies(["Response 2", "Response 1"])
    f = FILTERS.get("usc")(skip_unanimous=False)
    ds = f.decide([{"question": "Q"}] * 2, [tr("a", "a"), tr(None, "b")], TASK, tools(eng, []))
    assert eng.calls[0][0] == 2
    assert [(d.kept, d.answer, d.extra["path"]) for d in ds] == [(True, "a", "usc"), (False, None, "usc")]


def test_threshold_on_usc_pick_and_fallback():
    eng = Replies(["Response 2", "unparseable"])
    f = FILTERS.get("usc")(threshold=0.6)
    ds = f.decide([{"question": "Q"}] * 2, [tr("a", "b", "a"), tr("a", "b", "a")], TASK, tools(eng, []))
    assert (ds[0].kept, ds[0].answer, ds[0].reason) == (False, "b", "below_threshold")
    assert (ds[1].kept, ds[1].answer, ds[1].reason) == (True, "a", "fallback_majority")


def test_selection_prompt_lists_responses_and_is_bounded():
    f = FILTERS.get("usc")(max_prompt_chars=600)
    traces = [Trace("x", f"resp {i} " + "word " * 200 + "Answer: x", 1) for i in range(8)]
    p = f.selection_prompt("What is it? " * 100, traces)
    assert all(f"Response {k}: resp {k - 1}" in p for k in range(1, 9))
    assert "Response 9" not in p and p.count("Answer: x") == 8
    assert len(p) < 600 + 8 * 60 + len(f.prompt)  # clipped, not the ~9 kB of raw text
    assert 'Start your answer with "The most consistent response is Response X"' in p


@pytest.mark.parametrize("kw", [{"threshold": -0.1}, {"threshold": 1.5}, {"max_tokens": 0},
                                {"max_prompt_chars": 10}])
def test_bad_options(kw):
    with pytest.raises(UserError):
        FILTERS.get("usc")(**kw)


def test_fingerprint_has_prompt_and_options():
    fp = FILTERS.get("usc")(threshold=0.5).fingerprint_config()
    assert fp["name"] == "usc" and fp["threshold"] == 0.5 and "most consistent" in fp["prompt"]


@pytest.mark.slow
def test_usc_real_engine(vllm_engine):
    rows = [{"question": "What is the capital of France?"}, {"question": "Who wrote Hamlet?"}]
    traces = [tr("paris", "lyon", "paris"), tr("shakespeare", "marlowe", "shakespeare")]
    for ts in traces:
        for t in ts:
            t.text = f"The answer is {t.answer}. Answer: {t.answer}"
    engine = Recording(vllm_engine)
    ds = FILTERS.get("usc")().decide(rows, traces, TASK, FilterTools(engine=lambda: engine, resample=None))
    assert [desc for desc, _ in engine.calls] == ["usc: select"]  # one call for all inputs
    replies = [cs[0] for cs in engine.calls[0][1]]
    for d, ts, reply in zip(ds, traces, replies):
        # the decision is about the model's real reply, and costs what the engine generated
        assert d.extra["reply"] == reply.text and d.tokens == reply.n_tokens > 0
        # which path the reply must take, read off the reply independently of parse_choice:
        # "Response k" with k in range selects k; a reply naming no number at all falls back
        named = [int(k) for k in re.findall(r"[Rr]esponse\s*#?\s*(\d+)", reply.text)]
        if named and 1 <= named[0] <= len(ts):
            assert (d.extra["path"], d.extra["selected"]) == ("usc", named[0])
            assert d.answer == ts[named[0] - 1].answer and d.kept
        elif not re.search(r"\d|\b(one|two|three)\b", reply.text, re.IGNORECASE):
            assert d.extra["path"] == "unparseable"
            assert d.kept and d.answer == ts[0].answer and d.reason.startswith("fallback")  # 2 of 3 agree
        else:  # a bare number or an out-of-range one: selected as written, or the majority fallback
            words = {"one": 1, "two": 2, "three": 3}
            written = {int(n) for n in re.findall(r"\d+", reply.text)} | {
                words[w.lower()] for w in re.findall(r"\b(one|two|three)\b", reply.text, re.IGNORECASE)}
            if d.extra["path"] == "usc":  # a selection the reply wrote, of a response that exists
                assert d.extra["selected"] in written and 1 <= d.extra["selected"] <= len(ts)
                assert d.answer == ts[d.extra["selected"] - 1].answer
            else:  # nothing usable selected: the majority answer (2 of 3 agree)
                assert d.kept and d.answer == ts[0].answer and d.reason.startswith("fallback")
