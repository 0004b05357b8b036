"""``run(cfg)``: generate → filter → train → evaluate, top-down.

Each stage is a small function over typed inputs that reads or writes one fingerprint-keyed
artifact (see ``artifacts.py``); a finished stage is loaded, never recomputed, and the engine is
started only by a stage that actually generates. Gold labels stay out of generate, filter and
train: those stages only ever see ``task.unlabeled`` rows.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from s2distill import launch
from s2distill.artifacts import Store, atomic_write_text, fingerprint, strict_json
from s2distill.engines import AdapterEngine, EnginePool, Sampling, derive_seed
from s2distill.engines.base import resolve_dtype
from s2distill.errors import UserError
from s2distill.evaluate import score_arm
from s2distill.filters import FILTERS, Decision, Filter, FilterTools
from s2distill.methods import METHODS, Method, Trace
from s2distill.methods.demos import check_overlap
from s2distill.metrics import compare_paired, distribution, majority_baseline, wilson_ci
from s2distill.models import ResolvedModel, check_chat_template, check_shared_vocab, resolve
from s2distill.sft_data import fit, sft_examples
from s2distill.tasks import TASKS, Task
from s2distill.tasks.base import GOLD_COLUMNS
from s2distill.train import INFO_FILE, precision_warning
from s2distill.validate import check_config

log = logging.getLogger(__name__)

ARMS = ("system1", "system2", "distilled")
#: engine options that do not change what the engine generates (left out of fingerprints)
COSMETIC_ENGINE_KEYS = ("use_tqdm", "expected_tokens", "compile_costs", "compile", "max_logprobs",
                        "cpu_top_p_prefilter")  # the same top-p mask either way (engines/fast_top_p.py)
#: what the base model's engine generates (sizes ``engine.compile: auto``)
BASE_JOBS = ("generate", "system1", "system2")


@dataclass
class Context:
    """What every stage shares; built and validated before any work starts."""

    cfg: DictConfig
    task: Task
    method: Method
    filter: Filter
    model: ResolvedModel  # the student: System-1 and Distilled arms, the base of training
    store: Store
    engines: EnginePool
    train_cfg: dict[str, Any] = field(default_factory=dict)
    #: the System-2 model: generation, the filter, the System-2 arm and KD's soft targets
    #: (``teacher=``; the student itself by default: self-distillation)
    teacher: ResolvedModel | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: generated tokens per sampled stage (``sample_traces``), cached stages included
    tokens: dict[str, int] = field(default_factory=dict)
    #: ``synthesize`` options when the training inputs are grown from seeds (``synthesize.k > 0``)
    synth: Any = None
    #: the synthesized inputs' fingerprint (set by ``synthesize_inputs``): generation's upstream,
    #: so samples of synthesized inputs never come from a real-input cell's cache
    inputs_fp: str | None = None

    def __post_init__(self) -> None:
        self.teacher = self.teacher or self.model

    @property
    def adapter(self) -> bool:
        """The distilled model is a LoRA adapter served on the base model's engine."""
        return bool(self.train_cfg.get("lora")) and not self.train_cfg.get("merge")

    @property
    def serves_adapter_in_process(self) -> bool:
        """The base model's in-process engine stays up through training and serves the adapter."""
        return self.adapter and not self.engines.isolate

    @property
    def launched(self) -> bool:
        """Training runs under ``accelerate launch`` (several processes, or ``isolate``)."""
        t = self.train_cfg
        return int(t.get("num_processes", 1)) * int(t.get("num_machines", 1)) > 1 or self.engines.isolate

    def engine_key(self, jobs: tuple[str, ...]) -> dict[str, Any]:
        """What of the engine shapes its samples: its name and config (cosmetic keys left out),
        the resolved compile mode for ``jobs`` (compiled and eager numerics differ) and the chat
        template options. Part of every sampled stage's fingerprint."""
        e = {k: v for k, v in self.engines.cfg.items() if k not in COSMETIC_ENGINE_KEYS}
        e["dtype"] = resolve_dtype(e.get("dtype", "auto"))  # what runs: auto is float32 on most CPUs
        if e.get("name", "vllm") == "vllm":
            from s2distill.engines.vllm import resolve_compile

            c = self.engines.cfg
            e["compiled"] = resolve_compile(self.model.path, c.get("compile", "auto"),
                                            expected_tokens(self.cfg, self.task, self.method, jobs),
                                            e["dtype"], c.get("max_model_len", 2048),
                                            c.get("compile_costs"))[0]
        return e

    @contextmanager
    def timed(self, stage: str):
        t0 = time.perf_counter()
        yield
        self.timings[stage] = round(time.perf_counter() - t0, 2)


