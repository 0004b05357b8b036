"""Fingerprint-keyed, atomically written stage artifacts with checksums and resume.

Layout: ``<cache>/<stage>/<fingerprint>/`` holding ``records.jsonl`` (or a model folder) and
``meta.json``. ``meta.json`` is written last and carries the checksum, so a directory without
a valid one is never used: a killed or corrupted stage is recomputed, never silently loaded.
A stage that writes in batches appends them to ``partial.jsonl`` (one line per batch, each with
its own checksum) so a killed run resumes, regenerating at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: bump when an artifact's format or a stage's semantics change, to invalidate old caches
SCHEMA_VERSION = 1


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def strict_json(obj: Any, **kw: Any) -> str:
    """``obj`` as standard JSON: a NaN or infinite float (e.g. a rate over no inputs) becomes
    ``null``, which every JSON reader accepts (Python writes a bare ``NaN`` by default)."""
    def finite(o: Any) -> Any:
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: finite(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [finite(v) for v in o]
        return o

    return json.dumps(finite(obj), allow_nan=False, default=str, **kw)


def fingerprint(stage: str, config: Any, upstream: Sequence[str] = ()) -> str:
    """Key of a stage result: the stage, the config that affects it, and its inputs' keys."""
    payload = canonical({"v": SCHEMA_VERSION, "stage": stage, "config": config, "upstream": list(upstream)})
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(root: Path) -> str:
    """Checksum of every file under ``root`` except ``meta.json`` (names and contents)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "meta.json":
            h.update(str(p.relative_to(root)).encode())
            h.update(sha256_file(p).encode())
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(canonical(r) + "\n" for r in records))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Store:
    """The artifact cache, plus copies of every artifact used into one run directory."""

    def __init__(self, root: str | Path, run_dir: str | Path | None = None) -> None:
        self.root = Path(root).expanduser()
        self.run_dir = Path(run_dir) if run_dir else None
        self.hits: list[str] = []
        self.misses: list[str] = []

    def dir(self, stage: str, fp: str) -> Path:
        return self.root / stage / fp

    # -- record artifacts ----------------------------------------------------------------
    def load_records(self, stage: str, fp: str) -> list[dict[str, Any]] | None:
        """The stage's records if complete and intact; a corrupt artifact is removed."""
        d = self.dir(stage, fp)
        meta = self._meta(d)
        if meta is None:
            return None
        data = d / "records.jsonl"
        try:
            ok = data.is_file() and sha256_file(data) == meta.get("sha256")
            records = read_jsonl(data) if ok else None
        except (OSError, ValueError):
            ok, records = False, None
        if not ok or records is None or len(records) != meta.get("n_records"):
            log.warning("%s artifact %s is corrupt (checksum/schema mismatch): recomputing", stage, fp)
            self._discard(d)
            return None
        self.hits.append(stage)
        self._publish(stage, data)
        return records

    def save_records(self, stage: str, fp: str, records: list[dict[str, Any]], info: dict[str, Any] | None = None) -> None:
        d = self.dir(stage, fp)
        d.mkdir(parents=True, exist_ok=True)
        data = d / "records.jsonl"
        write_jsonl(data, records)
        self._write_meta(d, stage, fp, sha256_file(data), len(records), info)
        (d / "partial.jsonl").unlink(missing_ok=True)
        self.misses.append(stage)
        self._publish(stage, data)

    def info(self, stage: str, fp: str) -> dict[str, Any]:
        """The ``info`` saved with a complete artifact ({} if none)."""
        meta = self._meta(self.dir(stage, fp))
        return dict((meta or {}).get("info") or {})

    # -- resumable batches ---------------------------------------------------------------
    def load_batches(self, stage: str, fp: str) -> dict[int, list[dict[str, Any]]]:
        """Batches finished by an earlier, interrupted run (each verified by its checksum)."""
        path = self.dir(stage, fp) / "partial.jsonl"
        done: dict[int, list[dict[str, Any]]] = {}
        if not path.is_file():
            return done
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                item = json.loads(line)
                if hashlib.sha256(canonical(item["records"]).encode()).hexdigest() == item["sha256"]:
                    done[int(item["batch"])] = item["records"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill: that batch is generated again
        return done

    def append_batch(self, stage: str, fp: str, batch: int, records: list[dict[str, Any]]) -> None:
        d = self.dir(stage, fp)
        d.mkdir(parents=True, exist_ok=True)
        line = canonical({"batch": batch, "sha256": hashlib.sha256(canonical(records).encode()).hexdigest(),
                          "records": records})
        with open(d / "partial.jsonl", "a", encoding="utf-8") as f:
            f.write("\n" + line + "\n")  # leading newline isolates a previous cut line
            f.flush()
            os.fsync(f.fileno())

    # -- directory artifacts (trained models) ----------------------------------------------
    def load_dir(self, stage: str, fp: str) -> Path | None:
        d = self.dir(stage, fp)
        meta = self._meta(d)
        if meta is None:
            return None
        if sha256_tree(d) != meta.get("sha256"):
            log.warning("%s artifact %s is corrupt (checksum mismatch): recomputing", stage, fp)
            self._discard(d)
            return None
        self.hits.append(stage)
        self._publish(stage, d)
        return d

    def staging_dir(self, stage: str, fp: str) -> Path:
        """An empty folder to build a directory artifact in; ``commit_dir`` moves it in place."""
        tmp = self.root / stage / f".{fp}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return tmp

    def commit_dir(self, stage: str, fp: str, tmp: Path, info: dict[str, Any] | None = None) -> Path:
        self._write_meta(tmp, stage, fp, sha256_tree(tmp), None, info)
        d = self.dir(stage, fp)
        self._discard(d)
        os.replace(tmp, d)
        self.misses.append(stage)
        self._publish(stage, d)
        return d

    # -- internals ---------------------------------------------------------------------------
    def _meta(self, d: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None  # damaged into other valid JSON

    def _write_meta(self, d: Path, stage: str, fp: str, sha: str, n: int | None, info: dict[str, Any] | None) -> None:
        meta = {"stage": stage, "fingerprint": fp, "sha256": sha, "n_records": n, "created": time.time(),
                "schema": SCHEMA_VERSION, "info": info or {}}
        atomic_write_text(d / "meta.json", json.dumps(meta, indent=1, default=str))

    def _discard(self, d: Path) -> None:
        if d.exists():
            trash = d.with_name(f".{d.name}.trash-{os.getpid()}")
            os.replace(d, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def _publish(self, stage: str, path: Path) -> None:
        """Make the artifact visible in the run directory (copy for records, link for models)."""
        if self.run_dir is None:
            return
        dest = self.run_dir / "artifacts" / (f"{stage}.jsonl" if path.is_file() else stage)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        if path.is_file():
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        else:
            dest.symlink_to(path.resolve(), target_is_directory=True)
