"""pick_pad_token never raises: a tokenizer with no pad, no unk and no spare token pads with EOS,
which TRL's collator masks by length (tests/test_train_stage.py checks the collator)."""

from __future__ import annotations

from types import SimpleNamespace

from s2distill.train import pick_pad_token


def tok(pad, unk, vocab):
    return SimpleNamespace(pad_token=pad, unk_token=unk, eos_token="<eos>", get_vocab=lambda: dict.fromkeys(vocab, 0))


def test_no_pad_no_unk_no_spare_token_keeps_eos():
    assert pick_pad_token(tok(None, None, ["<eos>", "a", "b"])) is None


def test_prefers_a_distinct_token_when_the_vocabulary_has_one():
    assert pick_pad_token(tok("<eos>", "<unk>", ["<eos>", "<unk>"])) == "<unk>"
    assert pick_pad_token(tok(None, None, ["<eos>", "<|finetune_right_pad_id|>"])) == "<|finetune_right_pad_id|>"
    assert pick_pad_token(tok("<pad>", None, ["<eos>", "<pad>"])) is None  # its own distinct pad is fine
