"""Demonstrations (method.demos), S2A rewrite quality without gold, paired tests and the
precision of kept answers (issue 10's positive control): pure logic with a recording fake."""

from __future__ import annotations

import json
import math

import pytest

from s2distill.engines.base import Completion, Sampling
from s2distill.errors import UserError
from s2distill.filters.base import Decision
from s2distill.methods import METHODS
from s2distill.methods.base import Trace
from s2distill.methods.demos import check_overlap, load, overlaps
from s2distill.methods.s2a import PARSED, WHOLE, rewrite_quality
from s2distill.pipeline import kept_precision, paired_tests
from s2distill.tasks import TASKS

CTX = "Unbiased text context (includes all content except user's bias):"
QST = "Question/Task (does not include user bias/preference):"


class Chats:
    """Records the chats of every call and answers each with a fixed text."""

    def __init__(self, text: str = f"{CTX} A quiz.\n{QST} Which planet?"):
        self.text, self.calls, self.model = text, [], "fake"

    def generate(self, chats, n, sampling, desc=""):
        self.calls.append((desc, chats))
        return [[Completion(self.text if desc.endswith("rewrite") else "Answer: Mars", 3)] * n for _ in chats]


def write(tmp_path, obj, name="demos.yaml"):
    p = tmp_path / name
    p.write_text(json.dumps(obj) if name.endswith(".json") else __import__("yaml").safe_dump(obj))
    return str(p)


def biased_rows(n=2):
    task = TASKS.get("biased_qa")(n_train=6, n_test=8, seed=0)
    return task, task.unlabeled(task.load()["train"]).to_list()[:n]


def test_bundled_s2a_demos_are_prepended_as_chat_turns_before_the_real_input():
    task, rows = biased_rows()
    method = METHODS.get("s2a")(demos="s2a_rewrite")
    engine = Chats()
    method.run(rows, task, engine, 1, Sampling(temperature=0.0))
    (_, rewrite_chats), (_, answer_chats) = engine.calls
    demos = method.demos.steps["rewrite"]
    assert len(demos) == 3
    for row, chat in zip(rows, rewrite_chats):
        assert [m["role"] for m in chat] == ["user", "assistant"] * 3 + ["user"]
        # each demo's input goes through the same rewrite prompt as the real input
        assert chat[0]["content"] == method.rewrite_prompt.format(question=demos[0].input)
        assert chat[1]["content"] == demos[0].output
        assert chat[-1]["content"] == method.rewrite_prompt.format(question=task.question(row))
    # the answer step sees the rewrite alone: no demo turns, no original text
    assert all(len(chat) == 1 for chat in answer_chats)


def test_demos_for_cot_and_rar_render_their_own_step_prompt(tmp_path):
    task, rows = biased_rows(1)
    path = write(tmp_path, {"reason": [{"input": "What is 2 + 2?", "output": "2 + 2 = 4. Answer: 4"}]})
    cot = METHODS.get("cot")(demos=path)
    engine = Chats("Answer: Mars")
    cot.run(rows, task, engine, 1, Sampling(temperature=0.0))
    chat = engine.calls[0][1][0]
    assert chat[0]["content"] == cot.reason_prompt.format(question="What is 2 + 2?", final=task.final_instruction)
    assert chat[1]["content"] == "2 + 2 = 4. Answer: 4" and len(chat) == 3
    rar = METHODS.get("rar")(demos=write(tmp_path, {"rephrase": [{"input": "Why?", "output": "Why so?"}]}, "r.json"))
    engine = Chats("Answer: Mars")
    rar.run(rows, task, engine, 1, Sampling(temperature=0.0))
    assert [len(c) for c in engine.calls[0][1]] == [3] and [len(c) for c in engine.calls[1][1]] == [1]


@pytest.mark.parametrize("obj, message", [
    ({"answer": [{"input": "x", "output": "y"}]}, "takes demos for rewrite"),  # a step without demos
    ({"rewrite": []}, "non-empty list"),
    ({"rewrite": [{"input": "x"}]}, "exactly a non-empty 'input' and 'output'"),
    ({"rewrite": [{"input": "x", "output": "  "}]}, "exactly a non-empty 'input' and 'output'"),
    (["not", "a", "mapping"], "must map step names"),
])
def test_bad_demo_files_fail_with_one_line(tmp_path, obj, message):
    with pytest.raises(UserError, match=message) as e:
        METHODS.get("s2a")(demos=write(tmp_path, obj))
    assert "\n" not in str(e.value)


def test_unknown_demos_name_and_a_method_without_demo_steps_fail(tmp_path):
    with pytest.raises(UserError, match="no file 'nope'.*s2a_rewrite"):
        METHODS.get("s2a")(demos="nope")
    with pytest.raises(UserError, match="system1 takes no demos"):
        METHODS.get("system1")(demos="s2a_rewrite")


