"""Fault tolerance: bad model outputs, user mistakes, a kill -9 mid-generation, reproducibility."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from s2distill.artifacts import Store, sha256_file
from s2distill.evaluate import score_arm
from s2distill.filters.majority import vote
from s2distill.methods.base import Trace
from s2distill.tasks import TASKS
from tests.conftest import default_task

REPO = Path(__file__).resolve().parents[1]


# -- model outputs without an answer: abstentions, never a crash or a hang --------------------------
NASTY = {
    "empty": "",
    "blank": " \n\t ",
    "no-answer": "I am not sure what you mean. Could you rephrase?",
    "binary": "\x00\ufffd\x7f" * 300,
    # a small model stuck in a loop until max_tokens (~16k tokens here): degenerate, very long
    "loop-answer": "answer: " * 8000,
    "loop-hashes": "#### " * 13000,
    "loop-words": "the the " * 8000,
    "loop-parens": "(" * 64000,
}


@contextmanager
def time_limit(seconds: float):
    """Fail (instead of hanging CI) when the block runs longer than ``seconds``."""
    def expire(*_):
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("name", TASKS.names())
def test_unparseable_outputs_are_abstentions(name):
    task = default_task(name)
    rows = task.load()["test"].select(range(2)).to_list()
    with time_limit(5.0):
        answers = {k: task.extract(text) for k, text in NASTY.items()}
    assert answers["empty"] is None and answers["blank"] is None and answers["binary"] is None
    for k, a in answers.items():
        assert a is None or isinstance(a, str), k
    # every sample of an input unparseable → the filter keeps nothing and says why
    d = vote([None] * 4, threshold=0.5)
    assert (d.kept, d.answer, d.reason, d.abstentions) == (False, None, "no_answer", 4)
    # an arm that never answers scores 0 with abstain rate 1 (no exception, no NaN)
    traces = [[Trace(task.extract(t), t, 0) for t in ("", NASTY["binary"])] for _ in rows]
    m = score_arm(task, rows, traces)
    assert m["acc"] == 0.0 and m["abstain_rate"] == 1.0 and m["mean_tokens"] == 0.0


def test_one_parseable_sample_among_abstentions_is_below_threshold():
    d = vote(["yes", None, None, None], threshold=0.75)
    assert not d.kept and d.reason == "below_threshold" and d.abstentions == 3


# -- user mistakes: one line, exit != 0, nothing left behind ----------------------------------------
def data_file(tmp_path: Path, kind: str) -> str:
    p = tmp_path / f"{kind}.jsonl"
    good = json.dumps({"inputs": "Q: A coin is heads up. Is it still heads up?", "targets": "yes"})
    p.write_text({"malformed": f"{good}\n{{\"inputs\": \"Q: x\", \"targets\": \n",
                  "missing-field": f"{good}\n{json.dumps({'inputs': 'Q: no target'})}\n"}[kind])
    return str(p)


USER_ERRORS = [
    (["method=nope"], "unknown method 'nope'"),
    (["task=nope"], "unknown task 'nope'"),
    (["engine=nope"], "unknown engine 'nope'"),
    (["engine.name=tgi"], "unknown engine 'tgi'"),
    (["filter=nope"], "unknown filter 'nope'"),
    (["engine.compile=maybe"], "engine.compile must be true, false or auto"),
    (["generate.n=0"], "generate.n must be >= 1"),
    (["filter.threshold=0"], "threshold must be in (0, 1]"),
    (["filter.threshold=1.5"], "threshold must be in (0, 1]"),
    (["model.name_or_path=/nonexistent/model"], "/nonexistent/model not found"),
    (["task.data_file=/nonexistent/coins.json"], "not found: /nonexistent/coins.json"),
    (["task.data_file={malformed}"], "malformed JSON in"),
    (["task.data_file={missing-field}"], "lacks field(s) targets"),
]


@pytest.mark.parametrize("overrides, msg", USER_ERRORS, ids=[" ".join(o) for o, _ in USER_ERRORS])
def test_user_error_is_one_line_and_leaves_nothing(cli, tmp_path, overrides, msg):
    args = [o.format(**{k: data_file(tmp_path, k) for k in ("malformed", "missing-field")}) for o in overrides]
    res = cli(*args, timeout=120)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("s2distill: error:") and msg in lines[0], res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert not [p for p in out.rglob("*") if p.is_file()]  # no run dir, no .hydra, no log
    assert not cache.exists() or not any(cache.iterdir())


# -- real engine, in subprocesses: kill -9 and resume; same seed, same training set ------------------
DRIVER = '''
"""Run generate → filter → SFT examples through the real engine and print their hashes."""
import hashlib, json, logging, os, signal, sys
from pathlib import Path

sys.path.insert(0, str(Path(sys.argv[1]).parent))  # this checkout's s2distill, not an installed one
from hydra import compose, initialize_config_dir

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    from s2distill import pipeline
    from s2distill.artifacts import canonical

    if os.environ.get("S2_KILL_AFTER_BATCHES"):  # kill -9 ourselves once that many batches are on disk
        from s2distill.artifacts import Store

        append, appended = Store.append_batch, []

        def append_then_die(self, *a, **kw):
            append(self, *a, **kw)
            appended.append(1)
            if len(appended) >= int(os.environ["S2_KILL_AFTER_BATCHES"]):
                os.kill(os.getpid(), signal.SIGKILL)

        Store.append_batch = append_then_die
    with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
        cfg = compose("config", overrides=sys.argv[2:])
    ctx = pipeline.build(cfg, None)
    with ctx.engines:
        rows = ctx.task.unlabeled(ctx.task.load()["train"]).to_list()
        traces, gen_fp = pipeline.generate(ctx, rows)
        decisions, filt_fp = pipeline.filter_samples(ctx, rows, traces, gen_fp)
    examples = pipeline.sft_examples(ctx.task, rows, decisions)
    print(json.dumps({"gen_fp": gen_fp, "filt_fp": filt_fp, "n_rows": len(rows), "n_kept": len(examples),
                      "sft_sha": hashlib.sha256(canonical(examples).encode()).hexdigest()}))
'''

TINY = ["method=rar", "task=coin_flip", "task.n_test=2", "generate.n=2", "method.max_tokens.rephrase=24",
        "method.max_tokens.respond=24", "filter.threshold=0.5", "engine.use_tqdm=false"]


def driver(tmp_path: Path, cache: Path, *overrides: str) -> list[str]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return [sys.executable, str(script), str(REPO / "conf"), *TINY, *overrides, f"paths.cache_dir={cache}"]


def complete_batches(cache: Path) -> tuple[str | None, int]:
    """The generate stage's fingerprint and how many intact batches its partial.jsonl holds."""
    for partial in (cache / "generate").glob("*/partial.jsonl"):
        fp = partial.parent.name
        return fp, len(Store(cache).load_batches("generate", fp))
    return None, 0


