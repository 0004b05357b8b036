"""Property-based fuzz of the composed config (issue 14).

Every numeric, boolean and enum key of the composed config (over several group choices), set out
of range, to a wrong type, to a misspelt enum value, or added again under a misspelt key, must
end in one clean ``UserError`` line or a valid ``build()`` — never another exception. The test
stops right after ``build()``: no engine starts and the model is not resolved (stubbed).
"""

from __future__ import annotations

import copy
import os
import string
from collections import Counter
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from s2distill import pipeline
from s2distill.errors import UserError
from s2distill.models import ResolvedModel

REPO = Path(__file__).resolve().parents[1]
BASES = ["", "train=lora filter=usc", "engine=hf", "task=llm_judge method=bsm filter=swap",
         "task=biased_qa method=s2a", "task=gsm8k method=cot", "task=last_letter method=rar_1step"]
#: string keys that are free text (paths, ids, hub names), not a choice among known values
FREE_TEXT = ("paths.", "model.", "task.hub.", "task.hub_config", "train.lora.target_modules")
EXAMPLES = int(os.environ.get("S2DISTILL_FUZZ_EXAMPLES", 300))  # more: a longer local hunt

TRIED: set[tuple] = set()
OUTCOMES: Counter = Counter()
REPO_BEFORE = {p.name for p in REPO.iterdir()}


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _kind(key: str, value) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str) and not key.startswith(FREE_TEXT):
        return "enum"
    return None


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    cache = tmp_path_factory.mktemp("fuzz-cache")
    out = []
    for b in BASES:
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[f"paths.cache_dir={cache}", f"paths.home={cache}", *b.split()])
        keys = [(k, kind) for k, v in _leaves(OmegaConf.to_container(cfg, resolve=True))
                if (kind := _kind(k, v)) and not k.startswith("paths.")]
        out.append((cfg, keys))
    return out


WORD = st.text(alphabet=string.ascii_letters + string.digits + "_-. ", max_size=12)
NUMBER = st.one_of(
    st.sampled_from([0, -1, -(2**31), 2**63, 2**64, -1e-9, 1e-12, 0.5, 1.5, 2.5, 1e308,
                     float("nan"), float("inf"), float("-inf")]),
    st.integers(-(10**12), 10**12), st.floats())
WRONG_TYPE = st.one_of(WORD, st.booleans(), st.none(), st.lists(st.integers(-5, 5), max_size=3),
                       st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=4), st.integers(), max_size=2))
OUT_OF_RANGE = {"number": NUMBER, "bool": st.one_of(st.integers(-2, 3), WORD), "enum": st.one_of(WORD, NUMBER)}


def _typo(draw, word: str) -> str:
    """One keyboard slip: a letter dropped, swapped with the next, replaced, or doubled; never
    the same word."""
    i = draw(st.integers(0, max(0, len(word) - 1)))
    op = draw(st.sampled_from(["drop", "double", "swap", "replace"]))
    slips = {"drop": word[:i] + word[i + 1:],
             "swap": word[:i] + word[i + 1:i + 2] + word[i:i + 1] + word[i + 2:],
             "replace": word[:i] + draw(st.sampled_from(string.ascii_lowercase)) + word[i + 1:]}
    new = slips.get(op, word)
    return new if new not in (word, "") else word[:i] + word[i:i + 1] + word[i:] + ("x" if not word else "")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_bad_option_is_one_line_or_a_valid_build(bases, data):
    i = data.draw(st.integers(0, len(bases) - 1), label="base")
    cfg, keys = bases[i]
    key, kind = data.draw(st.sampled_from(keys), label="key")
    families = ["out_of_range", "wrong_type"] + (["typo_key"] if "." in key else []) + (
        ["typo_value"] if kind == "enum" else [])
    family = data.draw(st.sampled_from(families), label="family")
    cfg = copy.deepcopy(cfg)
    value = OmegaConf.select(cfg, key)
    if family == "out_of_range":
        value = data.draw(OUT_OF_RANGE[kind], label="value")
    elif family == "wrong_type":
        original = type(value)
        value = data.draw(WRONG_TYPE.filter(lambda v: type(v) is not original), label="value")
    elif family == "typo_value":
        value = _typo(data.draw, str(value))
    if family == "typo_key":  # the user's +node.misspelt_key=value beside the real key
        node, leaf = key.rsplit(".", 1)
        key = f"{node}.{_typo(data.draw, leaf)}"
    OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    TRIED.add((BASES[i], key, family, repr(value)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "resolve", lambda *a, **kw: ResolvedModel("/nonexistent/model", "fuzz"))
        try:
            pipeline.build(cfg, None)
        except UserError as e:
            assert str(e) and "\n" not in str(e), repr(str(e))
            OUTCOMES["error", family] += 1
        else:
            OUTCOMES["build", family] += 1
            if os.environ.get("S2DISTILL_FUZZ_SHOW"):
                print("valid build:", BASES[i], key, family, repr(value))


def test_fuzz_tried_enough_distinct_bad_inputs():
    """Runs after the fuzz test (file order): how many distinct inputs it tried, and how they ended."""
    print(f"\nfuzz: {len(TRIED)} distinct bad inputs; outcomes {dict(sorted(OUTCOMES.items()))}")
    if not TRIED:
        pytest.skip("the fuzz test did not run in this session")
    assert len(TRIED) >= EXAMPLES * 0.8
    assert {p.name for p in REPO.iterdir()} == REPO_BEFORE  # nothing written in the repo
    assert sum(n for (end, _), n in OUTCOMES.items() if end == "error") >= len(TRIED) // 2
