"""Unlabeled inputs synthesized from a few seeds (s2distill/synthesize.py)."""

from __future__ import annotations

import pytest

from s2distill import synthesize as syn
from s2distill.errors import UserError
from s2distill.tasks import TASKS

COIN = TASKS.get("coin_flip")(n_train=8, n_test=4)


def test_near_duplicates_are_dropped_by_rouge_l() -> None:
    d = syn.Deduplicator(0.7, ["A coin is heads up. Ann flips the coin. Is the coin still heads up?"])
    assert not d.add("A coin is heads up. Ann flips the coin. Is the coin still heads up now?")  # one word more
    assert not d.add("a coin is heads up ann flips the coin is the coin still heads up")  # case and punctuation
    assert d.add("A coin is heads up. Bob does not flip it. Carl flips it. Is it still heads up?")
    assert not d.add("A coin is heads up. Bob does not flip it. Carl flips it. Is it still heads up?")  # vs kept ones
    assert d.add("What is the capital of France?")
    assert len(d.kept) == 3
    assert syn.diversity(["the cat sat", "the cat sat"]) == pytest.approx(1.0)
    assert syn.diversity(["the cat sat", "a dog ran off"]) == pytest.approx(0.0)


@pytest.mark.parametrize(("reply", "want"), [
    ("Question: A coin is heads up. Ann flips it. Is it still heads up?\nAnswer: no",
     ("A coin is heads up. Ann flips it. Is it still heads up?", "ok")),
    ("Question: Is it heads up?\nAnswer: maybe", (None, "no_valid_answer")),  # a labelled task needs a label
    ("Question: Is it heads up?", (None, "no_valid_answer")),
    ("Question:   \nAnswer: yes", (None, "empty")),
    ("", (None, "empty")),
])
def test_parse_and_validate_replies(reply: str, want: tuple) -> None:
    assert syn.parse(reply, COIN) == want


def test_open_answer_tasks_need_no_answer_line() -> None:
    gsm = TASKS.get("gsm8k")(n_train=4, n_test=4)
    assert syn.parse("Question: Tom has 3 apples and buys 4. How many now?", gsm)[0].startswith("Tom has 3")
    assert syn.parse("Tom has 3 apples and buys 4. How many now?", gsm)[0].startswith("Tom has 3")  # no label


VOCAB = ("apple river stone cloud tiger violin marble desert copper lantern orchard puzzle harbor meadow "
         "falcon thunder velvet compass glacier pepper canyon ribbon saddle quartz willow ember nectar "
         "anchor biscuit cobalt dolphin fabric garnet hazel igloo jasmine kettle lemon mosaic noodle").split()


class Writer:
    """A stand-in model: its replies depend on the round (as a seeded engine's do), some repeat,
    some are malformed."""

    model = "writer"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, chats, n, sampling, desc=""):
        from s2distill.engines.base import Completion

        out = []
        r = int(desc.rsplit(" ", 1)[-1]) if desc.startswith("synthesize: round") else self.calls
        for i, _ in enumerate(chats):
            k = r * len(chats) + i
            if k % 5 == 4:
                text = "Sure! Here you go."  # no answer line: invalid
            elif k % 5 == 3:
                text = "Question: Does the violin orchard keep its copper lantern at dusk?\nAnswer: no"  # repeats
            else:  # words drawn per reply: texts far apart in ROUGE-L
                import random

                words = random.Random(k).sample(VOCAB, 10)
                text = f"Question: {' '.join(words)}?\nAnswer: {'yes' if k % 2 else 'no'}"
            out.append([Completion(text, 7)])
        self.calls += 1
        return out


@pytest.fixture
def writer_engines(monkeypatch):
    """Every engine of a fake_run: Writer's replies for synthesis requests, FakeEngine's otherwise."""
    import s2distill.engines as engines
    from tests.conftest import FakeEngine

    class Both(FakeEngine):
        def __init__(self, model):
            super().__init__(model)
            self.writer = Writer()

        def generate(self, chats, n, sampling, desc=""):
            if desc.startswith("synthesize"):
                return self.writer.generate(chats, n, sampling, desc)
            return super().generate(chats, n, sampling, desc)

    monkeypatch.setattr(engines, "make_engine", lambda model, cfg: Both(model))


