"""SFT examples over max_length lose the middle of their prompt, or are dropped, and are counted;
the completion (the answer and its EOS) is never cut. Real bundled tokenizer."""

from __future__ import annotations

import pytest

from s2distill.errors import UserError
from s2distill.sft_data import ELISION, fit, n_tokens


@pytest.fixture(scope="module")
def tok(bundled_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_model.path)


def ex(question: str, answer: str = "B") -> dict:
    return {"prompt": [{"role": "user", "content": question}], "completion": [{"role": "assistant", "content": answer}]}


LONG = "Question: which response is better? " + "Response A rambles on about nothing. " * 60 + "Answer with A or B."


def test_short_examples_pass_untouched(tok):
    short = [ex("Is the coin heads up?", "no")]
    assert fit(short, tok, 64) .examples == short and fit(short, tok, 64).n_truncated == 0


def test_over_length_prompt_loses_its_middle_never_the_answer(tok):
    long = ex(LONG)
    assert n_tokens(tok, long) > 128
    out = fit([long, ex("short?")], tok, 128)
    assert (out.n_truncated, out.n_dropped, len(out.examples)) == (1, 0, 2)
    cut = out.examples[0]
    assert n_tokens(tok, cut) <= 128
    assert cut["completion"] == long["completion"]  # the answer is intact
    text = cut["prompt"][0]["content"]
    assert text.startswith("Question: which response is better?") and text.endswith("Answer with A or B.")
    assert ELISION in text
    ids = tok.apply_chat_template(cut["prompt"] + cut["completion"], tokenize=True, return_dict=True)["input_ids"]
    assert tok.eos_token_id in ids[-3:]  # EOS of the completion is inside the window


def test_drop_mode_and_impossible_examples_are_dropped_and_counted(tok):
    out = fit([ex(LONG), ex("ok?")], tok, 128, mode="drop")
    assert (out.n_truncated, out.n_dropped, len(out.examples)) == (0, 1, 1)
    huge_answer = ex("Q?", "word " * 300)  # no prompt cut can make room for this completion
    out = fit([huge_answer], tok, 64)
    assert (out.n_truncated, out.n_dropped, out.examples) == (0, 1, [])


def test_unknown_mode_is_a_user_error(tok):
    with pytest.raises(UserError, match="train.truncation"):
        fit([], tok, 10, mode="left")


def test_chat_template_kwargs_ride_with_each_example_and_shape_its_tokens(bundled_model):
    # Qwen3-style: the template reads enable_thinking; TRL's SFTTrainer passes each example's
    # chat_template_kwargs to apply_chat_template, and the length check here does the same
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from s2distill.sft_data import sft_examples

    tok = AutoTokenizer.from_pretrained(bundled_model.path)
    tok.chat_template = ("{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
                         "{% if enable_thinking %}<think> a long hidden preamble </think>{% endif %}")
    task = SimpleNamespace(direct_prompt=lambda r: r["question"], target=lambda a: a)
    rows = [{"id": "train-0", "question": "Is it?"}, {"id": "train-1", "question": "Or not?"}]
    decisions = [SimpleNamespace(kept=True, answer="yes"), SimpleNamespace(kept=False, answer="no")]
    thinking = sft_examples(task, rows, decisions, {"enable_thinking": True})
    plain = sft_examples(task, rows, decisions)
    assert [e["id"] for e in thinking] == ["train-0"] and thinking[0]["chat_template_kwargs"] == {"enable_thinking": True}
    assert "chat_template_kwargs" not in plain[0]
    assert n_tokens(tok, thinking[0]) > n_tokens(tok, plain[0])
