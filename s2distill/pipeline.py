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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from s2distill.artifacts import Store, atomic_write_text, fingerprint
from s2distill.engines import EnginePool, Sampling, derive_seed
from s2distill.errors import UserError
from s2distill.evaluate import score_arm
from s2distill.filters import FILTERS, Decision, Filter, FilterTools
from s2distill.methods import METHODS, Method, Trace
from s2distill.metrics import distribution, majority_baseline
from s2distill.models import ResolvedModel, resolve
from s2distill.tasks import TASKS, Task
from s2distill.tasks.base import GOLD_COLUMNS

log = logging.getLogger(__name__)

ARMS = ("system1", "system2", "distilled")


@dataclass
class Context:
    """What every stage shares; built and validated before any work starts."""

    cfg: DictConfig
    task: Task
    method: Method
    filter: Filter
    model: ResolvedModel
    store: Store
    engines: EnginePool
    timings: dict[str, float] = field(default_factory=dict)
    #: generated tokens per sampled stage (``sample_traces``), cached stages included
    tokens: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str):
        t0 = time.perf_counter()
        yield
        self.timings[stage] = round(time.perf_counter() - t0, 2)


def build(cfg: DictConfig, run_dir: Path | None) -> Context:
    """Instantiate and validate task, method, filter and model (user errors surface here)."""
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
    if int(cfg.eval.k) > 1 and float(cfg.eval.temperature) == 0:
        raise UserError(f"eval.k={cfg.eval.k} with eval.temperature=0 votes over {cfg.eval.k} identical greedy "
                        "copies: set eval.temperature > 0 or eval.k=1")
    if cfg.engine.name not in ("vllm", "hf"):
        raise UserError(f"unknown engine {cfg.engine.name!r} (known: hf, vllm)")
    model = resolve(cfg.model.name_or_path, cfg.paths.models_dir)
    store = Store(cfg.paths.cache_dir, run_dir)
    engine_cfg = OmegaConf.to_container(cfg.engine, resolve=True)
    engine_cfg["expected_tokens"] = expected_tokens(cfg, task, method, ("generate", "system1", "system2"))
    engines = EnginePool(engine_cfg)
    return Context(cfg, task, method, filt, model, store, engines)


def expected_tokens(cfg: DictConfig, task: Task, method: Method, jobs: tuple[str, ...]) -> int:
    """Upper bound (from max_tokens) of what one engine generates for ``jobs``: what
    ``engine.compile: auto`` weighs against the compile warm-up."""
    s1, s2 = sum(METHODS.get("system1")().max_tokens.values()), sum(method.max_tokens.values())
    k = int(cfg.eval.k)
    per_job = {"generate": task.n_train * int(cfg.generate.n) * s2, "system1": task.n_test * k * s1,
               "system2": task.n_test * k * s2, "distilled": task.n_test * k * s1}
    return sum(per_job[j] for j in jobs)


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    ctx = build(cfg, run_dir)
    data = ctx.task.load()
    train_rows = ctx.task.unlabeled(data["train"]).to_list()
    test_rows = data["test"].to_list()
    with ctx.engines:
        samples, gen_fp = generate(ctx, train_rows)
        decisions, filt_fp = filter_samples(ctx, train_rows, samples, gen_fp)
        evals = {arm: evaluate(ctx, arm, test_rows) for arm in ("system1", "system2")}
        ctx.engines.close()  # free the base model's engine before training needs the memory
        ctx.engines.cfg["expected_tokens"] = expected_tokens(cfg, ctx.task, ctx.method, ("distilled",))
        model_dir, train_fp = train(ctx, train_rows, decisions, filt_fp)
        evals["distilled"] = evaluate(ctx, "distilled", test_rows, model_dir, train_fp) if model_dir else None
    results = summarize(ctx, train_rows, test_rows, decisions, evals)
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2, default=str))
    log.info("results written to %s", run_dir / "results.json")
    return results


# -- stages ---------------------------------------------------------------------------------------
def sampling(cfg: DictConfig, node: str) -> Sampling:
    c = cfg[node]
    return Sampling(temperature=float(c.temperature), top_p=float(c.top_p), extra=dict(c.get("extra") or {}))


