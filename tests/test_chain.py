"""Prompt chains in YAML (methods/chain.py): the same prompts as the Python methods, build-time
errors, and a real-engine run."""

from __future__ import annotations

import pytest
import yaml

from s2distill.engines.base import Completion, Sampling
from s2distill.errors import UserError
from s2distill.methods import METHODS
from s2distill.methods.chain import Chain
from s2distill.tasks import TASKS
from tests.conftest import REPO

REWRITES = [
    "Unbiased text context (includes all content except user's bias): A quiz.\n"
    "Question/Task (does not include user bias/preference): Who wrote Hamlet?",
    "Just some text without the labels.",
    "",  # empty: no step 2, an abstention
]


class Scripted:
    """Records every chat; answers each call from a script by step, cycling."""

    model = "scripted"

    def __init__(self) -> None:
        self.chats: list[tuple[str, list, int]] = []

    def generate(self, chats, n, sampling, desc=""):
        self.chats.append((desc.split(": ", 1)[-1], chats, n))
        out, k = [], 0
        for _ in chats:
            cs = []
            for _ in range(n):
                text = REWRITES[k % 3] if "rewrite" in desc else f" Reasoning {k}. Answer: {'yes' if k % 2 else 'no'}\n"
                cs.append(Completion(text, 5 + k % 4))
                k += 1
            out.append(cs)
        return out


def chain(name: str, **over) -> Chain:
    spec = yaml.safe_load((REPO / "conf/method" / f"{name}.yaml").read_text())
    spec.pop("name")
    return Chain(**{**spec, **over})


@pytest.mark.parametrize(("py", "yml", "task", "demos"), [
    ("cot", "cot_chain", "coin_flip", None),
    ("rar", "rar_chain", "coin_flip", None),
    ("rar_1step", "rar_1step_chain", "last_letter", None),
    ("s2a", "s2a_chain", "biased_qa", None),
    ("s2a", "s2a_chain", "biased_qa", "s2a_rewrite"),  # with demonstrations on the first step
])
def test_chain_yaml_sends_the_python_methods_prompts(py: str, yml: str, task: str, demos: str | None) -> None:
    t = TASKS.get(task)(n_train=6, n_test=4)
    rows = t.unlabeled(t.load()["train"]).to_list()[:4]
    a, b = Scripted(), Scripted()
    samp = Sampling(temperature=0.8, top_p=0.95, seed=3)
    python = METHODS.get(py)(demos=demos).run(rows, t, a, 3, samp)
    yaml_ = chain(yml, demos=demos).run(rows, t, b, 3, samp)
    assert [(step, chats, n) for step, chats, n in a.chats] == [(step, chats, n) for step, chats, n in b.chats]
    assert len(a.chats) == (1 if py in ("cot", "rar_1step") else 2)
    # the same traces: answers (abstentions included), texts and token counts
    assert [[(x.answer, x.text, x.tokens) for x in ts] for ts in python] == \
           [[(x.answer, x.text, x.tokens) for x in ts] for ts in yaml_]
    if py == "s2a":
        assert any(x.answer is None and x.text == "" for ts in yaml_ for x in ts)  # the empty rewrite


def test_chain_teacher_context_matches_the_python_method() -> None:
    t = TASKS.get("biased_qa")(n_train=6, n_test=4)
    rows = t.unlabeled(t.load()["train"]).to_list()[:2]
    samp = Sampling(seed=1)
    py, ch = METHODS.get("s2a")(), chain("s2a_chain")
    for r, a, b in zip(rows, py.run(rows, t, Scripted(), 3, samp), ch.run(rows, t, Scripted(), 3, samp)):
        for x, y in zip(a, b):
            assert py.teacher_chat(r, x, t) == ch.teacher_chat(r, y, t)
    rar, rch = METHODS.get("rar")(), chain("rar_chain")
    r = rows[0]
    for x, y in zip(rar.run([r], t, Scripted(), 2, samp)[0], rch.run([r], t, Scripted(), 2, samp)[0]):
        assert rar.teacher_chat(r, x, t) == rch.teacher_chat(r, y, t)


@pytest.mark.parametrize(("steps", "message"), [
    ([{"name": "a", "template": "{question} {nope}"}], r"steps\[1\] \(a\): unknown placeholder \{nope\}"),
    ([{"name": "a", "template": "{question}"}, {"name": "b", "template": "{c} {final}"}], r"unknown placeholder \{c\}"),
    ([{"name": "a", "template": "{question}"}, {"name": "b", "template": "{b}"}], r"unknown placeholder \{b\}"),
    ([{"name": "a", "template": "no input"}], r"the first template must use \{question\}"),
    ([{"name": "a", "template": "{question}", "parse": "magic"}], "unknown parser 'magic'"),
    ([{"name": "a", "template": "{question}", "temperature": 0}], r"unknown key\(s\) \['temperature'\]"),
    ([{"name": "question", "template": "{question}"}], "must be an identifier other than question"),
    ([{"name": "a", "template": "{question"}], r"steps\[1\].template"),
    ([], "non-empty list"),
])
def test_bad_chains_fail_at_build_in_one_line(steps, message) -> None:
    with pytest.raises(UserError, match=message) as e:
        Chain(steps=steps)
    assert "\n" not in str(e.value)


def test_a_bad_chain_fails_before_any_engine(compose, fake_engine) -> None:
    from s2distill import pipeline

    with pytest.raises(UserError, match="unknown placeholder"):
        pipeline.build(compose("method=rar_chain", "method.steps.1.template='{rephrased} {final}'"), None)
    assert fake_engine == []
    ctx = pipeline.build(compose("method=rar_chain"), None)
    assert ctx.method.name == "rar_chain" and ctx.method.max_tokens == {"rephrase": 96, "respond": 160}


@pytest.mark.slow
def test_chain_on_the_real_engine_equals_the_python_method(vllm_engine) -> None:
    """Same prompts and the same per-step seeds: the real engine gives the chain exactly the
    Python method's samples."""
    t = TASKS.get("coin_flip")(n_train=4, n_test=4)
    rows = t.unlabeled(t.load()["train"]).to_list()[:3]
    samp = Sampling(temperature=0.8, top_p=0.95, seed=11)
    py = METHODS.get("rar")(max_tokens={"rephrase": 24, "respond": 24}).run(rows, t, vllm_engine, 2, samp)
    ch = chain("rar_chain", max_tokens={"rephrase": 24, "respond": 24}).run(rows, t, vllm_engine, 2, samp)
    assert [[(x.answer, x.text, x.tokens) for x in ts] for ts in py] == [[(x.answer, x.text, x.tokens) for x in ts] for ts in ch]
    assert all(x.tokens > 0 for ts in ch for x in ts)
