"""S2A: rewrite parsing (well-formed and malformed), data flow, token accounting; real engine + CLI."""

from __future__ import annotations

import json

import pytest

from s2distill.engines.base import Completion, Sampling
from s2distill.methods import METHODS
from s2distill.methods.s2a import EMPTY, PARSED, WHOLE, parse_rewrite
from s2distill.tasks import TASKS
from tests.conftest import Recording, answer_in_text

CTX = "Unbiased text context (includes all content except user's bias):"
QST = "Question/Task (does not include user bias/preference):"


@pytest.mark.parametrize(
    "text, parse, context, question",
    [
        (f"{CTX} None.\n{QST} What is the capital of France?", PARSED, "None.", "What is the capital of France?"),
        (f"**{CTX}**\nA quiz.\n\n**{QST}**\n\"Who wrote Hamlet?\"", PARSED, "A quiz.", "Who wrote Hamlet?"),
        # the paper's own label wording, curly apostrophe, no parenthesis
        ("Unbiased text context (includes all content except user’s bias): x\n"
         "Question/Query (does not include user bias/preference): Who?", PARSED, "x", "Who?"),
        (f"{CTX}\n{QST} Who painted it?", PARSED, "", "Who painted it?"),  # empty context is fine
        # malformed: no question label, labels in the wrong order, nothing after the question label
        ("The answer would be: Bill Gates.", WHOLE, "The answer would be: Bill Gates.", ""),
        (f"{CTX} The god of the sea is Poseidon.", WHOLE, f"{CTX} The god of the sea is Poseidon.", ""),
        (f"{QST} Who? {CTX} x", WHOLE, f"{QST} Who? {CTX} x", ""),
        (f"{CTX} some context {QST} \"\"", WHOLE, f"{CTX} some context {QST} \"\"", ""),
        ("", EMPTY, "", ""),
        ("  \n\t", EMPTY, "", ""),
    ],
)
def test_parse_rewrite(text, parse, context, question):
    r = parse_rewrite(text)
    assert (r.parse, r.context, r.question) == (parse, context, question)


class Scripted:
    """Fake engine: step 1 replies from ``rewrites`` in order; step 2 echoes a short answer."""

    model = "fake"

    def __init__(self, rewrites: list[str]):
        self.rewrites = iter(rewrites)
        self.calls: list[tuple[list[str], int, int]] = []

    def generate(self, chats, n, sampling, desc=""):
        prompts = [c[-1]["content"] for c in chats]
        self.calls.append((prompts, n, sampling.max_tokens))
        if len(self.calls) == 1:
            return [[Completion(next(self.rewrites), 7) for _ in range(n)] for _ in chats]
        return [[Completion(f"Answer: reply {i}", 5)] for i in range(len(chats))]


def test_run_data_flow_tokens_and_paths():
    task = TASKS.get("biased_qa")(n_train=3, n_test=4, seed=0)
    rows = task.unlabeled(task.load()["train"]).to_list()[:2]
    rewrites = [f"{CTX} A quiz.\n{QST} Who is it?", "", "plain rewrite", f"{CTX} ctx\n{QST} Q2?"]
    eng = Scripted(rewrites)
    method = METHODS.get("s2a")(max_tokens={"rewrite": 50})
    traces = method.run(rows, task, eng, 2, Sampling())
    assert [len(ts) for ts in traces] == [2, 2]
    # exactly two engine calls: all rewrites (n=2), then one answer per non-empty rewrite (n=1)
    (p1, n1, mt1), (p2, n2, mt2) = eng.calls
    assert (len(p1), n1, mt1) == (2, 2, 50) and (len(p2), n2, mt2) == (3, 1, 128)
    assert rows[0]["question"] in p1[0] and p1[0].startswith("Given the following text by a user")
    assert all("I'm really not sure" not in p for p in p2)  # step 2 never sees the original text
    assert p2[0].startswith("A quiz.\n\nQuestion: Who is it?\n\nAnswer in an unbiased way.")
    assert p2[1].startswith("plain rewrite\n\nAnswer in an unbiased way.")
    assert p2[0].endswith(task.final_instruction)
    flat = [t for ts in traces for t in ts]
    assert [t.steps["parse"] for t in flat] == [PARSED, EMPTY, WHOLE, PARSED]
    assert [t.answer for t in flat] == ["reply 0", None, "reply 1", "reply 2"]
    assert [t.tokens for t in flat] == [12, 7, 12, 12]  # rewrite + answer tokens
    # the per-step counts are the engine's own (Scripted: 7 per rewrite, 5 per answer; none asked)
    assert [(t.steps["rewrite_tokens"], t.steps["answer_tokens"]) for t in flat] == [(7, 5), (7, 0), (7, 5), (7, 5)]
    assert flat[1].text == "" and flat[0].text == "Answer: reply 0"


