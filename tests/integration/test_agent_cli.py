"""eport-agent's command line as a user meets it: --check-config accepts a
valid file and rejects bad ones with exit code 2 and a message naming the
file, line and key; docs/config.md lists exactly the keys the agent knows;
packaging/agent.toml, docs/config.md and --config-template agree on every
key and default; `store stats --json` gives the figures of the human table."""
import json
import os
import re
import subprocess
import tomllib

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))

VALID = """[gateway]
id = "gw-yangshan-01"
site = "cnsha"
[bridge]
unix_socket = "/tmp/x.sock"
"""

BAD = [
    # (config text, text the error must contain)
    (VALID + "[mqtt]\nkeepalive_s = 0\n", ":7: mqtt.keepalive_s: 0 is out of range 5..3600"),
    (VALID + "[mqtt]\nkeep_alive = 30\n", ":7: mqtt.keep_alive: unknown key"),
    (VALID + "[store]\ndurability = \"sometimes\"\n", "store.durability: \"sometimes\" is not one of: full, normal"),
    (VALID.replace('id = "gw-yangshan-01"', 'id = "GW 01"'),
     ":2: gateway.id: \"GW 01\" is not topic-safe: contains ' ' at byte 3 (not allowed: + # / . * >"),
    (VALID.replace('id = "gw-yangshan-01"', 'id = "gw.01"'),
     ":2: gateway.id: \"gw.01\" is not topic-safe: contains '.' at byte 3 (not allowed: + # / . * >"),
    (VALID.replace('id = "gw-yangshan-01"', 'id = "gw/01"'), ":2: gateway.id: \"gw/01\" is not topic-safe: contains '/'"),
    (VALID.replace('id = "gw-yangshan-01"', 'id = "a+b"'), ":2: gateway.id: \"a+b\" is not topic-safe: contains '+'"),
    (VALID.replace('id = "gw-yangshan-01"', 'id = ""'), ":2: gateway.id: \"\" is not topic-safe: is empty"),
    (VALID.replace('id = "gw-yangshan-01"', 'id = "%s"' % ("g" * 65)), "is not topic-safe: is 65 bytes long (at most 64)"),
    (VALID.replace('site = "cnsha"', 'site = "cn sha"'), ":3: gateway.site: \"cn sha\" is not topic-safe"),
    (VALID.replace('id = "gw-yangshan-01"', 'id = "GW_01"'), ":2: gateway.id: \"GW_01\" must be 1-32"),
    (VALID + "[mqtt]\nuri = 1883\n", ":7: mqtt.uri: expected a string, got an integer"),
    ("[gateway\nid=1", "TOML syntax error"),
    ('[gateway]\nsite = "cnsha"\n', "gateway.id: required key is missing"),
    (VALID + 'tcp_listen = "127.0.0.1:7000"\n',
     "bridge.tcp_listen: units on TCP must authenticate: set bridge.unit_keys"),
    (VALID + 'unit_keys = "/nonexistent/unit-keys"\n', "bridge.unit_keys: cannot read /nonexistent/unit-keys"),
    (VALID + 'tcp_listen = "127.0.0.1:7000"\ninsecure_tcp_without_auth = true\nmax_units = 10\n',
     "bridge.unix_reserve: must be below bridge.max_units (10) when TCP is served too"),
]


