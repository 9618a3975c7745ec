"""The agent's key table as the generator needs it: each key's default and
range, read from the reference table of docs/config.md (the checked copy of
`eport-agent --config-reference`, tests/integration/test_agent_cli.py), or
from `$EPORT_AGENT --config-reference` when EPORT_AGENT names an agent
binary. The generator writes agent.toml files without copying defaults."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from functools import lru_cache
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "config.md"
_ROW = re.compile(r"^\| `([a-z_]+\.[a-z_]+)` \| ([^|]+) \| ([^|]+) \| ([^|]*) \|", re.M)


@lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, str, str]]:
    agent = os.environ.get("EPORT_AGENT")
    if agent:
        text = subprocess.run([agent, "--config-reference"], capture_output=True, text=True, check=True).stdout
    else:
        text = DOC.read_text()
    rows = {m.group(1): (m.group(2).strip(), m.group(3).strip(), m.group(4).strip()) for m in _ROW.finditer(text)}
    if not rows:
        raise RuntimeError(f"no agent key table in {agent or DOC}")
    return rows


def keys() -> list[str]:
    """Every key of the agent, in table order."""
    return list(_table())


def default(key: str):
    """The agent's default of key ("section.key") as a Python value."""
    text = _table()[key][1]
    if text == "required":
        raise KeyError(f"{key} has no default")
    return tomllib.loads(f"v = {text.strip('`')}")["v"]


def int_range(key: str) -> tuple[int, int]:
    """(min, max) of an integer key."""
    lo, hi = _table()[key][2].split(" .. ")
    return int(lo), int(hi)
