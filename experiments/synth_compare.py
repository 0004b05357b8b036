"""Synthesized vs real unlabeled inputs (issue 12): the Distilled arm trained on inputs the model
grew from 8 seeds (``synthesize.k=8``, Self-Instruct style) against the same cell trained on the
same number of real inputs, on coin_flip (the CPU-smoke RaR cell) and on the YAML example
capitals_yn (RaR, n=4).

    python experiments/synth_compare.py --list
    python experiments/synth_compare.py                       # every cell, one after another

The real-input coin_flip cell is cpu_smoke/coin_flip_rar itself (its stages come from the cache).
The 8 seeds are the first 8 train inputs; the test split is never seen by synthesis.

Success criterion, stated before running: synthesized inputs are "as good as real" in a cell when
the Distilled arm's accuracy on the same test inputs differs from the real-input run by at most 5
points and the exact McNemar test finds no difference (p >= 0.05). With 60 / 40 test inputs this
can only detect large losses; a failed criterion is reported as measured.
"""

from __future__ import annotations

import sys

from regenerate import main as regenerate_main

COIN = ["+experiment=cpu_smoke", "task=coin_flip", "method=rar"]
CAPITALS = ["task=capitals_yn", "method=rar", "generate.n=4"]
CELLS: dict[str, list[str]] = {
    "synth/coin_rar_real.json": COIN,
    "synth/coin_rar_synth8.json": [*COIN, "synthesize.k=8"],
    "synth/capitals_rar_real.json": CAPITALS,
    "synth/capitals_rar_synth8.json": [*CAPITALS, "synthesize.k=8"],
}

if __name__ == "__main__":
    import regenerate

    regenerate.CELLS = CELLS
    sys.exit(regenerate_main())
