"""train=kd: the teacher's context and token alignment, its cached artifact, config errors, and a
real KD training of a tiny student through TRL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2distill.errors import UserError
from s2distill.filters.base import Decision
from s2distill.methods import METHODS
from s2distill.methods.base import Trace
from s2distill.tasks import TASKS
from s2distill.teacher import completion_ids, sequences, teacher_chats

KD = ("train=kd", "task.n_train=6", "task.n_test=4", "generate.n=2")


def _s2a_case():
    task = TASKS.get("biased_qa")(n_train=4, n_test=4)
    row = task.unlabeled(task.load()["train"]).to_list()[0]
    method = METHODS.get("s2a")()
    trace = Trace("Paris", "Answer: Paris", 9, {"parse": "parsed", "context": "A question about capitals.",
                                                "question": "What is the capital of France?"})
    return task, row, method, trace


def test_s2a_teacher_sees_the_rewrite_and_never_the_original_text() -> None:
    task, row, method, trace = _s2a_case()
    chat = method.teacher_chat(row, trace, task)
    assert [m["role"] for m in chat] == ["user"]
    text = chat[0]["content"]
    assert "A question about capitals." in text and "What is the capital of France?" in text
    assert task.question(row) not in text  # the opinionated original never reaches the teacher


def test_teacher_chats_pick_a_sample_with_the_kept_answer_and_count_fallbacks() -> None:
    task, row, method, trace = _s2a_case()
    other = Trace("Lyon", "Answer: Lyon", 9, {**trace.steps, "context": "Something else."})
    ex = {"id": row["id"], "prompt": [{"role": "user", "content": task.direct_prompt(row)}],
          "completion": [{"role": "assistant", "content": "Answer: Paris"}]}
    by_id = {row["id"]: (row, Decision(True, "Paris", "majority"), [other, trace])}
    chats, fallbacks = teacher_chats(task, method, [ex], by_id, "system2")
    assert fallbacks == 0 and "A question about capitals." in chats[0][0]["content"]
    # no sample with the kept answer: the System-1 prompt, counted
    by_id = {row["id"]: (row, Decision(True, "Rome", "majority"), [other, trace])}
    chats, fallbacks = teacher_chats(task, method, [ex], by_id, "system2")
    assert fallbacks == 1 and chats[0] == ex["prompt"]
    # context none: the System-1 prompt for every example, no fallback counted
    assert teacher_chats(task, method, [ex], by_id, "none") == ([ex["prompt"]], 0)
    # a method without a System-2 context (system1) falls back for every example
    by_id = {row["id"]: (row, Decision(True, "Paris", "majority"), [trace])}
    assert teacher_chats(task, METHODS.get("system1")(), [ex], by_id, "system2")[1] == 1


def test_rar_and_cot_teachers_see_their_system2_context() -> None:
    task = TASKS.get("coin_flip")(n_train=4, n_test=4)
    row = task.unlabeled(task.load()["train"]).to_list()[0]
    rar = METHODS.get("rar")().teacher_chat(row, Trace("yes", "Answer: yes", 5, {"rephrased": " Is it up? "}), task)
    assert "(rephrased) Is it up?" in rar[0]["content"] and task.question(row) in rar[0]["content"]
    cot = METHODS.get("cot")().teacher_chat(row, Trace("yes", "Step 1 ... Answer: yes", 5), task)
    assert [m["role"] for m in cot] == ["user", "assistant", "user"]
    assert cot[1]["content"] == "Step 1 ... Answer: yes" and cot[2]["content"] == task.direct_prompt(row)


@pytest.mark.slow
def test_completion_ids_are_the_tokens_trl_labels(bundled_model, tiny_model, tmp_path) -> None:
    """The teacher is scored at exactly the tokens SFTTrainer trains on (real TRL preparation)."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    examples = [{"id": i, "prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}]}
                for i, (q, a) in enumerate([("Is it heads up? Answer yes or no.", "Answer: yes"),
                                            ("Name the capital.", "Answer: Paris, the capital of France")])]
    trainer = SFTTrainer(model=str(tiny_model), args=SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none",
                                                               completion_only_loss=True),
                         train_dataset=Dataset.from_list(examples), processing_class=tok)
    for ex, row in zip(examples, trainer.train_dataset):
        labelled = [t for t in row["labels"] if t != -100]
        assert completion_ids(tok, ex) == labelled and len(labelled) > 3
    # the teacher's sequence: its own prompt, then exactly those tokens
    chats = [[{"role": "user", "content": "Context: a coin. " + ex["prompt"][0]["content"]}] for ex in examples]
    seqs, starts = sequences(tok, tok, examples, chats)
    for ex, seq, start in zip(examples, seqs, starts):
        assert seq[start:] == completion_ids(tok, ex)
        assert tok.decode(seq[:start]).rstrip().endswith("assistant")


