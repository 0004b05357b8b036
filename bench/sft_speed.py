"""SFT throughput: padded batches vs TRL's padding-free batches vs packing (same data, same steps).

Data: the distillation SFT examples the pipeline builds (System-1 prompt → short final answer)
for ``--n`` coin_flip inputs (the default task: prompts of similar length) and, to show where
padding costs more, for gsm8k questions (lengths vary several-fold). Settings are
conf/train/full.yaml's (fp32, batch 8, completion-only loss) with one epoch; each variant runs
in its own process through ``s2distill.train.train``. Throughput is real (non-pad) tokens
trained per second of ``train_runtime``: every variant trains on exactly the same tokens.
``padding_free`` keeps the batches (same 8 examples per step, same number of steps) and
flattens each into one row; ``packing`` (TRL's bfd, also padding-free) regroups the examples
into rows of up to ``max_length`` tokens, so it takes fewer, larger steps.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/sft_speed.py
"""

from __future__ import annotations

import argparse
import json

from common import REPO, bundled_model_path, record, run_script


def one(task_name: str, n: int, options: dict) -> dict:
    """Train one variant in this process and return its throughput."""
    import tempfile
    from pathlib import Path

    from omegaconf import OmegaConf
    from transformers import AutoTokenizer

    from s2distill import pipeline
    from s2distill.filters.base import Decision
    from s2distill.tasks import TASKS
    from s2distill.train import train

    task = TASKS.get(task_name)(n_train=n, n_test=2, seed=0)
    rows = task.load()["train"].to_list()
    # gold answers as the kept answers: this measures throughput, the labels do not matter
    examples = pipeline.sft_examples(task, rows, [Decision(True, r["gold"], "gold") for r in rows])
    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "train" / "full.yaml"))
    cfg["sft"].update(seed=0, num_train_epochs=1, logging_steps=1000, **options)
    model = bundled_model_path()
    tok = AutoTokenizer.from_pretrained(model)
    texts = [tok.apply_chat_template(e["prompt"] + e["completion"], tokenize=False) for e in examples]
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    with tempfile.TemporaryDirectory() as out:
        info = train(examples, model, cfg, Path(out) / "model")
    bs = cfg["sft"]["per_device_train_batch_size"]
    slots = sum(max(lengths[i : i + bs]) * len(lengths[i : i + bs]) for i in range(0, len(lengths), bs))
    return {"examples": len(examples), "tokens": sum(lengths), "padded_slots_in_order": slots,
            "steps": info["steps"], "train_runtime_s": info["train_runtime_s"],
            "tokens_per_s": sum(lengths) / info["train_runtime_s"], "train_loss": info["train_loss"]}


VARIANTS = {
    "padded": {},
    "padding_free": {"padding_free": True, "max_length": None},
    "packing": {"packing": True, "packing_strategy": "bfd"},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one variant, in this process
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(**json.loads(a.one))))
        return
    runs = {task: {name: run_script("sft_speed.py", "--one", json.dumps({"task_name": task, "n": a.n, "options": o}))
                   for name, o in VARIANTS.items()}
            for task in ("coin_flip", "gsm8k")}
    speed = {task: {name: r[name]["tokens_per_s"] / r["padded"]["tokens_per_s"] for name in VARIANTS}
             for task, r in runs.items()}
    c, g = runs["coin_flip"], runs["gsm8k"]
    record("sft_speed", {
        "sft_speedup_padding_free": round(speed["coin_flip"]["padding_free"], 2),
        "sft_speedup_packing": round(speed["coin_flip"]["packing"], 2),
        "sft_speedup_padding_free_gsm8k": round(speed["gsm8k"]["padding_free"], 2),
        "sft_speedup_packing_gsm8k": round(speed["gsm8k"]["packing"], 2),
    }, {
        "runs": runs,
        "notes": [
            f"coin_flip: {c['padded']['tokens']} real tokens in {c['padded']['examples']} examples; padded "
            f"batches hold {c['padded']['padded_slots_in_order']} token slots (upper bound: the trainer "
            f"shuffles), so removing padding can save at most "
            f"{1 - c['padded']['tokens'] / c['padded']['padded_slots_in_order']:.0%} of the compute.",
            f"gsm8k: {g['padded']['tokens']} real tokens vs {g['padded']['padded_slots_in_order']} "
            "padded slots.",
            "tokens/s (real tokens / train_runtime): coin_flip "
            + ", ".join(f"{k} {v['tokens_per_s']:.0f}" for k, v in c.items())
            + "; gsm8k " + ", ".join(f"{k} {v['tokens_per_s']:.0f}" for k, v in g.items()) + ".",
        ],
    })


if __name__ == "__main__":
    main()
