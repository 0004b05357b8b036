"""The distilled arm of train=lora: served as an adapter vs merged into a second model.

Each path runs in a fresh interpreter on the bundled model with the same LoRA adapter (r=16,
all linear layers) and the same evaluation job (64 chats, greedy, 32 tokens):

- merged: merge base + adapter and save (what train.merge=true does), start an engine on the
  merged folder, generate;
- adapter, live engine (CPU default): the base model's engine (started with enable_lora for
  S1/S2) generates through the adapter: no merge, no second start;
- adapter, fresh engine (isolate=true, the GPU default): start a LoRA-enabled engine on the
  base model, generate through the adapter;

plus, for isolate=auto's choice on CPU, the start of the same engine in a child process.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/lora_adapter.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from common import bundled_model_path, chat_prompts, record, run_script

JOB = {"chats": 64, "max_tokens": 32}
ENGINE = {"name": "vllm", "dtype": "auto", "max_model_len": 1024, "seed": 0, "compile": False, "use_tqdm": False}


def make_adapter(base: str, out: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear",
                                            init_lora_weights=False))
    peft.save_pretrained(out)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(base).save_pretrained(out)


def job(mode: str, base: str, adapter: str, work: str) -> dict:
    from s2distill.engines import Sampling, make_engine
    from s2distill.engines.child import ChildEngine

    chats = chat_prompts(JOB["chats"])
    samp = Sampling(temperature=0.0, top_p=1.0, max_tokens=JOB["max_tokens"])
    t = {}
    t0 = time.perf_counter()
    if mode == "merged":
        import torch

        from s2distill.train import _merge

        folder = Path(work) / "merged"
        folder.mkdir()
        for f in Path(adapter).iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
        _merge(base, folder, torch.bfloat16)
        t["merge_save_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        engine = make_engine(str(folder), ENGINE)
        t["start_s"] = time.perf_counter() - t1
        gen = lambda: engine.generate(chats, 1, samp)  # noqa: E731
    elif mode in ("adapter_live", "adapter_fresh"):
        engine = make_engine(base, {**ENGINE, "max_lora_rank": 16})
        t["start_s"] = time.perf_counter() - t0
        gen = lambda: engine.generate(chats, 1, samp, adapter=adapter)  # noqa: E731
    elif mode in ("start_inprocess", "start_child"):
        engine = make_engine(base, ENGINE) if mode == "start_inprocess" else ChildEngine(base, ENGINE)
        t["start_s"] = time.perf_counter() - t0
        engine.generate(chats[:1], 1, samp)
        engine.close()
        return t
    t1 = time.perf_counter()
    out = gen()
    t["generate_s"] = time.perf_counter() - t1
    t["tokens"] = sum(c.n_tokens for cs in out for c in cs)
    # what the distilled arm costs on top of what the run has anyway: the live engine was
    # started for the base model's arms, so its start is not the distilled arm's
    t["arm_s"] = time.perf_counter() - t0 - (t["start_s"] if mode == "adapter_live" else 0)
    engine.close()
    return t


def main() -> None:
    base = bundled_model_path()
    with tempfile.TemporaryDirectory() as d:
        adapter = Path(d) / "adapter"
        make_adapter(base, adapter)
        runs = {m: run_script("lora_adapter.py", "--job", m, base, str(adapter), d)
                for m in ("merged", "adapter_live", "adapter_fresh", "start_inprocess", "start_child")}
    r = {m: {k: round(v, 2) if isinstance(v, float) else v for k, v in t.items()} for m, t in runs.items()}
    saved = r["merged"]["arm_s"] - r["adapter_live"]["arm_s"]
    record("lora_adapter", {
        "lora_arm_s_merged": r["merged"]["arm_s"],
        "lora_arm_s_adapter": r["adapter_live"]["arm_s"],
        "lora_arm_s_saved": round(saved, 2),
        "isolate_start_s": r["start_child"]["start_s"],
        "inprocess_start_s": r["start_inprocess"]["start_s"],
    }, {"job": JOB, "engine": ENGINE, "runs": r, "notes": [
        "distilled-arm wall time, merge/start/generate: merged = merge+save "
        f"{r['merged']['merge_save_s']} s + start {r['merged']['start_s']} s + generate {r['merged']['generate_s']} s; "
        f"adapter on the live base engine = generate {r['adapter_live']['generate_s']} s "
        f"(that engine's LoRA-enabled start, {r['adapter_live']['start_s']} s, is paid for S1/S2 anyway); "
        f"adapter on a fresh engine (isolate) = start {r['adapter_fresh']['start_s']} s + generate "
        f"{r['adapter_fresh']['generate_s']} s.",
        f"engine start in this process {r['start_inprocess']['start_s']} s vs in a child process "
        f"{r['start_child']['start_s']} s: isolate=auto keeps CPU engines in process.",
    ]})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--job"]:
        print(json.dumps(job(*sys.argv[2:6])))
    else:
        main()