def build(cfg: DictConfig, run_dir: Path | None) -> Context:
    """Instantiate and validate task, method, filter and model (user errors surface here)."""
    check_config(cfg)  # every option, library ones included, before any model loads (validate.py)
    def opts(node: DictConfig) -> dict[str, Any]:
        d = OmegaConf.to_container(node, resolve=True)
        d.pop("name", None)
        return d

    task = TASKS.get(cfg.task.name)(**opts(cfg.task))
    method = METHODS.get(cfg.method.name)(**opts(cfg.method))
    method.check_task(task)
    filt = FILTERS.get(cfg.filter.name)(**opts(cfg.filter))
    filt.check_task(task)
    if int(cfg.generate.n) < 1:
        raise UserError(f"generate.n must be >= 1 (got {cfg.generate.n})")
    if int(cfg.generate.batch_size) < 1:
        raise UserError(f"generate.batch_size must be >= 1 (got {cfg.generate.batch_size})")
    if int(cfg.eval.k) < 1:
        raise UserError(f"eval.k must be >= 1 (got {cfg.eval.k})")
    if cfg.engine.name not in ("vllm", "hf"):
        raise UserError(f"unknown engine {cfg.engine.name!r} (known: hf, vllm)")
    train_cfg = OmegaConf.to_container(cfg.train, resolve=True)
    if warning := precision_warning(train_cfg):
        log.warning(warning)
    model = resolve(cfg.model.name_or_path, cfg.paths.models_dir)
    check_chat_template(model.path)
    teacher = model
    if cfg.get("teacher"):
        teacher = resolve(str(cfg.teacher), cfg.paths.models_dir)
        check_chat_template(teacher.path, "teacher")
    if train_cfg.get("kd") and teacher.path != model.path:
        check_shared_vocab(teacher.path, model.path)  # soft targets are distributions over one vocabulary
    store = Store(cfg.paths.cache_dir, run_dir)
    engine_cfg = OmegaConf.to_container(cfg.engine, resolve=True)
    engine_cfg["expected_tokens"] = expected_tokens(cfg, task, method, BASE_JOBS)
    engine_cfg["chat_template_kwargs"] = dict(OmegaConf.to_container(cfg.model, resolve=True)
                                              .get("chat_template_kwargs") or {})
    if train_cfg.get("lora") and not train_cfg.get("merge"):
        engine_cfg["max_lora_rank"] = int(train_cfg["lora"].get("r", 8))  # serve the distilled adapter
    if int(cfg.get("rounds", 1)) > 1 and train_cfg.get("lora") and not train_cfg.get("merge"):
        raise UserError("rounds > 1 starts each round from the last distilled model, which train=lora keeps as an "
                        "adapter: set train.merge=true (or use train=full / train=kd)")
    isolate = cfg.get("isolate", "auto")
    if isolate not in (True, False, "auto"):
        raise UserError(f"isolate must be true, false or auto (got {isolate!r})")
    engines = EnginePool(engine_cfg, isolate=launch.on_gpu() if isolate == "auto" else bool(isolate))
    synth = None
    if int((cfg.get("synthesize") or {}).get("k") or 0) > 0:
        from s2distill.synthesize import Options

        synth = Options.from_config(OmegaConf.to_container(cfg.synthesize, resolve=True))
        if not task.synthesizable:
            raise UserError(f"synthesize: task {task.name} has structured inputs that cannot be synthesized as text")
        if synth.k > task.n_train:
            raise UserError(f"synthesize.k={synth.k} seeds but task.n_train={task.n_train}: the seeds are train inputs")
    if (train_cfg.get("kd") or {}).get("top_k", 0) > 20:
        engine_cfg["max_logprobs"] = int(train_cfg["kd"]["top_k"])  # vLLM caps prompt logprobs at 20
    return Context(cfg, task, method, filt, model, store, engines, train_cfg, teacher=teacher, synth=synth)


