"""The real vLLM engine with the bundled model: n samples per chat, token counts, methods' steps."""

from __future__ import annotations

import pytest

from s2distill.engines.base import Sampling, user
from s2distill.methods import METHODS
from s2distill.tasks import TASKS
from tests.conftest import Recording, answer_in_text

pytestmark = pytest.mark.slow


def test_generates_n_completions_with_token_counts(vllm_engine):
    outs = vllm_engine.generate([user("What is the capital of France?"), user("Say hi.")], 3,
                                Sampling(temperature=0.8, max_tokens=16))
    assert len(outs) == 2 and all(len(cs) == 3 for cs in outs)
    for cs in outs:
        for c in cs:
            assert c.text.strip() and 1 <= c.n_tokens <= 16


def test_greedy_answer_is_deterministic_and_sensible(vllm_engine):
    chats = [user("What is the capital of France?")]
    a = vllm_engine.generate(chats, 1, Sampling(temperature=0.0, max_tokens=24))[0][0]
    b = vllm_engine.generate(chats, 1, Sampling(temperature=0.0, max_tokens=24))[0][0]
    assert a == b and "Paris" in a.text


def test_seeded_call_ignores_what_the_engine_generated_before(vllm_engine):
    """A seeded call's samples depend on its seed and chats only (what makes a resumed run equal
    an uninterrupted one), and prompts long enough to need several prefill steps do not crash
    (vLLM's CPU generator cannot rewind a chunked prefill's draw: chunking is off on CPU)."""
    chats = [user(f"Tell me a short story about the number {i}.") for i in range(3)]
    # 10 prompts of ~450 tokens: > 4096 prompt tokens, more than one step can take
    long = [user(f"Text {i}: " + "the coin was flipped and the coin was not flipped " * 45) for i in range(10)]
    seeded = Sampling(temperature=1.0, top_p=1.0, max_tokens=12, seed=123)
    first = vllm_engine.generate(chats, 2, seeded)
    vllm_engine.generate(long, 1, seeded.replace(seed=5, max_tokens=2))  # seeded, chunk-sized prefill
    vllm_engine.generate(chats, 3, seeded.replace(seed=None))  # advances the engine's own stream
    again = vllm_engine.generate(chats, 2, seeded)
    assert [[c.text for c in cs] for cs in again] == [[c.text for c in cs] for cs in first]
    other = vllm_engine.generate(chats, 2, seeded.replace(seed=124))
    assert [[c.text for c in cs] for cs in other] != [[c.text for c in cs] for cs in first]


@pytest.mark.parametrize("method", ["system1", "rar", "rar_1step", "cot"])
@pytest.mark.parametrize("task", ["coin_flip", "last_letter"])
def test_methods_run_through_the_real_engine(vllm_engine, method, task):
    t = TASKS.get(task)(n_train=2, n_test=2, seed=0)
    rows = t.unlabeled(t.load()["train"]).to_list()
    m = METHODS.get(method)(max_tokens={k: 24 for k in METHODS.get(method).default_max_tokens})
    engine = Recording(vllm_engine)
    traces = m.run(rows, t, engine, 2, Sampling(temperature=0.8, max_tokens=24))
    assert len(traces) == 2 and all(len(ts) == 2 for ts in traces)
    steps = len(m.default_max_tokens)
    assert sum(tr.tokens for ts in traces for tr in ts) == engine.tokens()  # every step's tokens, once
    final = [c.text for cs in engine.calls[-1][1] for c in cs]  # the last step's completions
    for ts in traces:
        for tr in ts:
            assert 1 <= tr.tokens <= 24 * steps
            assert tr.text in final  # the answer is read from the final step, not an intermediate one
            assert tr.answer is None or answer_in_text(tr.answer, tr.text)
            if method == "rar":
                assert tr.steps["rephrased"]  # intermediate kept for inspection, not the answer


@pytest.mark.slow
def test_closing_a_second_inprocess_engine_leaves_the_first_working(vllm_engine, bundled_model):
    """Engine cores in one process share vLLM's global parallel state; closing one engine (e.g. a
    job's, run in-process by Hydra's basic launcher) must not break another still in use (the CI
    failure "pipeline model parallel group is not initialized")."""
    from s2distill.engines.base import Sampling
    from s2distill.engines.vllm import VLLMEngine

    chat = [[{"role": "user", "content": "What is 2 + 2?"}]]
    greedy = Sampling(temperature=0.0, max_tokens=8)
    before = vllm_engine.generate(chat, 1, greedy)[0][0].text
    other = VLLMEngine(bundled_model.path, dtype="auto", max_model_len=512, seed=1, use_tqdm=False)
    assert other.generate(chat, 1, greedy)[0][0].text == before
    other.close()
    assert vllm_engine.generate(chat, 1, greedy)[0][0].text == before