# -- the pipeline, on fake engines and a stand-in trainer (pure logic) -----------------------------------
def test_kd_run_scores_the_teacher_once_and_trains_on_its_rows(fake_run, fake_engine, tmp_path) -> None:
    def n_score_calls() -> int:
        return sum(c[1] == 0 for e in fake_engine for c in e.calls)  # score calls are logged with n = 0

    res = fake_run(*KD, "method=rar", run_dir=tmp_path / "a")
    t = res["training"]["teacher_scoring"]
    assert t["n_examples"] == res["training"]["n_examples"] > 0 and t["top_k"] == 20
    assert t["n_scored_tokens"] > 0 and t["n_context_fallback"] == 0
    assert t["compute_time_s"] >= 0  # kept in the artifact: the rerun below reports it from the cache
    assert res["teacher"] == res["model"]  # self-distillation by default
    model_dir = next(tmp_path.rglob("teacher.json")).parent
    teacher = json.loads((model_dir / "teacher.json").read_text())
    examples = json.loads((model_dir / "examples.json").read_text())
    assert len(teacher) == len(examples) and all(len(r["teacher_ids"][0]) == 20 for r in teacher)
    assert n_score_calls() == 1  # 6 rows fit one batch
    res2 = fake_run(*KD, "method=rar", run_dir=tmp_path / "b")  # a rerun: all cached, nothing scored
    assert n_score_calls() == 1
    assert res2["training"]["teacher_scoring"] == {**t, "time_s": res2["training"]["teacher_scoring"]["time_s"]}
    assert (tmp_path / "a/artifacts/teacher.jsonl").read_bytes() == (tmp_path / "b/artifacts/teacher.jsonl").read_bytes()


def test_teacher_stage_resumes_after_a_kill_to_the_same_records(fake_run, fake_engine, monkeypatch, tmp_path) -> None:
    import shutil

    from tests.conftest import FakeEngine

    args = (*KD, "method=rar", "generate.batch_size=2")
    n = fake_run(*args, run_dir=tmp_path / "whole")["training"]["n_examples"]
    sizes = [min(2, n - i) for i in range(0, n, 2)]
    assert len(sizes) >= 2  # the kill falls on a later batch
    whole = (tmp_path / "whole/artifacts/teacher.jsonl").read_bytes()
    for stage in ("teacher", "train"):  # what the stage and its consumer made, gone
        shutil.rmtree(tmp_path / "cache" / stage)
    real_score, calls = FakeEngine.score, []

    def dying(self, seqs, starts, k, desc=""):
        calls.append(len(seqs))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during the second batch
        return real_score(self, seqs, starts, k, desc)

    monkeypatch.setattr(FakeEngine, "score", dying)
    with pytest.raises(KeyboardInterrupt):
        fake_run(*args, run_dir=tmp_path / "killed")
    assert not (tmp_path / "killed/artifacts/teacher.jsonl").exists()
    monkeypatch.setattr(FakeEngine, "score", lambda self, *a: (calls.append(len(a[0])), real_score(self, *a))[1])
    fake_run(*args, run_dir=tmp_path / "resumed")
    assert calls == [sizes[0], *sizes[1:2], *sizes[1:]]  # batch 1, the killed batch 2, then only batch 2 on
    assert (tmp_path / "resumed/artifacts/teacher.jsonl").read_bytes() == whole  # byte for byte


