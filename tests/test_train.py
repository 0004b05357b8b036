"""Real TRL SFT on the bundled model: completion-only loss, EOS learned, pad != eos, loadable output."""

from __future__ import annotations

import json

import pytest

from s2distill.train import pick_pad_token, train

pytestmark = pytest.mark.slow


def examples(n=8):
    return [
        {"prompt": [{"role": "user", "content": f"A coin is heads up. Person{i} flips the coin. Is the coin still heads up?"}],
         "completion": [{"role": "assistant", "content": "no"}]}
        for i in range(n)
    ]


def test_pad_token_is_never_eos(bundled_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(bundled_model.path)
    assert tok.pad_token == tok.eos_token  # SmolLM2 ships pad == eos ...
    pad = pick_pad_token(tok)
    assert pad is not None and pad != tok.eos_token  # ... which training replaces


def test_eos_is_in_the_completion_labels(bundled_model):
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(bundled_model.path)
    tok.pad_token = pick_pad_token(tok)
    args = SFTConfig(output_dir="/tmp/s2d-unused", report_to="none", bf16=False, max_steps=0)
    trainer = SFTTrainer(model=bundled_model.path, args=args, train_dataset=Dataset.from_list(examples(2)),
                         processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    labels = batch["labels"][0].tolist()
    learned = [t for t in labels if t != -100]
    eos = tok.convert_tokens_to_ids(tok.eos_token)
    assert eos in learned  # the model learns to stop (ChatML puts a newline after <|im_end|>)
    assert tok.decode(learned[: learned.index(eos)]).strip() == "no"  # only the completion is learned
    assert tok.pad_token_id != eos


def test_sft_trains_and_saves_a_loadable_model(bundled_model, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = {"dtype": "float32", "save_dtype": "bfloat16",
           "sft": {"num_train_epochs": 2, "per_device_train_batch_size": 4, "learning_rate": 5e-5,
                   "logging_steps": 1, "report_to": "none", "save_strategy": "no", "max_length": 128}}
    info = train(examples(), bundled_model.path, cfg, tmp_path / "model")
    assert info["n_examples"] == 8 and info["steps"] == 4
    assert info["last_loss"] < info["first_loss"]  # it learns the constant answer
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["pad_token_id"] != saved.get("eos_token_id")
    AutoModelForCausalLM.from_pretrained(tmp_path / "model")


def test_lora_trains_and_merges(bundled_model, tmp_path):
    cfg = {"dtype": "float32", "merge": True, "lora": {"r": 4, "lora_alpha": 8, "target_modules": "all-linear"},
           "sft": {"max_steps": 2, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1,
                   "report_to": "none", "save_strategy": "no"}}
    info = train(examples(), bundled_model.path, cfg, tmp_path / "model")
    assert info["steps"] == 2
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files  # merged, vLLM-loadable
