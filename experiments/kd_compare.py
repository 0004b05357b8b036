"""Soft targets side by side (issue 11): the same kept set trained four ways, on the positive
control (biased QA x S2A with demos) and on coin_flip x RaR (CPU-smoke size), plus two rounds of iterated
distillation on the positive control.

    python experiments/kd_compare.py --list
    python experiments/kd_compare.py                 # every cell, one after another
    python experiments/kd_compare.py pc_sft pc_ctx   # only those

The four variants differ only in ``train``: generation, the filter and the System-1/System-2
arms share their cached artifacts, so the kept set is the same by construction.

- ``sft``: hard-label SFT on the kept answers (``train=full``);
- ``fkl`` / ``rkl``: ``train=kd`` with forward / reverse KL, the teacher (the same model) scoring
  the kept answer on the System-1 prompt (``train.kd.context=none``): soft targets without the
  System-2 context;
- ``ctx``: context distillation, ``train=kd`` with forward KL and the teacher conditioned on the
  System-2 context of a sample that produced the kept answer (S2A's rewrite, RaR's rephrasing).

Success criteria, stated before running: a KD variant beats hard-label SFT on biased prompts of
the positive control (exact McNemar on the same test prompts, p < 0.05) at no more than 1.5x
its training wall time plus teacher-scoring time.
"""

from __future__ import annotations

import sys

from regenerate import main as regenerate_main

KD = ["train=kd", "train.kd.alpha=0.5", "train.kd.temperature=1.0", "train.kd.top_k=20"]
VARIANTS = {
    "sft": ["train=full"],
    "fkl": [*KD, "train.kd.divergence=forward_kl", "train.kd.context=none"],
    "rkl": [*KD, "train.kd.divergence=reverse_kl", "train.kd.context=none"],
    "ctx": [*KD, "train.kd.divergence=forward_kl", "train.kd.context=system2"],
}
# coin_flip x RaR at the CPU-smoke size (64 train, 60 test, n=4): its generation, filter and the
# System-1/System-2 arms are the cached stages of cpu_smoke/coin_flip_rar, so each variant costs
# only teacher scoring, training and the Distilled arm; cheap cells first
CELLS: dict[str, list[str]] = {
    **{f"kd/coin_rar_{v}.json": ["+experiment=cpu_smoke", "task=coin_flip", "method=rar", *o]
       for v, o in VARIANTS.items()},
    **{f"kd/pc_{v}.json": ["+experiment=positive_control", *o] for v, o in VARIANTS.items()},
    "kd/pc_rounds2.json": ["+experiment=positive_control", "train=full", "rounds=2"],
}

if __name__ == "__main__":
    import regenerate

    regenerate.CELLS = CELLS
    sys.exit(regenerate_main())