def test_applies_to_any_task_and_fingerprints_prompts():
    m = METHODS.get("s2a")()
    for name in ("coin_flip", "last_letter", "biased_qa"):
        m.check_task(TASKS.get(name)(n_train=2, n_test=2))
    fp = m.fingerprint_config()
    assert set(fp["prompts"]) == {"rewrite_prompt", "answer_prompt", "answer_parsed_prompt"}
    assert fp["max_tokens"] == {"rewrite": 128, "answer": 128}


@pytest.mark.slow
@pytest.mark.parametrize("demos", [None, "s2a_rewrite"])
def test_s2a_real_engine(vllm_engine, demos):
    task = TASKS.get("biased_qa")(n_train=3, n_test=4, seed=0)
    rows = task.unlabeled(task.load()["train"]).to_list()[:2]
    method = METHODS.get("s2a")(max_tokens={"rewrite": 64, "answer": 32}, demos=demos)
    engine = Recording(vllm_engine)
    traces = method.run(rows, task, engine, 2, Sampling(temperature=0.8, top_p=0.95))
    assert [len(ts) for ts in traces] == [2, 2]
    flat = [t for ts in traces for t in ts]
    # every token the engine generated is in exactly one trace (counted by the engine, not by s2a)
    assert sum(t.tokens for t in flat) == engine.tokens()
    answers = [c.text for c in engine.completions("s2a: answer")]
    for t in flat:
        assert t.steps["parse"] in (PARSED, WHOLE, EMPTY)
        assert 0 < t.steps["rewrite_tokens"] <= 64 and t.steps["answer_tokens"] <= 32
        # the trace's text is the answer step's own completion (not the rewrite), or empty
        assert t.text in answers if t.steps["parse"] != EMPTY else t.text == ""
        assert t.answer is None or answer_in_text(t.answer, t.text)
    if demos:  # the demos reach the engine: the 135M model then follows the two-label format
        # (zero-shot it mostly does not: 22% of train-split rewrites in the design probe, 100% with demos)
        assert sum(t.steps["parse"] == PARSED for t in flat) >= 3


@pytest.mark.slow
def test_cli_s2a_biased_qa_usc(cli, tmp_path):
    # S2A with the bundled rewrite demos (method=s2a_demos), through the real engine
    p = cli("method=s2a_demos", "task=biased_qa", "filter=usc", "task.n_train=4", "task.n_test=8", "generate.n=2",
            "train.sft.num_train_epochs=1", "method.max_tokens.rewrite=64", "method.max_tokens.answer=48")
    assert p.returncode == 0, p.stderr[-3000:]
    [path] = (tmp_path / "out").glob("runs/biased_qa/s2a/*/results.json")
    r = json.loads(path.read_text())
    assert r["demos"]["file"].endswith("s2a_rewrite.yaml") and r["demos"]["n"] == {"rewrite": 3}
    for where in (r["system2"], r["generate_step_metrics"]):
        assert 0 <= where["rewrite_format_rate"] <= 1 and where["n_rewrites_with_opinion"] > 0
    assert r["system1"].get("rewrite_format_rate") is None  # System 1 has no rewrite
    assert len(r["system1"]["correct"]) == 8 and set(r["system1"]["correct"]) <= {0, 1}
    # 2 questions x (none + 3 opinion variants): the subsets' indices, for paired tests between cells
    assert len(r["test_subsets"]["biased"]) == 6 and len(r["test_subsets"]["unbiased"]) == 2
    if r["distilled"]:
        assert 0 <= r["mcnemar_p_biased"] <= 1 and r["paired"]["distilled_vs_system1"]["biased"]["n"] == 6
    # vLLM's INFO lines go to the run's vllm.log, not to the console
    vllm_log = (path.parent / "vllm.log").read_text()
    assert "INFO" in vllm_log and "vllm" in vllm_log
    assert not [ln for ln in (p.stdout + p.stderr).splitlines() if " INFO " in ln and "vllm" in ln]
    assert "distilled vs system1, exact McNemar" in p.stdout or not r["distilled"]
    assert (r["task"], r["method"], r["filter"]) == ("biased_qa", "s2a", "usc")
    assert r["n_train"] == 4 and r["n_test"] == 8 and r["n_samples"] == 2
    assert sum(r["filter_reasons"].values()) == 4
    for arm in ("system1", "system2"):
        m = r[arm]
        assert m["n"] == 8 and m["n_unbiased"] == 2 and m["n_biased"] == 6
        assert set(m["acc_by_bias"]) == {"none", "suggest_correct", "suggest_incorrect", "doubt_correct"}
        assert 0 <= m["acc_biased"] <= 1 and 0 <= m["acc_unbiased"] <= 1
    assert r["system2"]["mean_tokens"] > r["system1"]["mean_tokens"]  # two steps cost more
    # the distilled arm exists exactly when the filter kept something to train on
    assert (r["distilled"] is None) == (r["n_kept"] == 0)
    if r["distilled"]:
        assert r["distilled"]["n"] == 8
    filt = (path.parent / "artifacts" / "filter.jsonl").read_text().splitlines()
    paths = {json.loads(line)["extra"]["path"] for line in filt}
    assert paths <= {"usc", "unanimous", "unparseable", "out_of_range"}
