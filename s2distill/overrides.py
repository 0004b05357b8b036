"""Check config-group choices on the command line before Hydra composes anything.

Hydra reports an unknown group option (``method=foo``) as a multi-line composition error; a user
deserves one line naming the problem and the known choices.
"""

from __future__ import annotations

import re
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"
_GROUP_ARG = re.compile(r"^[+~]?(?P<group>[a-z_]+(?:/[a-z_]+)*)=(?P<value>[^=]+)$")


def group_choices(group: str, conf: Path = CONF) -> list[str]:
    return sorted(p.stem for p in (conf / group).glob("*.yaml"))


def check(args: list[str], conf: Path = CONF) -> str | None:
    """The first unknown group choice in ``args`` as an error line, or ``None``."""
    for arg in args:
        m = _GROUP_ARG.match(arg)
        if not m or not (conf / m["group"]).is_dir():
            continue  # a plain key=value, a flag, or not a group
        value = m["value"]
        sweep = re.fullmatch(r"(?:choice\()?(.*?)\)?", value)[1]
        for choice in (c.strip() for c in sweep.split(",")):
            known = group_choices(m["group"], conf)
            if choice and choice != "null" and choice not in known:
                name = m["group"].split("/")[-1]
                return f"unknown {name} {choice!r} (known: {', '.join(known)})"
    return None
