"""TRL SFT: teach the model to emit the kept System-2 answer directly (input → answer).

``train`` runs in every training process: in the pipeline's own process for a 1-process CPU run,
or under ``accelerate launch`` (see ``launch.py``) through this module's entry point::

    accelerate launch --config_file conf/accelerate/multi_gpu.yaml --num_processes 8 \\
        -m s2distill.train --data sft.jsonl --model <base> --config train.json --out <dir> --work <dir>

Only the main process writes: ``trainer.save_model()`` (which gathers a sharded FSDP / ZeRO-3
model) and ``training_info.json``. The parent checks the folder and commits it once.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INFO_FILE = "training_info.json"
#: pure low-precision weights keep no fp32 master copy: an Adam step of size ~lr changes a weight
#: only when lr exceeds about half the spacing of the format near that weight (bf16: 2^-8 relative,
#: ~8e-5 at |w| = 0.02), so small learning rates round away and the model silently stays the same
LOW_PRECISION = ("bfloat16", "float16")


def pick_pad_token(tokenizer: Any) -> str | None:
    """A pad token distinct from EOS where the vocabulary has one, else ``None`` (keep EOS).

    TRL's collator masks padding by *length* (labels are padded with -100, the attention mask
    with 0), so pad == EOS never hides the EOS label; a distinct pad only makes saved configs and
    batches easier to read. A tokenizer with neither pad nor unk (Llama-3's) trains with EOS as pad.
    """
    if tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token:
        return None
    for cand in (tokenizer.unk_token, "<|endoftext|>", "<pad>", "<|finetune_right_pad_id|>"):
        if cand and cand != tokenizer.eos_token and cand in tokenizer.get_vocab():
            return cand
    return None


def precision_warning(cfg: dict[str, Any]) -> str | None:
    """The warning for training pure low-precision weights (no fp32 master copy), or None."""
    dtype = cfg.get("dtype", "float32")
    if dtype not in LOW_PRECISION:
        return None
    lr = (cfg.get("sft") or {}).get("learning_rate")
    return (f"train.dtype={dtype}: weights are trained in {dtype} with no fp32 master copy, so updates "
            f"smaller than the format's spacing round away (learning_rate={lr}); the default "
            "train.dtype=float32 with bf16 mixed precision (train.sft.bf16) keeps them")


def train(examples: list[dict[str, Any]], base_model: str, cfg: dict[str, Any], out_dir: Path,
          work_dir: Path | None = None, teacher: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Fine-tune ``base_model`` on prompt/completion chats; the main process saves to ``out_dir``.

    With ``cfg["kd"]`` (``train=kd``) ``teacher`` holds, row for row, the teacher's top-k at each
    completion token, and the loss adds the soft-target divergence (``kd_trainer.py``).

    ``cfg["sft"]`` goes to ``trl.SFTConfig`` unchanged; ``cfg["lora"]`` (if set) to
    ``peft.LoraConfig``: the adapter is saved as is (served by vLLM as a LoRA adapter), or merged
    into the base weights with ``cfg["merge"]``. Checkpoints (if ``save_strategy`` asks for them)
    go to ``work_dir`` and a rerun resumes.
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
    if sft.get("bf16") is None:  # bf16 autocast over fp32 weights where the GPU has it; CPUs: off
        sft["bf16"] = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if not torch.cuda.is_available():
        sft.setdefault("use_cpu", True)  # (bf16 autocast on a CPU is only allowed so)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun's CPU processes: DDP over gloo
            sft.setdefault("ddp_backend", "gloo")
    if warning := precision_warning(cfg):
        log.warning(warning)
    work = Path(work_dir or out_dir / "_work")
    args = SFTConfig(output_dir=str(work), **sft)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=_dtype(cfg.get("dtype", "float32")))
    peft_config = None
    if cfg.get("lora"):
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="CAUSAL_LM", **cfg["lora"])
    kd = cfg.get("kd")
    if kd:
        from s2distill.kd_trainer import KDTrainer

        if teacher is None or len(teacher) != len(examples):
            raise RuntimeError(f"train=kd: {len(teacher or [])} teacher rows for {len(examples)} examples")
        rows = [{**ex, **t} for ex, t in zip(examples, teacher)]
        trainer = KDTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                            peft_config=peft_config, kd=kd)
    else:
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples),
                             processing_class=tokenizer, peft_config=peft_config)
    if len(trainer.train_dataset) != len(examples):  # sft_data.fit() makes TRL's truncation a no-op
        raise RuntimeError(f"TRL dropped {len(examples) - len(trainer.train_dataset)} examples at "
                           "preparation: they were not fitted to max_length")
    last = get_last_checkpoint(str(work)) if work.is_dir() else None
    if last:
        log.info("resuming training from %s", last)
    result = trainer.train(resume_from_checkpoint=last)
    acc = trainer.accelerator
    sharded = str(acc.distributed_type).endswith(("FSDP", "DEEPSPEED"))
    if not sharded and not (peft_config is not None and cfg.get("merge")):
        acc.unwrap_model(trainer.model).to(_dtype(cfg.get("save_dtype", "bfloat16")))
    trainer.save_model(str(out_dir))  # every rank calls it (sharded weights are gathered); main writes
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    info = {"n_examples": len(examples), "train_loss": result.metrics.get("train_loss"),
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "losses": losses, "train_runtime_s": result.metrics.get("train_runtime"),
            "steps": result.global_step, "world_size": int(trainer.args.world_size),
            "mixed_precision": "bf16" if args.bf16 else ("fp16" if args.fp16 else "no"),
            "adapter": peft_config is not None and not cfg.get("merge")}
    if kd:
        hist = trainer.state.log_history
        info.update(kd={k: kd.get(k) for k in ("alpha", "temperature", "divergence", "beta", "top_k", "mode", "context")},
                    ce=[h["ce"] for h in hist if "ce" in h],
                    kd_divergence=[h["kd_divergence"] for h in hist if "kd_divergence" in h])
    main = acc.is_main_process
    acc.wait_for_everyone()
    # the accelerator lists the model it prepared, and accelerate's forward wrapper makes a
    # reference cycle (model -> wrapped forward -> model): drop both, collect, and the weights go
    del trainer, model, result, acc
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if main:
        if peft_config is not None and cfg.get("merge"):
            _merge(base_model, out_dir, _dtype(cfg.get("save_dtype", "bfloat16")))
        shutil.rmtree(work, ignore_errors=True)
        (Path(out_dir) / INFO_FILE).write_text(json.dumps(info, indent=1))
    return info


def _merge(base_model: str, out_dir: Path, dtype: Any) -> None:
    """Replace the adapter saved in ``out_dir`` by base + adapter merged (a plain model folder)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=_dtype("float32"))
    merged = PeftModel.from_pretrained(base, str(out_dir)).merge_and_unload().to(dtype)
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        (Path(out_dir) / name).unlink(missing_ok=True)
    merged.save_pretrained(out_dir)
    del base, merged
    gc.collect()


def _dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}[name]


def main(argv: list[str] | None = None) -> None:
    """Entry point of one training process (``accelerate launch -m s2distill.train ...``)."""
    ap = argparse.ArgumentParser(prog="python -m s2distill.train", description=main.__doc__)
    ap.add_argument("--data", required=True, help="SFT examples, JSONL of {prompt, completion}")
    ap.add_argument("--model", required=True, help="base model folder or hub id")
    ap.add_argument("--config", required=True, help="JSON of the train config (sft, lora, dtype, ...)")
    ap.add_argument("--out", required=True, help="folder the main process saves the model to")
    ap.add_argument("--work", default=None, help="checkpoint folder (resumed from)")
    ap.add_argument("--teacher", default=None, help="train=kd: JSONL of the teacher's top-k, row for row")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    from s2distill.artifacts import read_jsonl

    examples = read_jsonl(Path(a.data))
    cfg = json.loads(Path(a.config).read_text())
    teacher = read_jsonl(Path(a.teacher)) if a.teacher else None
    train(examples, a.model, cfg, Path(a.out), Path(a.work) if a.work else None, teacher)


if __name__ == "__main__":
    main()
