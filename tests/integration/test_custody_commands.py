"""Custody commands end to end (docs/custody-events.md, "Commands"), with
the real broker, eport-cmd and the agent: ReplaceZones puts a zones file
sent whole in force (health reports its version and origin), a broken one
is refused naming the feature and what is wrong with the zones in force
kept, the replaced zones survive a SIGKILL, and `zones --from-config` goes
back to custody.zones_file; PairUnit pairs a unit that names no container
(the subscriber gets PAIRING, then UNPAIRING, each naming the command) and
is refused for a unit whose HELLO names its container; ExpectSeal is
refused for a zone not in force."""
import json
import os
import subprocess

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
ZONES = os.path.join(SOURCE, "docs", "zones", "shanghai-terminals.geojson")
CMD = h.AGENT.replace("app/eport-agent", "tools/eport-cmd")
GW = "gw-cmd"
BOW_TIE = """{"type": "FeatureCollection", "version": "broken-1", "features": [
  {"type": "Feature", "geometry": {"type": "Polygon",
   "coordinates": [[[121.0, 31.0], [121.01, 31.01], [121.01, 31.0], [121.0, 31.01], [121.0, 31.0]]]},
   "properties": {"id": "bow-tie", "name": "Bow tie"}}]}"""


def cmd(broker, *args):
    p = subprocess.run([CMD, "--broker", broker.uri, "--site", "cnsha", "--gateway", GW, "--timeout", "20"] +
                       list(args), capture_output=True, text=True, timeout=40)
    assert p.stdout.strip(), f"eport-cmd {args}: no reply: {p.stderr}"
    return p.returncode, json.loads(p.stdout)


def custody_health(broker):
    """The custody member of the next health message (checked against schema/json/health.schema.json)."""
    topic = f"eport/v1/cnsha/{GW}/health"
    p = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t", topic, "-C", "1",
                        "-W", "15"], capture_output=True, text=True, timeout=20)
    return h.check_json(topic, p.stdout)["custody"]


def test_custody_commands(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)
    agent = h.FleetAgent(work, broker.uri, gateway=GW,
                         extra=f'[custody]\nenabled = true\nzones_file = "{ZONES}"\n[health]\ninterval_s = 1\n')
    agent.start()
    h.wait_until(lambda: "connected to" in agent.read_log(), 20, "agent connected")
    with open(ZONES) as f:
        original = json.load(f)
    first = custody_health(broker)
    assert first["zones_origin"] == "file" and first["zones_version"] == original["version"], first

    # A new version of the zones, sent whole.
    replaced = dict(original, version="shanghai-terminals-by-command")
    path = work.file("zones-new.geojson")
    with open(path, "w") as f:
        json.dump(replaced, f)
    rc, reply = cmd(broker, "--id", "z-1", "zones", path)
    assert rc == 0 and reply["ok"], reply
    assert reply["result"] == {"zones_version": "shanghai-terminals-by-command", "zones": len(original["features"]),
                               "origin": "command", "exits": 0}, reply
    health = custody_health(broker)
    assert (health["zones_version"], health["zones_origin"]) == ("shanghai-terminals-by-command", "command"), health

    # A broken one is refused and changes nothing.
    bad = work.file("zones-bad.geojson")
    with open(bad, "w") as f:
        f.write(BOW_TIE)
    rc, reply = cmd(broker, "--id", "z-2", "zones", bad)
    assert rc == 1 and not reply["ok"], reply
    assert reply["error"].startswith('ReplaceZones: feature 0 (id "bow-tie"): ') and "intersects itself" in \
        reply["error"], reply
    assert custody_health(broker)["zones_version"] == "shanghai-terminals-by-command"

    # The zones in force survive a SIGKILL.
    agent.kill9()
    agent.start()
    h.wait_until(lambda: agent.read_log().count("connected to") >= 2, 20, "agent connected again")
    health = custody_health(broker)
    assert (health["zones_version"], health["zones_origin"]) == ("shanghai-terminals-by-command", "command"), health

    # ExpectSeal naming a zone not in force is refused.
    rc, reply = cmd(broker, "--id", "s-1", "expect-seal", "MSKU1234565", "SL-1", "--allow", "nowhere")
    assert rc == 1 and "allowed zone \"nowhere\" is not in the zones in force" in reply["error"], reply

    # A unit that names its container itself cannot be paired by command.
    p = h.sim(["--units", 2, "--connect", "unix:" + agent.socket, "--count", 5, "--rate", 50, "--quiet"], timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    rc, reply = cmd(broker, "--id", "p-1", "pair", "tcu-0001", "MSKU1234565")
    assert rc == 1 and "reports its container itself" in reply["error"], reply
    # One that names none (not seen yet) is paired, then unpaired: two events naming their commands.
    rc, reply = cmd(broker, "--id", "p-2", "pair", "tcu-7777", "MSKU1234565")
    assert rc == 0 and reply["result"] == {"unit": "tcu-7777", "container": "MSKU1234565", "events": 1}, reply
    rc, reply = cmd(broker, "--id", "p-3", "unpair", "tcu-7777")
    assert rc == 0 and reply["result"]["events"] == 1, reply

    # Back to custody.zones_file.
    rc, reply = cmd(broker, "--id", "z-3", "zones", "--from-config")
    assert rc == 0 and reply["result"]["origin"] == "file", reply
    assert custody_health(broker)["zones_origin"] == "file"

    def pairing_events():
        return [r for r in tail.readings() if r.get("subject") == "tcu-7777"]
    h.wait_until(lambda: len(pairing_events()) == 2, 20, "the PairUnit events at the subscriber")
    events = sorted(pairing_events(), key=lambda r: r["seq"])
    assert [(e["event"], e["command_id"], e["container"]) for e in events] == [
        ("pairing", "p-2", "MSKU1234565"), ("unpairing", "p-3", "MSKU1234565")], events
    assert agent.terminate() == 0
    tail.stop()
    h.log("ReplaceZones, PairUnit and ExpectSeal answered and kept across SIGKILL as documented")


if __name__ == "__main__":
    h.main(test_custody_commands)
