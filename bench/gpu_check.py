"""The real-scale path on a CUDA machine, at tiny size: never in CI (no GPU there).

With a tiny random model built from the bundled model's config and tokenizer (nothing
downloaded), it runs, each part only where its packages are installed:

1. the HF engine on CUDA (transformers);
2. the training stage as the pipeline launches it (accelerate launch of s2distill.train, bf16
   mixed precision over fp32 weights; TRL + datasets), checking that the weights moved and that
   the saved model loads;
3. the distilled arm as a LoRA adapter on a vLLM engine (vLLM), and a vLLM engine in a child
   process whose exit hands the GPU memory back.

It writes bench/gpu_check.json, naming every part skipped and the package it lacked.

    python bench/gpu_check.py [--base <folder with config.json + tokenizer files>]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
OUT = BENCH / "gpu_check.json"


def missing(*packages: str) -> list[str]:
    return [p for p in packages if importlib.util.find_spec(p) is None]


def tiny_model(base: str, out: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    cfg = AutoConfig.from_pretrained(base)
    cfg.update({"num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 256,
                "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def chats(n: int = 8) -> list:
    return [[{"role": "user", "content": f"A coin is heads up. Person{i} flips it. Still heads up?"}] for i in range(n)]


def part_hf(model: Path, work: Path) -> dict:
    from s2distill.engines import Sampling
    from s2distill.engines.hf import HFEngine

    engine = HFEngine(str(model), dtype="bfloat16")
    t0 = time.perf_counter()
    out = engine.generate(chats(), 2, Sampling(temperature=0.8, top_p=0.95, max_tokens=16))
    return {"device": engine.device, "completions": sum(len(c) for c in out), "s": round(time.perf_counter() - t0, 2)}


def part_train(model: Path, work: Path) -> dict:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from s2distill import launch
    from s2distill.artifacts import write_jsonl

    examples = [{"prompt": c, "completion": [{"role": "assistant", "content": "no"}]} for c in chats(16)]
    data, spec, out = work / "sft.jsonl", work / "train.json", work / "trained"
    write_jsonl(data, examples)
    cfg = {"dtype": "float32", "save_dtype": "float32", "num_processes": max(1, torch.cuda.device_count()),
           "sft": {"max_steps": 4, "per_device_train_batch_size": 4, "learning_rate": 1e-6, "bf16": True,
                   "report_to": "none", "save_strategy": "no", "logging_steps": 1}}
    spec.write_text(json.dumps(cfg))
    t0 = time.perf_counter()
    launch.run(launch.command(["--data", str(data), "--model", str(model), "--config", str(spec), "--out", str(out)],
                              cfg), work / "train.log")
    info = json.loads((out / "training_info.json").read_text())
    layer = "model.layers.0.self_attn.q_proj.weight"
    moved = (load_file(out / "model.safetensors")[layer] != load_file(model / "model.safetensors")[layer])
    AutoModelForCausalLM.from_pretrained(out)
    return {"s": round(time.perf_counter() - t0, 2), "world_size": info["world_size"],
            "mixed_precision": info["mixed_precision"], "losses": info["losses"],
            "fraction_of_weights_moved_at_lr_1e-6": round(moved.float().mean().item(), 4)}


def part_vllm(model: Path, work: Path) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from s2distill.engines import Sampling
    from s2distill.engines.child import ChildEngine

    adapter = work / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(model), LoraConfig(
        task_type="CAUSAL_LM", r=8, target_modules="all-linear", init_lora_weights=False)).save_pretrained(adapter)
    cfg = {"name": "vllm", "dtype": "bfloat16", "max_model_len": 512, "gpu_memory_utilization": 0.3,
           "compile": False, "max_lora_rank": 8, "use_tqdm": False}
    free_before = torch.cuda.mem_get_info()[0]
    engine = ChildEngine(str(model), cfg)
    samp = Sampling(temperature=0.0, top_p=1.0, max_tokens=8)
    base = engine.generate(chats(), 1, samp)
    lora = engine.generate(chats(), 1, samp, adapter=str(adapter))
    held = free_before - torch.cuda.mem_get_info()[0]
    engine.close()
    back = free_before - torch.cuda.mem_get_info()[0]
    return {"base_vs_adapter_differ": [c[0].text for c in base] != [c[0].text for c in lora],
            "gpu_bytes_held_by_engine": int(held), "gpu_bytes_held_after_close": int(back)}


PARTS = {"hf_engine": (part_hf, ("torch", "transformers")),
         "training_stage": (part_train, ("torch", "transformers", "accelerate", "trl", "datasets", "safetensors")),
         "vllm_lora_adapter_and_child_engine": (part_vllm, ("torch", "vllm", "peft"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="folder with the bundled model's config.json and tokenizer (default: bundled)")
    a = ap.parse_args()
    import torch

    report: dict = {"machine": platform.node(), "cuda": torch.cuda.is_available(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "torch": torch.__version__, "measured": time.strftime("%Y-%m-%d %H:%M"), "parts": {}}
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here (this check is for a GPU machine)")
    if a.base:
        base = a.base
    else:
        from s2distill.models import resolve

        base = resolve("bundled:SmolLM2-135M-Instruct").path
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        model = tiny_model(base, work / "tiny")
        for name, (fn, needs) in PARTS.items():
            if lacking := missing(*needs):
                report["parts"][name] = {"skipped": f"missing packages: {', '.join(lacking)}"}
                continue
            try:
                report["parts"][name] = {"ok": True, **fn(model, work)}
            except Exception as e:  # recorded, and the other parts still run
                report["parts"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                                         "traceback": traceback.format_exc()[-3000:]}
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