def check(work):
    path = work.file("agent.toml")
    with open(path, "w") as f:
        f.write(VALID)
    p = subprocess.run([h.AGENT, "--check-config", path], capture_output=True, text=True)
    assert p.returncode == 0 and "valid" in p.stdout, (p.returncode, p.stdout, p.stderr)
    for text, expected in BAD:
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([h.AGENT, "--check-config", path], capture_output=True, text=True)
        assert p.returncode == 2, f"exit {p.returncode} for {text!r}"
        assert expected in p.stderr and path in p.stderr, f"expected {expected!r} in {p.stderr!r}"
        # --config refuses to start on the same file, before touching anything.
        p = subprocess.run([h.AGENT, "--config", path], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, p.stderr
    ref = subprocess.run([h.AGENT, "--config-reference"], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(SOURCE, "docs", "config.md")) as f:
        doc = f.read()
    assert ref in doc, "docs/config.md is out of date: paste the output of `eport-agent --config-reference`"
    keys = check_template_agreement(work, doc)
    # store stats: the table and --json agree on a fresh store; --json is for stats alone.
    with open(path, "w") as f:
        f.write(VALID + f'[store]\npath = "{work.file("outbox.db")}"\n')
    table = subprocess.run([h.AGENT, "store", "stats", "--config", path], capture_output=True, text=True,
                           check=True).stdout
    stats = json.loads(subprocess.run([h.AGENT, "store", "stats", "--json", "--config", path], capture_output=True,
                                      text=True, check=True).stdout)
    assert stats["path"] == work.file("outbox.db"), stats
    assert list(stats["classes"]) == ["alarm", "event", "telemetry", "bulk"], stats
    total = next(line.split() for line in table.splitlines() if line.startswith("total"))
    assert [int(total[1]), int(total[2])] == [stats["total"]["rows"], stats["total"]["bytes"]] == [0, 0], (table, stats)
    assert f"limit {stats['max_bytes']} bytes" in table, (table, stats)
    assert stats["sources"] == {"rows": 0, "bytes": 0} and stats["commands"] == {"rows": 0, "bytes": 0}, stats
    p = subprocess.run([h.AGENT, "store", "verify", "--json", "--config", path], capture_output=True, text=True)
    assert p.returncode == 64 and "--json" in p.stderr, (p.returncode, p.stderr)
    h.log(f"{len(BAD)} bad configs rejected with key and line; docs/config.md matches the key table; "
          f"packaging/agent.toml names {keys} keys, each known, commented-out ones at their default; "
          "store stats --json matches the table")


def check_template_agreement(work, doc):
    """--config-template, the reference table of docs/config.md and the
    shipped packaging/agent.toml agree: the same keys, the same defaults."""
    defaults, keys = h.agent_template()
    # The template with its defaults uncommented and the ids filled in is valid.
    text = subprocess.run([h.AGENT, "--config-template"], capture_output=True, text=True, check=True).stdout
    filled = re.sub(r"^#(?=[a-z_]+ = )", "", text, flags=re.M)
    filled = filled.replace('id = ""', 'id = "gw-template"').replace('site = ""', 'site = "template"')
    path = work.file("template.toml")
    with open(path, "w") as f:
        f.write(filled)
    p = subprocess.run([h.AGENT, "--check-config", path], capture_output=True, text=True)
    assert p.returncode == 0, f"the filled-in template is refused: {p.stderr}"
    # docs/config.md: every row's default is the template's.
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| [^|]+ \| ([^|]+) \|", doc, flags=re.M)
    assert {k for k, _ in rows} == keys, "docs/config.md and --config-template list different keys"
    for key, default in rows:
        default = default.strip()
        if default == "required":
            assert key not in defaults, key
        else:
            assert tomllib.loads(f"v = {default.strip('`')}")["v"] == defaults[key], (key, default, defaults[key])
    # packaging/agent.toml: every key it names (set or shown commented out)
    # exists; every one shown commented out shows the default.
    with open(os.path.join(SOURCE, "packaging", "agent.toml")) as f:
        shipped = f.read()
    tomllib.loads(shipped)  # valid TOML (its values are checked by tests/packaging)
    section, named = None, 0
    for n, line in enumerate(shipped.splitlines(), 1):
        if m := re.match(r"^\[([a-z]+)\]$", line):
            section = m.group(1)
        elif m := re.match(r"^(#?)([a-z_]+) = (.*)$", line):
            key = f"{section}.{m.group(2)}"
            assert key in keys, f"packaging/agent.toml:{n}: {key} is not a key of --config-template"
            if m.group(1):
                value = tomllib.loads(f"v = {m.group(3)}")["v"]
                assert value == defaults[key], \
                    f"packaging/agent.toml:{n}: shows {key} = {m.group(3)}, the default is {defaults[key]!r}"
            named += 1
    return named


if __name__ == "__main__":
    h.main(check)
