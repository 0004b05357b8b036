"""Where vLLM's own log lines go: its INFO lines to the run's ``vllm.log``, only its warnings
and errors to the console (a user sees progress bars, warnings and the final table).

vLLM configures its ``vllm`` logger from ``VLLM_LOGGING_CONFIG_PATH`` (a ``logging.dictConfig``
JSON) when it is imported, in this process and in every engine process it spawns (which
inherit the environment). A user's own ``VLLM_LOGGING_CONFIG_PATH`` or
``VLLM_CONFIGURE_LOGGING=0`` is left alone.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from s2distill.artifacts import atomic_write_text

LOG_FILE = "vllm.log"
CONFIG_FILE = ".vllm_logging.json"
_FORMAT = "%(levelname)s %(asctime)s %(process)d %(name)s: %(message)s"
_OURS = "S2DISTILL_VLLM_LOGGING"  # marks a config path this module set (replaced per run)


def route_vllm_logs(run_dir: Path) -> Path | None:
    """Send vLLM's INFO lines to ``run_dir/vllm.log`` and its warnings to stderr; returns the log
    path, or ``None`` when the user configured vLLM's logging themselves."""
    env = os.environ
    user_path = env.get("VLLM_LOGGING_CONFIG_PATH")
    if env.get("VLLM_CONFIGURE_LOGGING") == "0" or (user_path and user_path != env.get(_OURS)):
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = run_dir / LOG_FILE
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": _FORMAT}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(log_file), "formatter": "plain",
                     "level": "INFO", "mode": "a", "encoding": "utf-8"},
            "console": {"class": "logging.StreamHandler", "formatter": "plain", "level": "WARNING",
                        "stream": "ext://sys.stderr"},
        },
        "loggers": {"vllm": {"handlers": ["file", "console"], "level": "INFO", "propagate": False}},
    }
    path = run_dir / CONFIG_FILE
    atomic_write_text(path, json.dumps(config, indent=1))
    env["VLLM_LOGGING_CONFIG_PATH"] = env[_OURS] = str(path)
    if "vllm.logger" in sys.modules:  # imported already (a sweep's next job, a test): apply now
        sys.modules["vllm.logger"]._configure_vllm_root_logger()
    return log_file