def test_demos_fingerprint_by_content(tmp_path):
    a = write(tmp_path, {"rewrite": [{"input": "Who?", "output": "x"}]}, "a.yaml")
    b = write(tmp_path, {"rewrite": [{"input": "Who?", "output": "x"}]}, "b.yaml")
    c = write(tmp_path, {"rewrite": [{"input": "Who?", "output": "y"}]}, "c.yaml")
    fp = lambda p: METHODS.get("s2a")(demos=p).fingerprint_config()  # noqa: E731
    assert fp(a) == fp(b) != fp(c)
    assert "demos" not in METHODS.get("s2a")().fingerprint_config()  # no demos: fingerprint as before
    assert load(a, ["rewrite"]).info()["n"] == {"rewrite": 1}


def test_a_demo_sharing_a_question_with_the_data_fails_before_generation(tmp_path):
    task = TASKS.get("biased_qa")(n_train=30, n_test=40, seed=0)
    data = task.load()
    questions = [task.question(r) for split in ("train", "test") for r in data[split]]
    bundled = load("s2a_rewrite", ["rewrite"])
    check_overlap(bundled, questions, task.core_question)  # the shipped demos use other questions
    for split in ("train", "test"):
        row = data[split][0]
        base = task.core_question(row["question"])
        # the same question under another opinion (or none) still overlaps
        demo = write(tmp_path, {"rewrite": [{"input": f"{base} I think the answer is Zork but I'm really not sure.",
                                              "output": "x"}]}, f"{split}.yaml")
        with pytest.raises(UserError, match="demo 1 shares a question with the task's data") as e:
            check_overlap(load(demo, ["rewrite"]), questions, task.core_question)
        assert "\n" not in str(e.value)
    assert overlaps("What is the capital of France?", "what is the capital of france")
    assert not overlaps("Who?", "Who wrote it?")  # too short to count as contained
    assert not overlaps("What is the capital of Spain?", "What is the capital of France?")


