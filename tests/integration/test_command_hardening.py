"""Hostile and retained commands, end to end with the real agent and broker (issue 11):
a Command whose action_type names SetIntervals or RequestPosition (or Flush, GetConfig) but
carries no action table passes the FlatBuffers Verifier; published plain or retained, the agent
answers it with an error and stays alive (before the fix it died with SIGSEGV, on every restart
while the command stayed retained). A retained command, valid or not, is never executed: the
agent answers "retained command refused" and counts it as rejected. Commands are built here by
hand (standard library only), exactly as a hostile cloud client could."""
import json
import os
import struct
import subprocess
import time

import harness as h

GW, SITE = "gw-test-01", "cnsha"
CMD_TOPIC = f"eport/v1/{SITE}/{GW}/cmd"
REPLY_TOPIC = f"eport/v1/{SITE}/{GW}/reply"
ACTION = {"SetIntervals": 1, "RequestPosition": 2, "Flush": 3, "GetConfig": 4}


# -- a minimal FlatBuffers writer for schema/command.fbs ----------------------------------------
# A table is a list of fields by slot: None (absent), ("str", s), ("u8"|"u32"|"u64", v) or
# ("table", fields). The buffer is laid out front to back: every uoffset points forward.

def _align(buf, n):
    buf.extend(b"\0" * (-len(buf) % n))


def _table(buf, fields):
    _align(buf, 2)
    vt = len(buf)
    buf.extend(b"\0" * (4 + 2 * len(fields)))
    _align(buf, 8)
    pos = len(buf)
    layout, at = [], 4  # the soffset to the vtable comes first
    for size in (4, 8, 1):  # offsets and u32, then u64 (8-aligned), then u8
        for slot, f in enumerate(fields):
            if f is None:
                continue
            fsize = {"str": 4, "table": 4, "u32": 4, "u64": 8, "u8": 1}[f[0]]
            if fsize == size:
                at += -at % size
                layout.append((slot, at, f))
                at += size
    at += -at % 4
    buf.extend(b"\0" * at)
    struct.pack_into("<HH", buf, vt, 4 + 2 * len(fields), at)
    struct.pack_into("<i", buf, pos, pos - vt)
    for slot, off, f in layout:
        struct.pack_into("<H", buf, vt + 4 + 2 * slot, off)
        fmt = {"u8": "<B", "u32": "<I", "u64": "<Q"}.get(f[0])
        if fmt:
            struct.pack_into(fmt, buf, pos + off, f[1])
    for slot, off, f in layout:  # children after the table
        if f[0] == "str":
            _align(buf, 4)
            child = len(buf)
            data = f[1].encode()
            buf.extend(struct.pack("<I", len(data)) + data + b"\0")
        elif f[0] == "table":
            child = _table(buf, f[1])
        else:
            continue
        struct.pack_into("<I", buf, pos + off, child - (pos + off))
    return pos


def command(cid, action, table=True, gateway=GW, issued_ms=None):
    """An EPC1 Command; table=False writes action_type but no action table (the hostile case)."""
    inner = {"SetIntervals": [None, ("u32", 30), None], "RequestPosition": [None], "Flush": [], "GetConfig": []}
    issued = int(time.time() * 1000) if issued_ms is None else issued_ms
    fields = [("str", cid), ("str", gateway), ("u64", issued), ("u8", ACTION[action]),
              ("table", inner[action]) if table else None]
    buf = bytearray(8)
    buf[4:8] = b"EPC1"
    struct.pack_into("<I", buf, 0, _table(buf, fields))
    return bytes(buf)


# -- broker side ---------------------------------------------------------------------------------

def publish(work, broker, payload, retain=False, name="cmd.bin"):
    path = work.file(name)
    with open(path, "wb") as f:
        f.write(payload)
    args = ["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", CMD_TOPIC]
    args += ["-r"] if retain else []
    args += ["-n"] if payload == b"" else ["-f", path]
    subprocess.run(args, check=True, timeout=10)


class Replies:
    """Every reply the agent publishes, in order, from a background mosquitto_sub."""

    def __init__(self, work, broker):
        self.path = work.file("replies.jsonl")
        self.proc = h.spawn(["mosquitto_sub", "-p", str(broker.port), "-q", "1", "-t", REPLY_TOPIC],
                            stdout=open(self.path, "w"))
        time.sleep(0.5)

    def all(self):
        """Every reply so far, each checked against schema/json/reply.schema.json."""
        with open(self.path) as f:
            return [h.check_json(REPLY_TOPIC, line) for line in f if line.endswith("\n") and line.strip()]

    def wait_for(self, cid, timeout=10):
        found = []
        h.wait_until(lambda: found.extend(r for r in self.all() if r.get("command_id") == cid) or found, timeout,
                     f"reply to {cid}")
        return found[0]