def expected_tokens(cfg: DictConfig, task: Task, method: Method, jobs: tuple[str, ...]) -> int:
    """Upper bound (from max_tokens) of what one engine generates for ``jobs``: what
    ``engine.compile: auto`` weighs against the compile warm-up."""
    s1, s2 = sum(METHODS.get("system1")().max_tokens.values()), sum(method.max_tokens.values())
    k = int(cfg.eval.k)
    per_job = {"generate": task.n_train * int(cfg.generate.n) * s2, "system1": task.n_test * k * s1,
               "system2": task.n_test * k * s2, "distilled": task.n_test * k * s1}
    return sum(per_job[j] for j in jobs)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """One cell: ``rounds`` (default 1) of generate → filter → train → evaluate. Round r + 1
    starts from round r's distilled model, as its System-2 model (teacher) and as its student
    base; it stops early when a round's filter keeps nothing. results.json is the last round's,
    with every round's block under ``rounds`` when there are several."""
    ctx = build(cfg, run_dir)
    data = ctx.task.load()
    train_rows = ctx.task.unlabeled(data["train"]).to_list()
    test_rows = data["test"].to_list()
    if ctx.method.demos is not None:  # before any engine starts
        check_overlap(ctx.method.demos, [ctx.task.question(r) for r in train_rows + test_rows],
                      ctx.task.core_question)
    n_rounds, blocks = int(cfg.get("rounds", 1)), []
    gold_train: list[dict[str, Any]] | None = data["train"].to_list()
    with ctx.engines:
        synthesis = None
        if ctx.synth is not None:  # the training inputs grown from the first k (never the test split)
            train_rows, synthesis = synthesize_inputs(ctx, train_rows)
            gold_train = None  # synthesized inputs have no gold: no kept_precision
        for r in range(1, n_rounds + 1):
            results, model_dir, train_fp = one_round(ctx, train_rows, test_rows, gold_train)
            if synthesis is not None:
                results = {**results, "synthesis": synthesis}
            blocks.append({"round": r, "model_fingerprint": train_fp if model_dir else None, **results})
            if r == n_rounds or model_dir is None:
                if r < n_rounds:
                    log.warning("round %d kept nothing to train on: no round %d", r, r + 1)
                break
            distilled = ResolvedModel(str(model_dir), train_fp)  # keyed as its distilled arm was
            ctx = replace(ctx, model=distilled, teacher=distilled, timings={}, tokens={})
            ctx.engines.cfg["expected_tokens"] = expected_tokens(cfg, ctx.task, ctx.method, BASE_JOBS)
    results = blocks[-1] if n_rounds == 1 else {
        **blocks[-1], "rounds": [{k: v for k, v in b.items() if k != "config"} for b in blocks]}
    if n_rounds == 1:
        results = {k: v for k, v in results.items() if k not in ("round", "model_fingerprint")}
    atomic_write_text(run_dir / "results.json", strict_json(results, indent=2))
    log.info("results written to %s", run_dir / "results.json")
    return results


def one_round(ctx: Context, train_rows: list[dict[str, Any]], test_rows: list[dict[str, Any]],
              gold_train: list[dict[str, Any]] | None) -> tuple[dict[str, Any], Path | None, str]:
    """generate → filter → train → evaluate with ``ctx``'s teacher and student."""
    samples, gen_fp = generate(ctx, train_rows)
    decisions, filt_fp = filter_samples(ctx, train_rows, samples, gen_fp)
    # the teacher's stages first, then the student's: a distinct teacher's engine starts once
    evals = {"system2": evaluate(ctx, "system2", test_rows)}
    training_set = sft_data(ctx, train_rows, decisions, filt_fp, samples)
    evals["system1"] = evaluate(ctx, "system1", test_rows)
    if not ctx.serves_adapter_in_process:
        # free the base model's engine before training needs the memory; an in-process (CPU)
        # engine that will serve the distilled LoRA adapter stays: no second model load
        ctx.engines.close()
        ctx.engines.cfg["expected_tokens"] = expected_tokens(ctx.cfg, ctx.task, ctx.method, ("distilled",))
    model_dir, train_fp, training = train(ctx, training_set)
    evals["distilled"] = evaluate(ctx, "distilled", test_rows, model_dir, train_fp) if model_dir else None
    results = summarize(ctx, train_rows, test_rows, decisions, evals, training, samples=samples, gold_train=gold_train)
    return results, model_dir, train_fp


