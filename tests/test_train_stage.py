"""The training stage at real scale's settings, on tiny random models built from the bundled config
(nothing downloaded): precision that moves weights, tokenizers without pad/unk, truncation that
never cuts the answer, no model left behind in the parent process."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from s2distill.train import pick_pad_token, precision_warning, train
from tests.conftest import REPO, make_tiny_model

pytestmark = pytest.mark.slow

LAYER = "model.layers.0.self_attn.q_proj.weight"


def examples(n=8, answer="no"):
    return [{"prompt": [{"role": "user", "content": f"Q{i}: a coin is heads up; Person{i} flips it. Still heads up?"}],
             "completion": [{"role": "assistant", "content": answer}]} for i in range(n)]


@pytest.fixture(scope="module")
def no_pad_model(bundled_model, tmp_path_factory) -> Path:
    """Like Llama-3's tokenizer: no pad token and no unk token."""
    return make_tiny_model(bundled_model.path, tmp_path_factory.mktemp("nopad") / "model", strip_tokens=("pad", "unk"))


def _changed_fraction(dtype: str, tiny: Path, out: Path) -> float:
    """Share of LAYER's weights that 2 steps at paper_grid's train settings change (compared in
    the training dtype; saved in fp32 so that the save does not round the update away)."""
    import torch
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from safetensors.torch import load_file



    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        grid = compose("config", overrides=["+experiment=paper_grid"])
    cfg = OmegaConf.to_container(grid.train, resolve=True)
    assert cfg["sft"]["learning_rate"] <= 1e-6 and cfg["sft"]["bf16"] is True  # what is being tested
    cfg["sft"].update(max_steps=2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                      save_strategy="no", report_to="none")
    cfg.update(dtype=dtype if dtype != "paper_grid" else cfg["dtype"], save_dtype="float32")
    train(examples(), str(tiny), cfg, out)
    tdt = getattr(torch, cfg["dtype"])
    before = load_file(tiny / "model.safetensors")[LAYER].to(tdt).float()
    after = load_file(out / "model.safetensors")[LAYER].float()
    return ((after - before).abs() > 0).float().mean().item()


def test_paper_grid_precision_moves_the_weights(tiny_model, tmp_path):
    """fp32 master weights + bf16 autocast at lr 1e-6 change every weight of the layer; pure bf16
    weights (paper_grid's old `train.dtype: bfloat16`) leave ~98% of them where they were."""
    assert _changed_fraction("paper_grid", tiny_model, tmp_path / "grid") > 0.9
    assert _changed_fraction("bfloat16", tiny_model, tmp_path / "bf16") < 0.1
    assert precision_warning({"dtype": "bfloat16", "sft": {"learning_rate": 1e-6}})
    assert precision_warning({"dtype": "float32"}) is None


def test_no_pad_no_unk_tokenizer_pads_by_length_and_learns_eos(no_pad_model, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(no_pad_model)
    assert tok.pad_token is None and tok.unk_token is None
    assert pick_pad_token(tok) != tok.eos_token  # never raises (a spare token of the vocabulary here)
    # TRL's collator pads by length: with pad == EOS, the EOS label of every completion is kept
    tok.pad_token = tok.eos_token
    data = [examples(1)[0], {**examples(1)[0], "prompt": [{"role": "user", "content": "A much longer question " * 5}]}]
    args = SFTConfig(output_dir=str(tmp_path / "unused"), report_to="none", max_steps=0, use_cpu=True)
    trainer = SFTTrainer(model=str(no_pad_model), args=args, train_dataset=Dataset.from_list(data), processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    eos = tok.eos_token_id
    short = batch["labels"][0].tolist()
    real = int(batch["attention_mask"][0].sum())
    assert real < len(short) and short[real:] == [-100] * (len(short) - real)  # padding: no loss
    learned = [t for t in short if t != -100]
    assert eos in learned and tok.decode(learned[: learned.index(eos)]).strip() == "no"
    del trainer

    # trained end to end, the model answers and stops right after the answer
    cfg = {"dtype": "float32", "save_dtype": "float32",
           "sft": {"num_train_epochs": 25, "per_device_train_batch_size": 8, "learning_rate": 3e-3, "lr_scheduler_type": "constant",
                   "report_to": "none", "save_strategy": "no", "logging_steps": 10}}
    info = train(examples(8), str(no_pad_model), cfg, tmp_path / "out")
    assert info["last_loss"] < info["first_loss"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    prompt = tok.apply_chat_template(examples(1)[0]["prompt"], add_generation_prompt=True, return_tensors="pt",
                                     return_dict=True)
    out = model.generate(**prompt, max_new_tokens=6, do_sample=False, pad_token_id=eos)
    new = out[0, prompt["input_ids"].shape[1]:].tolist()
    assert eos in new and tok.decode(new[: new.index(eos)]).strip() == "no", tok.decode(new)


def test_train_stage_leaves_no_model_in_the_process(compose, tiny_model):
    """In-process training (1 CPU process): once the stage returns, no model object is left, not
    even one only a reference cycle holds (checked before any collection of ours)."""
    from s2distill import pipeline
    from s2distill.filters.base import Decision

    ctx = pipeline.build(compose("task.n_train=4", "task.n_test=2", f"model.name_or_path={tiny_model}",
                                 "+train.sft.max_steps=2", "train.sft.per_device_train_batch_size=2"), None)
    rows = ctx.task.unlabeled(ctx.task.load()["train"]).to_list()
    decisions = [Decision(True, "yes" if i % 2 else "no", "majority") for i in range(len(rows))]
    def models() -> list:
        return [o for o in gc.get_objects() if type(o).__name__.endswith("ForCausalLM")]

    data = pipeline.sft_data(ctx, rows, decisions, "filt")
    gc.collect()
    earlier = models()  # e.g. the fixture's, made before this test
    gc.disable()  # nothing may be collected for the stage after it returns
    try:
        out, _, info = pipeline.train(ctx, data)
        alive = [type(o).__name__ for o in models() if not any(o is e for e in earlier)]
    finally:
        del earlier
        gc.enable()
    assert alive == []
    assert info["world_size"] == 1 and info["n_examples"] == 4 and (out / "model.safetensors").is_file()
    assert json.loads((out / "training_info.json").read_text())["steps"] == 2
