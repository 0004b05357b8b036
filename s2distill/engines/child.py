"""An engine that lives in a child process: its GPU memory comes back when the child exits.

Deleting a vLLM ``LLM`` does not reliably free its memory (reference cycles, NCCL groups,
CUDA contexts), and training needs that memory next. With ``isolate`` on (the default on CUDA
machines), ``EnginePool`` starts each engine in a spawned child; the parent sends chats and
receives completions over a pipe, and ``close()`` ends the child, which returns every byte.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import traceback
from typing import Any

from s2distill.engines.base import Chat, Completion, Sampling, TopK
from s2distill.errors import UserError

log = logging.getLogger(__name__)


def _serve(conn: Any, model: str, cfg: dict[str, Any]) -> None:
    """Child process: start the engine, then answer ``generate`` requests until ``close``."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    from s2distill.engines import make_engine

    try:
        engine = make_engine(model, cfg)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", type(e).__name__, str(e), traceback.format_exc()))
        return
    conn.send(("ready",))
    try:
        while True:
            msg = conn.recv()
            if msg[0] == "close":
                break
            method, args, kwargs = msg
            try:
                conn.send(("ok", getattr(engine, method)(*args, **kwargs)))
            except BaseException as e:  # noqa: BLE001
                conn.send(("error", type(e).__name__, str(e), traceback.format_exc()))
    finally:
        engine.close()


class ChildEngine:
    """The ``Engine`` interface, served by ``make_engine(model, cfg)`` in a spawned process."""

    def __init__(self, model: str, cfg: dict[str, Any], start_timeout_s: float = 3600) -> None:
        self.model = model
        ctx = mp.get_context("spawn")  # never fork a process that may hold CUDA or vLLM state
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child_conn, model, cfg), daemon=False,
                                 name=f"s2distill-engine-{cfg.get('name', 'vllm')}")
        self._proc.start()
        child_conn.close()
        if not self._conn.poll(start_timeout_s):
            self.close()
            raise RuntimeError(f"engine process for {model} did not start in {start_timeout_s:.0f} s")
        self._reply()

    def _reply(self) -> Any:
        try:
            msg = self._conn.recv()
        except EOFError:
            code = self._proc.join(5) or self._proc.exitcode
            raise RuntimeError(f"engine process for {self.model} died (exit code {code})") from None
        if msg[0] == "error":
            _, kind, text, tb = msg
            if kind == "UserError":
                raise UserError(text)
            raise RuntimeError(f"engine process: {kind}: {text}\n{tb}")
        return msg[1] if len(msg) > 1 else None

    def generate(self, chats: list[Chat], n: int, sampling: Sampling, desc: str = "",
                 **kw: Any) -> list[list[Completion]]:
        self._conn.send(("generate", (chats, n, sampling, desc), kw))
        return self._reply()

    def score(self, sequences: list[list[int]], starts: list[int], top_k: int, desc: str = "") -> list[TopK]:
        self._conn.send(("score", (sequences, starts, top_k, desc), {}))
        return self._reply()

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            if self._proc.is_alive():
                self._conn.send(("close",))
        except (BrokenPipeError, OSError):
            pass
        self._proc.join(120)
        if self._proc.is_alive():  # pragma: no cover - a wedged engine: its memory must come back
            log.warning("engine process did not exit; killing it")
            self._proc.kill()
            self._proc.join(10)
        self._conn.close()
        self._proc = None