# -- stages ---------------------------------------------------------------------------------------
def synthesize_inputs(ctx: Context, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The first ``synthesize.k`` unlabeled train inputs as seeds, grown to ``task.n_train`` by
    the (teacher) model (``synthesize.py``); a resumable artifact of its own."""
    from s2distill import synthesize as syn

    o, seed_rows = ctx.synth, rows[: ctx.synth.k]
    seeds = [ctx.task.question(r) for r in seed_rows]
    fp = fingerprint("synthesize", {"task": ctx.task.fingerprint_config(), "model": ctx.teacher.key,
                                    "options": o.__dict__, "seeds": seeds, "n_target": ctx.task.n_train,
                                    "engine": ctx.engine_key(BASE_JOBS)})
    with ctx.timed("synthesize"):
        recs = ctx.store.load_records("synthesize", fp)
        if recs is None:
            recs = syn.synthesize(lambda: ctx.engines.get(ctx.teacher.path), ctx.task, seeds, ctx.task.n_train, o,
                                  int(ctx.cfg.seed), ctx.store.load_batches("synthesize", fp),
                                  lambda r, judged: ctx.store.append_batch("synthesize", fp, r, judged))
            ctx.store.save_records("synthesize", fp, recs)
    ctx.inputs_fp = fp
    kept = [x["question"] for x in recs if x["verdict"] == "kept"][: max(ctx.task.n_train - len(seeds), 0)]
    out = seed_rows + [{"id": f"synth-{i}", "question": q} for i, q in enumerate(kept)]
    ctx.tokens["generate_synthesize"] = sum(x["tokens"] for x in recs)
    info = syn.report(recs, len(seeds), len(kept))
    log.info("synthesized inputs: %d kept of %d generated (%d duplicates, %d invalid); %d training inputs",
             info["n_kept"], info["n_generated"], info["n_duplicate"], info["n_invalid"], len(out))
    return out, {**info, "examples_kept": kept[:5],
                 "examples_dropped": [x for x in recs if x["verdict"] != "kept"][:5]}


def sampling(cfg: DictConfig, node: str) -> Sampling:
    c = cfg[node]
    return Sampling(temperature=float(c.temperature), top_p=float(c.top_p), extra=dict(c.get("extra") or {}))


def sample_traces(
    ctx: Context, stage: str, fp: str, rows: list[dict[str, Any]], method: Method, model: str, n: int, samp: Sampling,
    adapter: str | None = None,
) -> list[list[Trace]]:
    """Run ``method`` on ``rows`` in resumable batches; one engine call per step per batch
    (through the LoRA ``adapter`` on top of ``model``, if given).

    Batch ``b`` is sampled with the seed ``derive_seed(engine seed, stage, b)``: its samples do
    not depend on what the engine generated before, so a killed run that resumes regenerates
    exactly the samples an uninterrupted run would have.
    """
    cached = ctx.store.load_records(stage, fp)
    if cached is None:
        done = ctx.store.load_batches(stage, fp)
        seed = ctx.cfg.engine.get("seed", ctx.cfg.seed)
        bs = int(ctx.cfg.generate.batch_size)
        starts = list(range(0, len(rows), bs))
        if done:
            log.info("%s: resuming, %d of %d batches already done", stage, len(done), len(starts))
        for b, start in enumerate(starts):
            batch = rows[start : start + bs]
            if [rec["id"] for rec in done.get(b, [])] == [r["id"] for r in batch]:
                continue  # finished by an earlier run (same rows: batch_size may have changed)
            engine = ctx.engines.get(model)
            traces = method.run(batch, ctx.task, AdapterEngine(engine, adapter) if adapter else engine, n,
                                samp.replace(seed=derive_seed(seed, stage, b)))
            done[b] = [{"id": r["id"], "traces": [t.to_dict() for t in ts]} for r, ts in zip(batch, traces)]
            ctx.store.append_batch(stage, fp, b, done[b])
        cached = [rec for b in range(len(starts)) for rec in done[b]]
        ctx.store.save_records(stage, fp, cached, {"n_rows": len(rows), "model": model})
    by_id = {rec["id"]: rec["traces"] for rec in cached}
    if missing := [r["id"] for r in rows if r["id"] not in by_id]:
        raise RuntimeError(f"{stage} artifact {fp} lacks {len(missing)} of these {len(rows)} inputs (e.g. {missing[0]!r}): "
                           "its fingerprint misses a dependency of the inputs")
    out = [[Trace(**t) for t in by_id[r["id"]]] for r in rows]
    ctx.tokens[stage] = sum(t.tokens for ts in out for t in ts)
    return out


def generate(ctx: Context, rows: list[dict[str, Any]]) -> tuple[list[list[Trace]], str]:
    """System-2 samples on the unlabeled training inputs."""
    cfg = ctx.cfg
    samp = sampling(cfg, "generate")
    fp = fingerprint("generate", {
        "task": ctx.task.fingerprint_config(), "method": ctx.method.fingerprint_config(),
        "model": ctx.teacher.key, "n": int(cfg.generate.n), "sampling": samp.__dict__,
        "engine": ctx.engine_key(BASE_JOBS),
    }, [ctx.inputs_fp] if ctx.inputs_fp else [])
    with ctx.timed("generate"):
        traces = sample_traces(ctx, "generate", fp, rows, ctx.method, ctx.teacher.path, int(cfg.generate.n), samp)
    return traces, fp


def filter_samples(
    ctx: Context, rows: list[dict[str, Any]], traces: list[list[Trace]], gen_fp: str
) -> tuple[list[Decision], str]:
    """Consistency filter over each input's samples; decisions (and vote counts) are saved."""
    fp = fingerprint("filter", ctx.filter.fingerprint_config(), [gen_fp])
    n, samp = int(ctx.cfg.generate.n), sampling(ctx.cfg, "generate")

    def resample(variant_rows: list[dict[str, Any]], tag: str) -> list[list[Trace]]:
        # its own stage name: its artifact sits beside generate.jsonl in the run dir, not over it
        vfp = fingerprint("generate", {"variant": tag}, [gen_fp])
        return sample_traces(ctx, f"generate_{tag}", vfp, variant_rows, ctx.method, ctx.teacher.path, n, samp)

    tools = FilterTools(engine=lambda: ctx.engines.get(ctx.teacher.path), resample=resample)
    with ctx.timed("filter"):
        recs = ctx.store.load_records("filter", fp)
        if recs is None:
            decisions = ctx.filter.decide(rows, traces, ctx.task, tools)
            recs = [{"id": r["id"], **d.to_dict()} for r, d in zip(rows, decisions)]
            ctx.store.save_records("filter", fp, recs)
    return [Decision(**{k: v for k, v in r.items() if k != "id"}) for r in recs], fp


@dataclass
class SFTData:
    """The training set: fitted SFT examples (and, for ``train=kd``, the teacher's top-k at each
    completion token, row for row), with the fingerprint training keys on."""

    examples: list[dict[str, Any]]
    fp: str
    counts: dict[str, Any]
    teacher: list[dict[str, Any]] | None = None
    teacher_fp: str | None = None


def sft_data(
    ctx: Context, rows: list[dict[str, Any]], decisions: list[Decision], filt_fp: str,
    samples: list[list[Trace]] | None = None,
) -> SFTData:
    """System-1 prompt → kept answer, fitted to ``max_length`` (an artifact of its own); with
    ``train=kd`` also the teacher's soft targets (``teacher_scores``)."""
    t, chat_kw = ctx.train_cfg, ctx.engines.cfg.get("chat_template_kwargs") or {}
    max_length = (t.get("sft") or {}).get("max_length")
    data_fp = fingerprint("sft_data", {"model": ctx.model.key, "prompt": ctx.task.direct_instruction,
                                       "max_length": max_length, "truncation": t.get("truncation", "prompt"),
                                       "chat_template_kwargs": chat_kw, "schema": 2}, [filt_fp])
    examples = ctx.store.load_records("sft_data", data_fp)
    if examples is None:
        from transformers import AutoTokenizer

        raw = sft_examples(ctx.task, rows, decisions, chat_kw)
        fitted = fit(raw, AutoTokenizer.from_pretrained(ctx.model.path), max_length, t.get("truncation", "prompt"))
        examples = fitted.examples
        ctx.store.save_records("sft_data", data_fp, examples, {
            "n_kept": len(raw), "n_truncated": fitted.n_truncated, "n_dropped": fitted.n_dropped})
    data = SFTData(examples, data_fp, ctx.store.info("sft_data", data_fp))
    if t.get("kd") and examples:
        if samples is None:
            raise RuntimeError("train=kd needs the System-2 samples to build the teacher's context")
        data.teacher, data.teacher_fp, scoring = teacher_scores(ctx, rows, decisions, samples, data)
        data.counts = {**data.counts, "teacher_scoring": scoring}
    return data


def teacher_scores(
    ctx: Context, rows: list[dict[str, Any]], decisions: list[Decision], samples: list[list[Trace]], data: SFTData,
) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """The teacher's top-k log-probabilities at every completion token of the SFT examples,
    conditioned on the System-2 context of a sample that gave the kept answer (``kd.context:
    system2``) or on the System-1 prompt (``none``); captured once through the engine (vLLM
    ``prompt_logprobs``), in resumable batches, as a fingerprinted artifact. The teacher's
    engine is closed before the student trains."""
    from transformers import AutoTokenizer

    from s2distill import teacher as kd_teacher

    kd, chat_kw = ctx.train_cfg["kd"], ctx.engines.cfg.get("chat_template_kwargs") or {}
    fp = fingerprint("teacher", {"teacher": ctx.teacher.key, "top_k": int(kd["top_k"]), "context": kd["context"],
                                 "method": ctx.method.fingerprint_config(), "chat_template_kwargs": chat_kw,
                                 "engine": ctx.engine_key(BASE_JOBS)}, [data.fp])
    with ctx.timed("teacher_scores"):
        recs = ctx.store.load_records("teacher", fp)
        if recs is None:
            t0 = time.monotonic()
            by_id = {r["id"]: (r, d, ts) for r, d, ts in zip(rows, decisions, samples)}
            chats, fallbacks = kd_teacher.teacher_chats(ctx.task, ctx.method, data.examples, by_id, kd["context"])
            seqs, starts = kd_teacher.sequences(AutoTokenizer.from_pretrained(ctx.model.path),
                                                AutoTokenizer.from_pretrained(ctx.teacher.path),
                                                data.examples, chats, chat_kw)
            done = ctx.store.load_batches("teacher", fp)
            bs = int(ctx.cfg.generate.batch_size)
            for b, start in enumerate(range(0, len(seqs), bs)):
                if b in done:
                    continue
                scored = ctx.engines.get(ctx.teacher.path).score(seqs[start : start + bs], starts[start : start + bs],
                                                                  int(kd["top_k"]), "teacher: soft targets")
                done[b] = [{"teacher_ids": s.ids, "teacher_logprobs": s.logprobs} for s in scored]
                ctx.store.append_batch("teacher", fp, b, done[b])
            recs = [rec for b in range(len(done)) for rec in done[b]]
            ctx.store.save_records("teacher", fp, recs, {
                "n_examples": len(seqs), "n_context_fallback": fallbacks, "top_k": int(kd["top_k"]),
                "n_sequence_tokens": sum(map(len, seqs)), "n_scored_tokens": sum(len(s) - b for s, b in zip(seqs, starts)),
                # this call's scoring time (a resumed run: its last part), kept so that a cached
                # artifact still reports what the soft targets cost
                "compute_time_s": round(time.monotonic() - t0, 2)})
    info = {**ctx.store.info("teacher", fp), "time_s": ctx.timings["teacher_scores"]}
    return recs, fp, info


def train(ctx: Context, data: SFTData) -> tuple[Path | None, str, dict[str, Any]]:
    """Fine-tune the student on ``data``: SFT on the kept answers (``train=kd``: plus the
    teacher's soft targets), in this process (1 CPU process) or under ``accelerate launch``
    (``launch.py``)."""
    from s2distill.train import train as sft

    t = ctx.train_cfg
    fp = fingerprint("train", {"train": t, "model": ctx.model.key}, [data.teacher_fp or data.fp])
    if not data.examples:
        log.warning("the filter kept no inputs (or none fit max_length): nothing to train on, no distilled model")
        return None, fp, {**data.counts, "world_size": None}
    with ctx.timed("train"):
        out = ctx.store.load_dir("train", fp)
        if out is None:
            tmp = ctx.store.staging_dir("train", fp)
            work = ctx.store.dir("train", fp).with_name(f".{fp}.checkpoints")
            if ctx.launched:  # its own processes: their memory comes back when they exit
                spec = tmp.with_name(f"{tmp.name}.train.json")
                atomic_write_text(spec, json.dumps(t))
                args = ["--data", str(ctx.store.dir("sft_data", data.fp) / "records.jsonl"), "--model", ctx.model.path,
                        "--config", str(spec), "--out", str(tmp), "--work", str(work)]
                if data.teacher_fp:
                    args += ["--teacher", str(ctx.store.dir("teacher", data.teacher_fp) / "records.jsonl")]
                log_file = (ctx.store.run_dir or tmp.parent) / "train.log"
                launch.run(launch.command(args, t), log_file)
                spec.unlink(missing_ok=True)
            else:
                sft(data.examples, ctx.model.path, t, tmp, work, data.teacher)
            if not (tmp / INFO_FILE).is_file() or not any((tmp / f).is_file() for f in (
                    "config.json", "adapter_config.json")):
                raise RuntimeError(f"training finished without saving a model in {tmp}")
            out = ctx.store.commit_dir("train", fp, tmp)
    info = json.loads((out / INFO_FILE).read_text())
    return out, fp, {**data.counts, **info}


def evaluate(
    ctx: Context, arm: str, rows: list[dict[str, Any]], model_dir: Path | None = None, upstream: str | None = None
) -> dict[str, Any]:
    """Run one arm on the test split (greedy by default, majority@k with ``eval.k``) and score it."""
    cfg = ctx.cfg
    method = ctx.method if arm == "system2" else METHODS.get("system1")()
    base = ctx.teacher if arm == "system2" else ctx.model
    model_key = upstream or base.key
    adapter = str(model_dir) if model_dir and ctx.adapter else None
    model_path = str(model_dir) if model_dir and not adapter else base.path
    samp = sampling(cfg, "eval")
    inputs = [{k: v for k, v in r.items() if k not in GOLD_COLUMNS} for r in rows]  # prompts never see gold
    fp = fingerprint("eval", {
        "task": ctx.task.fingerprint_config(), "method": method.fingerprint_config(), "model": model_key,
        "k": int(cfg.eval.k), "sampling": samp.__dict__,
        "engine": ctx.engine_key(BASE_JOBS if model_dir is None or ctx.serves_adapter_in_process else ("distilled",)),
    })
    # with method=system1 the System-2 arm IS System 1 on the base model: same fingerprint, so it
    # shares the System-1 arm's artifact instead of generating it a second time
    name = "system1" if arm == "system2" and method.name == "system1" and ctx.teacher == ctx.model else arm
    with ctx.timed(f"eval_{arm}"):
        traces = sample_traces(ctx, f"eval_{name}", fp, inputs, method, model_path, int(cfg.eval.k), samp, adapter)
    perturbed = None
    pert = ctx.task.perturbation()
    if pert is not None:
        # the same arm on the perturbed inputs (e.g. A/B swapped), for score_arm's inconsistent_rate
        stage, pfp = f"eval_{name}_{pert.name}", fingerprint("eval", {"variant": pert.name}, [fp])
        with ctx.timed(f"eval_{arm}_{pert.name}"):
            perturbed = sample_traces(ctx, stage, pfp, [pert.row(r) for r in inputs], method, model_path,
                                      int(cfg.eval.k), samp, adapter)
    return {**score_arm(ctx.task, rows, traces, perturbed), **method.step_metrics(inputs, traces, ctx.task)}


# -- results ----------------------------------------------------------------------------------------
def summarize(
    ctx: Context, train_rows: list[dict[str, Any]], test_rows: list[dict[str, Any]],
    decisions: list[Decision], evals: dict[str, dict[str, Any] | None], training: dict[str, Any],
    samples: list[list[Trace]] | None = None, gold_train: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """results.json. ``gold_train`` (the train split WITH gold) only scores the kept answers after
    the fact (``kept_precision``); nothing trained on depends on it."""
    cfg = ctx.cfg
    kept = [d for d in decisions if d.kept]
    golds = [r["gold"] for r in test_rows]
    # the System-2 side's cost on the training inputs: its samples, any resampled variant (swap's
    # A/B-swapped generation, stage generate_<tag>) and what the filter generated itself (USC's
    # selection calls, Decision.tokens)
    gen_tokens = {s: t for s, t in ctx.tokens.items() if s == "generate" or s.startswith("generate_")}
    gen_tokens["filter"] = sum(d.tokens for d in decisions)
    return {
        "task": ctx.task.name,
        "method": ctx.method.name,
        "filter": ctx.filter.name,
        "model": ctx.model.key,
        "teacher": ctx.teacher.key,
        "engine": cfg.engine.name,
        "engine_config": ctx.engine_key(BASE_JOBS),
        "seed": int(cfg.seed),
        "n_train": len(train_rows),
        "n_test": len(test_rows),
        "n_samples": int(cfg.generate.n),
        "eval_k": int(cfg.eval.k),
        "n_kept": len(kept),
        "generate_tokens": sum(gen_tokens.values()),
        "generate_tokens_by_stage": gen_tokens,
        "kept_label_distribution": distribution([d.answer for d in kept], top=None if ctx.task.labels else 10),
        **kept_precision(ctx.task, decisions, gold_train),
        "generate_step_metrics": ctx.method.step_metrics(train_rows, samples, ctx.task) if samples else {},
        "demos": ctx.method.demos.info() if ctx.method.demos is not None else None,
        "filter_reasons": distribution([d.reason for d in decisions]),
        "test_label_distribution": distribution(golds, top=None if ctx.task.labels else 10),
        "majority_baseline": majority_baseline(golds),
        # indices of the task's named test subsets (e.g. biased prompts), so paired tests between
        # cells (a KD variant vs hard-label SFT on the same test inputs) can be computed from files
        "test_subsets": ctx.task.subsets(test_rows),
        **{arm: evals.get(arm) for arm in ARMS},
        **paired_tests(ctx.task, test_rows, evals),
        "training": training,
        "timings_s": ctx.timings,
        "engine_starts": ctx.engines.starts,
        "cache_hits": ctx.store.hits,
        "computed": ctx.store.misses,
        "overrides": command_overrides(),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def command_overrides() -> list[str] | None:
    """The command line's overrides (``task=coin_flip method=rar …``) when Hydra ran the job, so a
    results file says how to reproduce it; None when ``run`` was called from Python."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None


def kept_precision(task: Task, decisions: list[Decision], gold_rows: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Share of kept answers that gold says are right, with a 95% Wilson interval: a report of
    the filter's quality computed after the fact, never an input to training."""
    if gold_rows is None:
        return {}
    pairs = [(d, r) for d, r in zip(decisions, gold_rows) if d.kept]
    k = sum(task.is_correct(d.answer, r) for d, r in pairs)
    lo, hi = wilson_ci(k, len(pairs)) if pairs else (None, None)
    return {"kept_precision": k / len(pairs) if pairs else None, "kept_precision_ci": [lo, hi]}


def paired_tests(task: Task, rows: list[dict[str, Any]], evals: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """Exact McNemar p-values of System 2 and Distilled against System 1 on the same test inputs,
    on all of them and on each of the task's subsets (``Task.subsets``: e.g. biased prompts).
    ``mcnemar_p`` / ``mcnemar_p_<subset>`` are Distilled vs System 1."""
    base = (evals.get("system1") or {}).get("correct")
    if base is None:
        return {}
    groups = {"all": list(range(len(rows))), **task.subsets(rows)}
    paired: dict[str, Any] = {}
    for arm in ("system2", "distilled"):
        other = (evals.get(arm) or {}).get("correct")
        if other is None:
            continue
        paired[f"{arm}_vs_system1"] = {g: compare_paired(other, base, idx) for g, idx in groups.items() if idx}
    out: dict[str, Any] = {"paired": paired}
    for g, res in paired.get("distilled_vs_system1", {}).items():
        out["mcnemar_p" if g == "all" else f"mcnemar_p_{g}"] = res["mcnemar_p"]
    return out