@pytest.mark.slow
def test_kill_9_mid_generation_resumes_losing_at_most_one_batch(tmp_path):
    cache, n_batches = tmp_path / "cache", 6
    cmd = driver(tmp_path, cache, f"task.n_train={n_batches}", "generate.batch_size=1")
    log1 = tmp_path / "run1.log"
    with open(log1, "w") as err:
        # own session: the kill takes vLLM's engine-core and worker processes down too, like a
        # scheduler killing the job
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 600
        while complete_batches(cache)[1] < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, log1.read_text()[-3000:]
    fp, done = complete_batches(cache)
    assert 1 <= done < n_batches, "the kill did not land mid-generation"
    assert not (cache / "generate" / fp / "records.jsonl").exists()
    started = log1.read_text().count("generating: rar: rephrase")
    assert started <= done + 1  # only the batch in flight was lost

    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"generate: resuming, {done} of {n_batches} batches already done" in res.stderr
    assert res.stderr.count("generating: rar: rephrase") == n_batches - done  # finished batches not redone
    records = [json.loads(line) for line in (cache / "generate" / fp / "records.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in records]
    assert ids == [f"train-{i}" for i in range(n_batches)]  # in order, no duplicate, none missing
    assert all(len(r["traces"]) == 2 for r in records)
    assert not (cache / "generate" / fp / "partial.jsonl").exists()
    assert json.loads(res.stdout.strip().splitlines()[-1])["n_rows"] == n_batches


@pytest.mark.slow
def test_same_seed_gives_identical_training_set(tmp_path):
    outs, shas = [], []
    for name in ("a", "b"):  # separate caches: the second run recomputes everything
        cache = tmp_path / name
        res = subprocess.run(driver(tmp_path, cache, "task.n_train=4", "generate.batch_size=4", "seed=7"),
                             cwd=REPO, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stderr[-3000:]
        outs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        shas.append([sha256_file(p) for p in sorted(cache.glob("*/*/records.jsonl"))])
    assert outs[0] == outs[1]  # same fingerprints, same kept examples (hash)
    assert shas[0] == shas[1] and len(shas[0]) == 2  # generate and filter artifacts byte-identical


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(tmp_path):
    """Killed (-9) right after its first of two batches and re-run, a run's artifacts are
    byte-identical to an uninterrupted run's: each batch's samples depend only on (seed, stage,
    batch), not on what the engine generated before (a fresh engine has generated nothing)."""
    args = ["task.n_train=8", "generate.batch_size=4", "seed=7", "method.max_tokens.rephrase=12",
            "method.max_tokens.respond=12"]
    whole = subprocess.run(driver(tmp_path, tmp_path / "a", *args), cwd=REPO, capture_output=True, text=True,
                           timeout=900)
    assert whole.returncode == 0, whole.stderr[-3000:]
    cache = tmp_path / "b"
    killed = subprocess.run(driver(tmp_path, cache, *args), cwd=REPO, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "S2_KILL_AFTER_BATCHES": "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert complete_batches(cache)[1] == 1
    resumed = subprocess.run(driver(tmp_path, cache, *args), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "generate: resuming, 1 of 2 batches already done" in resumed.stderr
    assert resumed.stderr.count("generating: rar: rephrase") == 1  # only the second batch was generated
    records = {c: {p.parent.parent.name: p.read_bytes() for p in sorted(c.glob("*/*/records.jsonl"))}
               for c in (tmp_path / "a", cache)}
    assert set(records[cache]) == {"generate", "filter"}
    assert records[tmp_path / "a"] == records[cache]  # samples and filter decisions byte-identical
    assert json.loads(whole.stdout.splitlines()[-1]) == json.loads(resumed.stdout.splitlines()[-1])