@pytest.mark.parametrize(("override", "message"), [
    ("train.kd.alpha=1.5", "train.kd.alpha must be a number in [0, 1]"),
    ("train.kd.temperature=0", "train.kd.temperature must be a number > 0"),
    ("train.kd.divergence=kl", "train.kd.divergence must be one of forward_kl, reverse_kl, jsd"),
    ("train.kd.beta=-0.1", "train.kd.beta must be a number in [0, 1]"),
    ("train.kd.top_k=0", "train.kd.top_k must be an integer >= 1"),
    ("train.kd.mode=on_policy", "train.kd.mode: only offline is available"),
    ("train.kd.context=rewrite", "train.kd.context must be one of system2, none"),
    ("teacher=/nonexistent/teacher", "model folder /nonexistent/teacher not found"),
])
def test_bad_kd_options_fail_in_one_line_before_any_engine(compose, fake_engine, override, message) -> None:
    from s2distill import pipeline

    with pytest.raises(UserError) as e:
        pipeline.build(compose(*KD, override), None)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert fake_engine == []


def test_a_teacher_with_another_vocabulary_fails_before_any_engine(compose, fake_engine, bundled_model,
                                                                   tmp_path) -> None:
    from transformers import AutoTokenizer

    from s2distill import pipeline

    other = tmp_path / "teacher"
    tok = AutoTokenizer.from_pretrained(bundled_model.path)
    tok.add_tokens(["<not_in_the_student>"])
    tok.save_pretrained(other)
    (other / "config.json").write_text((Path(bundled_model.path) / "config.json").read_text())
    with pytest.raises(UserError, match="do not share a vocabulary"):
        pipeline.build(compose(*KD, f"teacher={other}"), None)
    assert fake_engine == []
    pipeline.build(compose("train=full", f"teacher={other}"), None)  # hard labels: any pair