def sample_traces(
    ctx: Context, stage: str, fp: str, rows: list[dict[str, Any]], method: Method, model: str, n: int, samp: Sampling
) -> list[list[Trace]]:
    """Run ``method`` on ``rows`` in resumable batches; one engine call per step per batch.

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
            traces = method.run(batch, ctx.task, ctx.engines.get(model), n, samp.replace(seed=derive_seed(seed, stage, b)))
            done[b] = [{"id": r["id"], "traces": [t.to_dict() for t in ts]} for r, ts in zip(batch, traces)]
            ctx.store.append_batch(stage, fp, b, done[b])
        cached = [rec for b in range(len(starts)) for rec in done[b]]
        ctx.store.save_records(stage, fp, cached, {"n_rows": len(rows), "model": model})
    by_id = {rec["id"]: rec["traces"] for rec in cached}
    out = [[Trace(**t) for t in by_id[r["id"]]] for r in rows]
    ctx.tokens[stage] = sum(t.tokens for ts in out for t in ts)
    return out


def generate(ctx: Context, rows: list[dict[str, Any]]) -> tuple[list[list[Trace]], str]:
    """System-2 samples on the unlabeled training inputs."""
    cfg = ctx.cfg
    samp = sampling(cfg, "generate")
    fp = fingerprint("generate", {
        "task": ctx.task.fingerprint_config(), "method": ctx.method.fingerprint_config(),
        "model": ctx.model.key, "n": int(cfg.generate.n), "sampling": samp.__dict__,
        "engine": {"dtype": cfg.engine.get("dtype"), "seed": cfg.engine.get("seed")},
    })
    with ctx.timed("generate"):
        traces = sample_traces(ctx, "generate", fp, rows, ctx.method, ctx.model.path, int(cfg.generate.n), samp)
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
        return sample_traces(ctx, f"generate_{tag}", vfp, variant_rows, ctx.method, ctx.model.path, n, samp)

    tools = FilterTools(engine=lambda: ctx.engines.get(ctx.model.path), resample=resample)
    with ctx.timed("filter"):
        recs = ctx.store.load_records("filter", fp)
        if recs is None:
            decisions = ctx.filter.decide(rows, traces, ctx.task, tools)
            recs = [{"id": r["id"], **d.to_dict()} for r, d in zip(rows, decisions)]
            ctx.store.save_records("filter", fp, recs)
    return [Decision(**{k: v for k, v in r.items() if k != "id"}) for r in recs], fp


def sft_examples(task: Task, rows: list[dict[str, Any]], decisions: list[Decision]) -> list[dict[str, Any]]:
    """Prompt → completion pairs: the System-1 prompt and the kept System-2 final answer."""
    return [
        {"prompt": [{"role": "user", "content": task.direct_prompt(r)}],
         "completion": [{"role": "assistant", "content": task.target(d.answer)}]}
        for r, d in zip(rows, decisions) if d.kept and d.answer is not None
    ]


def train(
    ctx: Context, rows: list[dict[str, Any]], decisions: list[Decision], filt_fp: str
) -> tuple[Path | None, str]:
    """SFT of the base model on the kept answers (see ``train.py``)."""
    from s2distill import train as sft

    examples = sft_examples(ctx.task, rows, decisions)
    train_cfg = OmegaConf.to_container(ctx.cfg.train, resolve=True)
    fp = fingerprint("train", {"train": train_cfg, "model": ctx.model.key,
                               "prompt": ctx.task.direct_instruction}, [filt_fp])
    if not examples:
        log.warning("the filter kept no inputs: nothing to train on, no distilled model")
        return None, fp
    with ctx.timed("train"):
        out = ctx.store.load_dir("train", fp)
        if out is None:
            tmp = ctx.store.staging_dir("train", fp)
            work = ctx.store.dir("train", fp).with_name(f".{fp}.checkpoints")
            info = sft.train(examples, ctx.model.path, train_cfg, tmp, work)
            out = ctx.store.commit_dir("train", fp, tmp, info)
    return out, fp


def evaluate(
    ctx: Context, arm: str, rows: list[dict[str, Any]], model_dir: Path | None = None, upstream: str | None = None
) -> dict[str, Any]:
    """Run one arm on the test split (greedy by default, majority@k with ``eval.k``) and score it."""
    cfg = ctx.cfg
    method = ctx.method if arm == "system2" else METHODS.get("system1")()
    model_key = upstream or ctx.model.key
    model_path = str(model_dir) if model_dir else ctx.model.path
    samp = sampling(cfg, "eval")
    inputs = [{k: v for k, v in r.items() if k not in GOLD_COLUMNS} for r in rows]  # prompts never see gold
    fp = fingerprint("eval", {
        "task": ctx.task.fingerprint_config(), "method": method.fingerprint_config(), "model": model_key,
        "k": int(cfg.eval.k), "sampling": samp.__dict__,
        "engine": {"dtype": cfg.engine.get("dtype"), "seed": cfg.engine.get("seed")},
    })
    # with method=system1 the System-2 arm IS System 1 on the base model: same fingerprint, so it
    # shares the System-1 arm's artifact instead of generating it a second time
    name = "system1" if arm == "system2" and method.name == "system1" and model_dir is None else arm
    with ctx.timed(f"eval_{arm}"):
        traces = sample_traces(ctx, f"eval_{name}", fp, inputs, method, model_path, int(cfg.eval.k), samp)
    perturbed = None
    pert = ctx.task.perturbation()
    if pert is not None:
        # the same arm on the perturbed inputs (e.g. A/B swapped), for score_arm's inconsistent_rate
        stage, pfp = f"eval_{name}_{pert.name}", fingerprint("eval", {"variant": pert.name}, [fp])
        with ctx.timed(f"eval_{arm}_{pert.name}"):
            perturbed = sample_traces(ctx, stage, pfp, [pert.row(r) for r in inputs], method, model_path,
                                      int(cfg.eval.k), samp)
    return score_arm(ctx.task, rows, traces, perturbed)


# -- results ----------------------------------------------------------------------------------------
def summarize(
    ctx: Context, train_rows: list[dict[str, Any]], test_rows: list[dict[str, Any]],
    decisions: list[Decision], evals: dict[str, dict[str, Any] | None],
) -> dict[str, Any]:
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
        "engine": cfg.engine.name,
        "seed": int(cfg.seed),
        "n_train": len(train_rows),
        "n_test": len(test_rows),
        "n_samples": int(cfg.generate.n),
        "eval_k": int(cfg.eval.k),
        "n_kept": len(kept),
        "generate_tokens": sum(gen_tokens.values()),
        "generate_tokens_by_stage": gen_tokens,
        "kept_label_distribution": distribution([d.answer for d in kept], top=None if ctx.task.labels else 10),
        "filter_reasons": distribution([d.reason for d in decisions]),
        "test_label_distribution": distribution(golds, top=None if ctx.task.labels else 10),
        "majority_baseline": majority_baseline(golds),
        **{arm: evals.get(arm) for arm in ARMS},
        "timings_s": ctx.timings,
        "engine_starts": ctx.engines.starts,
        "cache_hits": ctx.store.hits,
        "computed": ctx.store.misses,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
