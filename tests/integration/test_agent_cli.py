"""eport-agent's command line as a user meets it: --check-config accepts a
valid file and rejects bad ones with exit code 2 and a message naming the
file, line and key; docs/config.md lists exactly the keys the agent knows;
`store stats --json` gives the figures of the human table."""
import json
import os
import subprocess

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
          "store stats --json matches the table")


if __name__ == "__main__":
    h.main(check)