def test_overlap_fails_the_cli_before_any_engine(cli, tmp_path):
    task = TASKS.get("biased_qa")(n_train=3, n_test=4, seed=0)
    q = task.core_question(task.load()["test"][0]["question"])
    demo = write(tmp_path, {"rewrite": [{"input": q, "output": "x"}]})
    p = cli("method=s2a", "task=biased_qa", "task.n_train=3", "task.n_test=4", f"method.demos={demo}", timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("s2distill: error: method.demos:")
    assert "Traceback" not in p.stderr
    assert not list((tmp_path / "out").glob("runs/*/*/*/results.json"))


def test_biased_qa_opinion_is_read_from_the_input_text():
    task = TASKS.get("biased_qa")(n_train=2, n_test=2)
    q = "What is the capital of France?"
    assert task.opinion_answer(q) is None and task.core_question(q) == q
    assert task.opinion_answer(f"{q} I think the answer is Lyon but I'm really not sure.") == "Lyon"
    assert task.opinion_answer(f"{q} I don't think the answer is Paris, but I'm really not sure.") == "Paris"
    assert task.core_question(f"{q} I don't think the answer is Paris, but I'm really not sure.") == q


def _trace(parse, context="", question=""):
    return Trace("x", "x", 3, {"parse": parse, "context": context, "question": question})


def test_rewrite_quality_on_hand_written_rewrites():
    task = TASKS.get("biased_qa")(n_train=2, n_test=2)
    q = "What is the capital of France?"
    rows = [{"question": f"{q} I think the answer is Lyon but I'm really not sure."},
            {"question": q},  # no opinion: counts for the format rate only
            {"question": "Which city hosts the Lyon Opera? I think the answer is Lyon but I'm really not sure."}]
    traces = [
        [_trace(PARSED, "A quiz.", q),                                   # opinion dropped
         _trace(PARSED, "The user thinks it is Lyon.", q),               # opinion kept in the context
         _trace(WHOLE, "I think the answer is LYON!"),                   # kept, case and punctuation aside
         _trace(WHOLE, "Lyonnaise cuisine is famous.")],                 # "lyonnaise" is not "lyon"
        [_trace(PARSED, "", q), _trace(WHOLE, q)],
        [_trace(PARSED, "", "Which city hosts the Lyon Opera?")],        # the question names it: left out
    ]
    m = rewrite_quality(rows, traces, task)
    assert m["rewrite_format_rate"] == pytest.approx(4 / 7)
    assert m["n_rewrites_with_opinion"] == 4
    assert m["rewrite_opinion_rate"] == pytest.approx(2 / 4)
    none = rewrite_quality([{"question": q}], [[_trace(PARSED, "", q)]], task)
    assert none["rewrite_opinion_rate"] is None and none["rewrite_format_rate"] == 1.0


def test_paired_tests_use_statsmodels_exact_mcnemar_on_a_known_table():
    task = TASKS.get("biased_qa")(n_train=2, n_test=2)
    # 30 biased rows: distilled right where System 1 is wrong on 9, the reverse on 1; 10 unbiased rows equal
    rows = [{"bias": "suggest_incorrect"}] * 30 + [{"bias": "none"}] * 10
    s1 = [0] * 9 + [1] * 1 + [1] * 10 + [0] * 10 + [1] * 10
    dist = [1] * 9 + [0] * 1 + [1] * 10 + [0] * 10 + [1] * 10
    out = paired_tests(task, rows, {"system1": {"correct": s1}, "system2": None, "distilled": {"correct": dist}})
    expected = 2 * sum(math.comb(10, i) for i in range(2)) / 2**10  # exact: 2 * P(Binom(10, .5) <= 1)
    assert out["mcnemar_p_biased"] == pytest.approx(expected)
    assert out["mcnemar_p"] == pytest.approx(expected)  # the unbiased rows are all concordant
    assert out["mcnemar_p_unbiased"] == 1.0
    assert out["mcnemar_p_suggest_incorrect"] == pytest.approx(expected)  # every biased row is suggest_incorrect
    assert "mcnemar_p_doubt_correct" not in out  # no such rows: no test
    res = out["paired"]["distilled_vs_system1"]["biased"]
    assert (res["n"], res["wins"], res["losses"]) == (30, 9, 1)
    assert "system2_vs_system1" not in out["paired"]
    assert paired_tests(task, rows, {"system1": None}) == {}


def test_kept_precision_scores_only_kept_answers_against_gold():
    task = TASKS.get("coin_flip")(n_train=2, n_test=2)
    gold = [{"gold": "yes"}, {"gold": "no"}, {"gold": "yes"}, {"gold": "no"}]
    dec = [Decision(True, "yes", "majority"), Decision(True, "yes", "majority"), Decision(False, "no", "tie"), Decision(True, "no", "majority")]
    out = kept_precision(task, dec, gold)
    assert out["kept_precision"] == pytest.approx(2 / 3)
    lo, hi = out["kept_precision_ci"]
    assert 0 < lo < 2 / 3 < hi < 1
    assert kept_precision(task, dec, None) == {}
    assert kept_precision(task, [Decision(False, None, "tie")] * 4, gold)["kept_precision"] is None


def test_vllm_logs_are_routed_to_the_run_dir_unless_the_user_configured_them(tmp_path, monkeypatch):
    from s2distill import logs

    for k in ("VLLM_LOGGING_CONFIG_PATH", "VLLM_CONFIGURE_LOGGING", logs._OURS):
        monkeypatch.delenv(k, raising=False)
    path = logs.route_vllm_logs(tmp_path / "run")
    assert path == tmp_path / "run" / "vllm.log"
    cfg = json.loads((tmp_path / "run" / logs.CONFIG_FILE).read_text())
    assert cfg["handlers"]["file"]["filename"] == str(path) and cfg["handlers"]["file"]["level"] == "INFO"
    assert cfg["handlers"]["console"]["level"] == "WARNING"
    assert cfg["loggers"]["vllm"]["propagate"] is False
    import os

    assert os.environ["VLLM_LOGGING_CONFIG_PATH"] == str(tmp_path / "run" / logs.CONFIG_FILE)
    # the next run (a sweep's next job) gets its own file
    assert logs.route_vllm_logs(tmp_path / "run2") == tmp_path / "run2" / "vllm.log"
    # a user's own vLLM logging config is left alone
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "/somewhere/mine.json")
    assert logs.route_vllm_logs(tmp_path / "run3") is None
    assert os.environ["VLLM_LOGGING_CONFIG_PATH"] == "/somewhere/mine.json"
    monkeypatch.delenv("VLLM_LOGGING_CONFIG_PATH")
    monkeypatch.setenv("VLLM_CONFIGURE_LOGGING", "0")
    assert logs.route_vllm_logs(tmp_path / "run4") is None


def test_engine_dtype_auto_is_float32_on_a_cpu_without_native_bf16(tmp_path):
    from s2distill.engines import base

    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse avx avx2 fma\n")
    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n")
    assert not base.cpu_has_native_bf16(str(avx2)) and base.cpu_has_native_bf16(str(amx))
    assert not base.cpu_has_native_bf16(str(tmp_path / "missing"))
    host = base.cpu_has_native_bf16()
    assert base.resolve_dtype("auto", on_gpu=False) == ("bfloat16" if host else "float32")
    assert base.resolve_dtype("auto", on_gpu=True) == "auto"  # the model's own dtype, vLLM decides
    assert base.resolve_dtype("bfloat16", on_gpu=False) == "bfloat16"  # explicit: kept
