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
    elif DOC.is_file():
        text = DOC.read_text()
    else:
        raise SystemExit(f"eport-broker: the agent's key table {DOC} is missing: copy docs/ beside broker-config/ "
                         "as in the repository (docs/operators.md section 1), or set EPORT_AGENT to an eport-agent "
                         "binary (its --config-reference is read instead)")
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


def kind(key: str) -> str:
    """The agent's type of key: 'string', 'integer', 'boolean' or 'array of strings'."""
    return _table()[key][0].split(" (")[0]


def problem(key: str, value) -> str:
    """'' when value fits key's type and range (or value list) as the agent's
    table states them, else why not. The agent's --check-config stays the
    judge of everything else (host:port syntax, files, rules over keys)."""
    if key not in _table():
        return "is not a key of eport-agent (docs/config.md)"
    k, rng = kind(key), _table()[key][2]
    if k == "boolean":
        return "" if isinstance(value, bool) else "must be true or false"
    if k == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if " .. " in rng:
            lo, hi = int_range(key)
            if not lo <= value <= hi:
                return f"must be {lo} .. {hi}"
        elif rng.startswith("one of "):
            allowed = [int(v) for v in rng[len("one of "):].split(", ")]
            if value not in allowed:
                return f"must be {rng}"
        return ""
    if k == "array of strings":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "must be an array of strings"
        return ""
    if not isinstance(value, str):
        return "must be a string"
    choices = re.findall(r"`([^`]*)`", rng)
    if choices and value not in choices:
        return f"must be one of {', '.join(choices)}"
    return ""
