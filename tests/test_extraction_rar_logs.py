"""Extraction on real GPT-3.5 / GPT-4 outputs (the RaR authors' logs, tests/data/rar_logs, MIT).

Agreement with the authors' lenient scorer must not fall below what we reach, every remaining
disagreement is adjudicated below with its reason (the project right in each), and each task's
``extractor_version`` pins what its extractor returns, so a changed extractor cannot reuse
cached answers under an old fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bench.extraction_agreement import OUT_JSON, disagreements, load_logs, table, verdicts
from s2distill.tasks import TASKS
from tests.conftest import default_task

DATA = Path(__file__).resolve().parent / "data"

#: the agreement we reach on all shared logs (1,094 of 1,098); the test fails below it
MIN_AGREEMENT = 0.996

#: every remaining disagreement: (log file, line) → (what we extract, why we are right)
ADJUDICATED = {
    ("log_gpt-3.5-turbo-0613/last_letter_concatenation4_refined_response.json", 50): (
        "eeyoan",
        'The response states "eeyoan" (and "eeotadna" for its rephrased question); the gold "eyoa" '
        "appears nowhere in it. The authors' wrong-log of that run lacks this line (their logs "
        "mix repeated runs), so their verdict 'right' is not about this text.",
    ),
    ("log_gpt-3.5-turbo-0613/last_letter_concatenation_refined_response.json", 24): (
        None,
        "The response only describes the procedure ('is by taking the last letters ...') and "
        "states no letters; the gold \"on\" does not appear. No answer is an abstention.",
    ),
    ("log_gpt-4_2step/coin_val_refined_response.json", 212): (
        None,
        '"The answer could be Yes or No" names both answers: a hedge states no answer. The lenient '
        "scorer counts it right because the gold word appears.",
    ),
    ("log_gpt-4_2step/last_letter_concatenation4_refined_response.json", 128): (
        "ihlr",
        'The response ends "the result is "ihlr."": the gold, with the period inside the quotes, '
        "which the authors' word-split scorer does not recognise.",
    ),
}


@pytest.fixture(scope="module")
def scored():
    return verdicts(load_logs())


def test_agreement_with_the_rar_scorer(scored):
    tab = table(scored)
    print("\nagreement with the RaR authors' scorer (real GPT logs):")
    for name, row in tab.items():
        print(f"  {name:40s} n={row['n']:4d} agreement={row['agreement']:.3f} "
              f"ours={row['ours_acc']:.3f} rar={row['rar_acc']:.3f}")
    assert tab["all"]["n"] == 1098
    assert tab["all"]["agreement"] >= MIN_AGREEMENT, tab["all"]
    # the committed figure (bench/extraction_rar_logs.json) is what the code produces today
    assert json.loads(OUT_JSON.read_text()) == tab, "re-run python bench/extraction_agreement.py"


def test_every_disagreement_is_adjudicated_with_the_project_right(scored):
    found = {(r["file"], r["line"]): r for r in disagreements(scored)}
    assert set(found) == set(ADJUDICATED), {k: (r["answer"], r["ours"]) for k, r in found.items()}
    for key, (ours, _reason) in ADJUDICATED.items():
        assert found[key]["ours"] == ours, key


# -- the extractor version pins the extractor's outputs ---------------------------------------------
PROBES = [
    "Answer: yes", "The answer is no.", "No.", "There is no change.", "Answer: 'e', 'y', 'n', 'a'",
    "Answer: nyea (from Allison, Amy, Steve, Anna)", "Concatenated: enla", "l + j + y + e = ljye",
    "The answer is 1/2 of 10, which is 5.", "#### 72", "\\boxed{18}", "My final verdict is a close call.",
    "[[A]]", "[[C]]", "The winner is Assistant B", "Answer: Paris", "I don't think it's Paris, it's London",
    "Paris or London", "",
]
DIGESTS = DATA / "extractor_digests.json"


def extractor_digests() -> dict[str, dict[str, object]]:
    """Each task's ``extractor_version`` and a hash of what its ``extract`` returns on the shared
    logs' responses plus ``PROBES``."""
    corpus = [r["response"] for r in load_logs()] + PROBES
    out = {}
    for name in TASKS.names():
        task = default_task(name)
        got = json.dumps([task.extract(t) for t in corpus])
        out[name] = {"extractor_version": task.extractor_version,
                     "outputs_sha256": hashlib.sha256(got.encode()).hexdigest()}
    return out


def test_extractor_version_changes_with_the_extractor():
    """A changed extractor with the same version would serve cached answers (traces and filter
    decisions hold them): bump ``extractor_version`` and update tests/data/extractor_digests.json."""
    assert extractor_digests() == json.loads(DIGESTS.read_text())