def health(broker):
    """The next health message, checked against schema/json/health.schema.json."""
    topic = f"eport/v1/{SITE}/{GW}/health"
    p = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t", topic, "-C", "1",
                        "-W", "10"], capture_output=True, text=True, timeout=15)
    return h.check_json(topic, p.stdout)


def test_command_hardening(work):
    broker = h.Broker(work)
    broker.start()
    agent = h.Agent(work, broker.uri, extra="[health]\ninterval_s = 1\n")
    agent.start()
    replies = Replies(work, broker)
    time.sleep(1.0)  # the agent's subscription to cmd

    # 1. No action table, every action type, published plain: an error reply, the agent alive.
    for n, action in enumerate(ACTION):
        cid = f"h-{n}"
        publish(work, broker, command(cid, action, table=False))
        r = replies.wait_for(cid)
        assert r["ok"] is False and r["error"] == f"{action} command without its {action} table", r
        assert agent.proc.poll() is None, f"agent died on a {action} command without its table"
    # A well-formed one still works.
    publish(work, broker, command("ok-1", "GetConfig"))
    r = replies.wait_for("ok-1")
    assert r["ok"] is True and r["result"]["config"]["gateway.id"] == GW, r

    # 2. The hostile command published retained while the agent is connected: the broker
    # forwards it to the live subscription without the retain flag (MQTT 3.1.1 3.3.1.3), so it
    # is parsed, refused for the missing table, and the agent lives.
    publish(work, broker, command("h-ret", "SetIntervals", table=False), retain=True)
    r = replies.wait_for("h-ret")
    assert r["ok"] is False and "without its SetIntervals table" in r["error"], r
    assert agent.proc.poll() is None
    # Restarts: now it comes from the broker's retained store, flagged retained, at every
    # subscription. Refused unparsed-for-execution, never a crash loop.
    for start in range(2):
        assert agent.terminate() == 0
        before = len([x for x in replies.all() if x.get("command_id") == "h-ret"])
        agent.start()
        h.wait_until(lambda: len([x for x in replies.all() if x.get("command_id") == "h-ret"]) > before, 15,
                     "the retained command's reply after a restart")
        r = [x for x in replies.all() if x.get("command_id") == "h-ret"][-1]
        assert r["ok"] is False and r["error"].startswith("retained command refused: "), r
        time.sleep(1.0)
        assert agent.proc.poll() is None, f"agent died after restart {start + 1}: {agent.read_log()[-2000:]}"
    publish(work, broker, b"", retain=True)  # clear it (the agent answers the empty message as "not EPC1")

    # 3. A valid command published retained while the agent is down: refused, not executed.
    assert agent.terminate() == 0
    publish(work, broker, command("r-valid", "GetConfig"), retain=True)
    publish(work, broker, command("r-flush", "Flush"), retain=True, name="cmd2.bin")  # replaces it (one per topic)
    agent.start()
    r = replies.wait_for("r-flush", timeout=15)
    assert r["ok"] is False and r["error"].startswith("retained command refused: "), r
    assert "result" not in r
    time.sleep(1.5)
    hl = health(broker)
    assert hl["uplink"]["commands_rejected"] >= 1, hl["uplink"]
    publish(work, broker, b"", retain=True)
    # The same id sent properly afterwards is executed: the refusal recorded nothing as done.
    publish(work, broker, command("r-flush", "Flush"))
    h.wait_until(lambda: any(x.get("command_id") == "r-flush" and x["ok"] for x in replies.all()), 10,
                 "the plain r-flush executed")
    assert agent.proc.poll() is None
    assert agent.terminate() == 0
    log = agent.read_log()
    assert log.count("command r-flush done") == 1, "a retained command must never be executed"
    assert "retained command refused" in log and "without its SetIntervals table" in log
    assert "command r-valid done" not in log

    # 4. Freshness (commands.max_age_s, default 300 s): an hour old, no issued time, or ten
    # minutes ahead of the gateway's clock: refused, not executed; a fresh one runs.
    agent.start()
    time.sleep(1.0)
    now = int(time.time() * 1000)
    for cid, issued, why in (("old", now - 3600_000, "stale command refused: issued 3600 s ago"),
                             ("no-time", 0, "stale command refused: it has no issued_utc_ms"),
                             ("future", now + 600_000, "s in the future")):
        publish(work, broker, command(cid, "Flush", issued_ms=issued))
        r = replies.wait_for(cid)
        assert r["ok"] is False and why in r["error"], r
    publish(work, broker, command("fresh", "Flush"))
    assert replies.wait_for("fresh")["ok"] is True
    assert agent.terminate() == 0
    log = agent.read_log()
    assert "command old done" not in log and "command future done" not in log and "command no-time done" not in log
    h.log("commands without their action table refused; retained and stale commands refused, never executed; "
          "agent alive")


if __name__ == "__main__":
    h.main(test_command_hardening)