def test_rounds_until_enough_inputs_and_resume_after_a_kill() -> None:
    o = syn.Options(k=2, batch=5, max_rounds=10, rouge_threshold=0.7)
    seeds = ["A coin is heads up. Ann flips the coin. Is the coin still heads up?",
             "A coin is heads up. Bob does not flip the coin. Is the coin still heads up?"]
    saved: dict = {}
    w = Writer()
    recs = syn.synthesize(lambda: w, COIN, seeds, 8, o, 0, {}, saved.__setitem__)
    info = syn.report(recs, 2, 6)
    assert info["n_kept"] >= 6 and info["n_generated"] == 5 * info["rounds"]
    assert info["n_invalid"] == info["invalid_reasons"]["no_valid_answer"] >= 1 and info["n_duplicate"] >= 1
    assert info["tokens"] == 7 * info["n_generated"] and 0 < info["diversity_rouge_l"] < 1
    # killed after round 0: round 0 is replayed from what was saved, later rounds generated again
    w2 = Writer()
    resumed = syn.synthesize(lambda: w2, COIN, seeds, 8, o, 0, {0: saved[0]}, lambda *a: None)
    assert w2.calls == info["rounds"] - 1  # round 0 not generated again
    assert resumed == recs  # the same records as the uninterrupted run


def test_synthesized_run_uses_train_seeds_only_and_reports(fake_run, writer_engines, monkeypatch, tmp_path) -> None:
    from s2distill import pipeline

    seen = {}

    def watch(ctx):
        real = pipeline.generate

        def gen(ctx_, rows):
            seen["rows"] = rows
            return real(ctx_, rows)

        monkeypatch.setattr(pipeline, "generate", gen)
        seen["test"] = [r["question"] for r in ctx.task.load()["test"]]
        seen["train"] = [r["question"] for r in ctx.task.load()["train"]]

    res = fake_run("task.n_train=10", "task.n_test=4", "generate.n=2", "synthesize.k=3", "synthesize.batch=6",
                   run_dir=tmp_path / "r", setup=watch)
    s = res["synthesis"]
    assert s["n_seeds"] == 3 and s["n_used"] == 7 and res["n_train"] == 10
    rows = seen["rows"]
    assert [r["question"] for r in rows[:3]] == seen["train"][:3]  # the seeds: the first 3 train inputs
    assert all(r["id"].startswith("synth-") for r in rows[3:])
    assert not {r["question"] for r in rows} & set(seen["test"])
    assert res["generate_tokens_by_stage"]["generate_synthesize"] == 7 * s["n_generated"]
    assert "kept_precision" not in res or res["kept_precision"] is None
    assert (tmp_path / "r/artifacts/synthesize.jsonl").is_file()


def test_synthesized_inputs_never_reuse_a_real_input_cells_samples(fake_run, writer_engines, tmp_path) -> None:
    # the same cell on real inputs first, then on synthesized ones, in one cache: generation must
    # run again (its fingerprint depends on the synthesized inputs), not serve the real cell's
    cell = ("task.n_train=10", "task.n_test=4", "generate.n=2")
    real = fake_run(*cell, run_dir=tmp_path / "real")
    synth = fake_run(*cell, "synthesize.k=3", "synthesize.batch=6", run_dir=tmp_path / "synth")
    assert "generate" in real["computed"] and "generate" in synth["computed"]
    again = fake_run(*cell, "synthesize.k=3", "synthesize.batch=6", run_dir=tmp_path / "again")
    assert "generate" in again["cache_hits"]  # and the synthesized cell's own samples are reused


@pytest.mark.parametrize(("override", "message"), [
    ("synthesize.rouge_threshold=1.5", r"synthesize.rouge_threshold must be in \(0, 1\]"),
    ("synthesize.k=200", "synthesize.k=200 seeds but task.n_train=10"),
    ("+synthesize.colour=1", r"synthesize: unknown key\(s\) \['colour'\]"),
    ("task=llm_judge method=bsm filter=swap", "cannot be synthesized"),
])
def test_bad_synthesis_options(compose, fake_engine, override: str, message: str) -> None:
    from s2distill import pipeline

    args = ["task.n_train=10", "synthesize.k=2", *override.split()]
    with pytest.raises(UserError, match=message):
        pipeline.build(compose(*args), None)
    assert fake_engine == []


@pytest.mark.slow
def test_synthesis_on_the_real_engine(vllm_engine) -> None:
    o = syn.Options(k=3, batch=4, max_rounds=2, max_tokens=64, min_words=3)
    t = TASKS.get("coin_flip")(n_train=8, n_test=4)
    seeds = [t.question(r) for r in t.unlabeled(t.load()["train"]).to_list()[:3]]
    recs = syn.synthesize(lambda: vllm_engine, t, seeds, 100, o, 0, {}, lambda *a: None)
    info = syn.report(recs, 3, 0)
    assert info["n_generated"] == 8 and info["rounds"] == 2 and info["tokens"] > 0
    assert info["n_kept"] + info["n_duplicate"] + info["n_invalid"] == 8
    assert all(x["reply"] for x in recs)  # the model really wrote something
