"""TRL SFT: teach the model to emit the kept System-2 answer directly (input → answer)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def pick_pad_token(tokenizer: Any) -> str | None:
    """A pad token distinct from EOS, or ``None`` if the tokenizer's own is fine.

    pad == eos invites collators that mask padding by id to mask EOS out of the loss, and the
    model never learns to stop; SmolLM2 ships exactly that, so reuse its unused ``unk`` instead.
    """
    if tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token:
        return None
    for cand in (tokenizer.unk_token, "<|endoftext|>", "<pad>"):
        if cand and cand != tokenizer.eos_token and cand in tokenizer.get_vocab():
            return cand
    raise ValueError("no pad token distinct from EOS in the vocabulary; set train.sft.pad_token")


def train(examples: list[dict[str, Any]], base_model: str, cfg: dict[str, Any], out_dir: Path,
          work_dir: Path | None = None) -> dict[str, Any]:
    """Fine-tune ``base_model`` on prompt/completion chats and save a loadable model in ``out_dir``.

    ``cfg["sft"]`` goes to ``trl.SFTConfig`` unchanged; ``cfg["lora"]`` (if set) to
    ``peft.LoraConfig`` and the adapter is merged so vLLM loads the result like any model.
    Checkpoints (if ``save_strategy`` asks for them) go to ``work_dir`` and a rerun resumes.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer

    sft = dict(cfg.get("sft") or {})
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    pad = sft.pop("pad_token", None) or pick_pad_token(tokenizer)
    if pad is not None:
        tokenizer.pad_token = pad
    if sft.get("bf16") is None:  # TRL defaults to bf16, which CPUs reject
        sft["bf16"] = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    work = Path(work_dir or out_dir / "_work")
    args = SFTConfig(output_dir=str(work), **sft)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=_dtype(cfg.get("dtype", "float32")))
    peft_config = None
    if cfg.get("lora"):
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **cfg["lora"])
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    last = get_last_checkpoint(str(work)) if work.is_dir() else None
    if last:
        log.info("resuming training from %s", last)
    result = trainer.train(resume_from_checkpoint=last)
    model = trainer.model
    if peft_config is not None:
        model = model.merge_and_unload()
    model = model.to(_dtype(cfg.get("save_dtype", "bfloat16")))
    model.save_pretrained(out_dir)
    trainer.processing_class.save_pretrained(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    metrics = dict(result.metrics)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    del trainer, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"n_examples": len(examples), "train_loss": metrics.get("train_loss"),
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "train_runtime_s": metrics.get("train_runtime"), "steps": result.global_step}


def _dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}[name]