@pytest.mark.slow
def test_kd_training_with_the_students_own_scores_starts_at_zero_divergence(tiny_model, tmp_path) -> None:
    """Real TRL training through KDTrainer. The teacher here is the student itself scored by the
    HF engine on the System-1 prompt, so at the first step the two distributions are the same
    at every completion token: the divergence is ~0 only if teacher rows and student positions
    line up token for token. Then a real update moves the weights."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from s2distill.engines.hf import HFEngine
    from s2distill.train import train

    tok = AutoTokenizer.from_pretrained(tiny_model)
    examples = [{"id": i, "prompt": [{"role": "user", "content": f"Question {i}: is it heads up?"}],
                 "completion": [{"role": "assistant", "content": "Answer: yes" if i % 2 else "Answer: no"}]}
                for i in range(4)]
    seqs, starts = sequences(tok, tok, examples, [ex["prompt"] for ex in examples])
    engine = HFEngine(str(tiny_model), use_tqdm=False)
    scored = engine.score(seqs, starts, 8)
    engine.close()
    teacher = [{"teacher_ids": s.ids, "teacher_logprobs": s.logprobs} for s in scored]
    cfg = {"dtype": "float32", "save_dtype": "float32",
           "kd": {"alpha": 0.0, "temperature": 2.0, "divergence": "reverse_kl", "top_k": 8},
           "sft": {"max_steps": 2, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1,
                   "report_to": "none", "save_strategy": "no", "completion_only_loss": True}}
    info = train(examples, str(tiny_model), cfg, tmp_path / "out", tmp_path / "work", teacher)
    assert info["kd"]["divergence"] == "reverse_kl" and len(info["kd_divergence"]) == 2
    assert info["kd_divergence"][0] == pytest.approx(0.0, abs=1e-4)
    assert info["kd_divergence"][1] > 1e-4  # the first update moved the student away from its old self
    before = load_file(Path(tiny_model) / "model.safetensors")
    after = load_file(tmp_path / "out" / "model.safetensors")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert (after[name] - before[name]).abs().max().item() > 0


@pytest.mark.slow
def test_cli_kd_with_a_different_student_end_to_end(cli, tiny_model, bundled_model, tmp_path) -> None:
    """The real path: the bundled model as teacher (generation, filter, System-2 arm and soft
    targets through vLLM's prompt_logprobs), a tiny random-init student trained by KD through TRL,
    and both evaluated."""
    r = cli("task=coin_flip", "method=cot", "train=kd", f"model.name_or_path={tiny_model}",
            f"teacher={bundled_model.path}", "task.n_train=8", "task.n_test=4", "generate.n=2",
            "filter.threshold=0.5", "method.max_tokens.reason=48", "train.kd.top_k=5", "+train.sft.max_steps=2",
            "train.sft.logging_steps=1")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(next((tmp_path / "out").rglob("results.json")).read_text())
    assert res["teacher"].startswith("local:" + str(bundled_model.path)) and res["model"].startswith(f"local:{tiny_model}")
    assert res["n_kept"] > 0, res["filter_reasons"]
    t = res["training"]
    assert t["teacher_scoring"]["n_examples"] == t["n_examples"] == res["n_kept"]
    assert t["teacher_scoring"]["top_k"] == 5 and t["teacher_scoring"]["n_context_fallback"] == 0
    assert t["kd"]["context"] == "system2" and len(t["kd_divergence"]) == 2 and t["kd_divergence"][0] > 0
    teacher = [json.loads(x) for x in (next((tmp_path / "out").rglob("artifacts")) / "teacher.jsonl").read_text().splitlines()]
    assert all(len(ids) == 5 and lp == sorted(lp, reverse=True) for rec in teacher
               for ids, lp in zip(rec["teacher_ids"], rec["teacher_logprobs"]))
    # the teacher answers System 2, the student System 1 and Distilled: different models, different outputs
    assert res["system2"]["mean_tokens"] > 0 and res["distilled"]["n"] == res["system1"]["n"] == 4
    assert res["engine_starts"] == 3  # teacher once (generate .. soft targets), student, distilled


def test_two_rounds_give_two_blocks_and_round_two_starts_from_round_ones_model(fake_run, fake_engine,
                                                                                  tmp_path) -> None:
    res = fake_run("task.n_train=6", "task.n_test=4", "generate.n=2", "filter.threshold=0.5", "rounds=2")
    first, second = res["rounds"]
    assert (first["round"], second["round"]) == (1, 2) and res["round"] == 2
    assert first["n_kept"] > 0 and first["model_fingerprint"]
    # round 2's System-2 model (teacher) and student base are round 1's distilled model
    assert second["teacher"] == second["model"] == first["model_fingerprint"]
    assert first["teacher"] == first["model"] != second["model"]
    assert second["model_fingerprint"] != first["model_fingerprint"]
    # engines: the base model (round 1), round 1's model folder (its distilled arm, then all of
    # round 2's generation and System-1/2 arms on the same live engine), round 2's model
    models = [Path(e.model).name for e in fake_engine]
    assert models[1:] == [first["model_fingerprint"], second["model_fingerprint"]]
    assert second["computed"][:1] == ["generate"]  # round 2 generated anew, on that model


@pytest.mark.parametrize(("override", "message"), [
    ("rounds=0", "rounds must be an integer >= 1"),
    ("rounds=2 train=lora", "rounds > 1 starts each round from the last distilled model"),
])
def test_bad_rounds_fail_in_one_line(compose, fake_engine, override, message) -> None:
    from s2distill import pipeline

    with pytest.raises(UserError, match=message):
        pipeline.build(compose(*override.split()), None)
    assert fake_engine == []
