"""Custody events end to end (docs/custody-events.md): simulated units on
journeys around Yangshan (a simulated clock: 30 s between readings) are
replayed into two agents with custody on and the sample zones file: one
runs undisturbed, the other is killed with SIGKILL three times mid-run.
The subscriber sees every event of both exactly once per (source, seq),
the custody source's seqs have no hole, the killed agent's events are
exactly the undisturbed one's, unit by unit (no event repeated or lost,
byte for byte apart from the gateway's id and the seq in its custody
source, which follows how units interleaved), and they include
pairings, geofence entries into Yangshan zones and exits, and motion.
Before the replay the cloud tells each agent the seal expected on every
container (eport-cmd expect-seal, from eport-sim --list-units): the seal
alarms (a customs seal read instead, an opening outside the allowed zones,
the fleet's one tamper) are among those events, also exactly once."""
import collections
import json
import subprocess
import time

import harness as h

UNITS, COUNT = 8, 240
ZONES = h.SAMPLE_ZONES
CUSTODY = f"""[custody]
enabled = true
zones_file = "{ZONES}"
"""


def events_of(readings, source):
    """(seq, reading) of the custody source, one per seq (duplicates must be identical)."""
    by_seq = {}
    for r in readings:
        if r["source"] != source:
            continue
        if r["seq"] in by_seq:
            assert by_seq[r["seq"]] == r, f"{source} seq {r['seq']} arrived twice with different content"
        by_seq[r["seq"]] = r
    return by_seq


def content(r):
    """An event without its place in the custody source (the gateway's id, its seq and class count there)."""
    return json.dumps({k: v for k, v in r.items() if k not in ("source", "seq", *h.GATEWAY_KEYS)}, sort_keys=True)


CMD = h.AGENT.replace("app/eport-agent", "tools/eport-cmd")
SEED = 11


def fleet():
    """The units of the session as the cloud knows them: unit, container, origin seal."""
    p = subprocess.run([h.SIM, "--units", str(UNITS), "--seed", str(SEED), "--list-units"], capture_output=True,
                       text=True, timeout=30, check=True)
    return [json.loads(line) for line in p.stdout.splitlines()]


def expect_seals(broker_uri, gateway):
    for u in fleet():
        p = subprocess.run([CMD, "--broker", broker_uri, "--site", "cnsha", "--gateway", gateway, "--timeout", "20",
                            "expect-seal", u["container"], u["seal"], "--class", "security"],
                           capture_output=True, text=True, timeout=40)
        assert p.returncode == 0, f"expect-seal {u}: {p.stdout} {p.stderr}"
        reply = json.loads(p.stdout)
        assert reply["result"] == {"container": u["container"], "expected_seal_id": u["seal"],
                                   "seal_class": "security", "allowed_zones": []}, reply


def replay(work, broker_uri, session, name, kills):
    acked = work.file(f"acked-{name}.jsonl")
    agent = h.FleetAgent(work, broker_uri, name=name, gateway=f"gw-{name}", extra=CUSTODY)
    agent.start()
    # Commands reach an agent once it is subscribed (it logs "connected" after its SUBACK).
    h.wait_until(lambda: "connected to" in agent.read_log(), 20, f"{name} connected to the broker")
    expect_seals(broker_uri, f"gw-{name}")
    p = h.sim(["--replay", session, "--connect", "unix:" + agent.socket, "--acked-log", acked,
               "--drain-timeout", 90, "--quiet"], background=True)
    for k in range(kills):
        time.sleep(1.0)
        agent.kill9()
        time.sleep(0.3)
        agent.start()
        h.log(f"{name}: agent restarted after SIGKILL {k + 1}")
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, f"eport-sim --replay ({name}): {out} {err}"
    return agent, h.read_jsonl(acked)


def test_custody_events(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)

    # A session of journeys on a simulated clock, generated without an agent.
    session = work.file("session.jsonl")
    gen = h.sim(["--units", UNITS, "--connect", "unix:" + work.file("nobody.sock"), "--rate", 100000,
                 "--count", COUNT, "--seed", SEED, "--time-step", 30000, "--record", session,
                 "--drain-timeout", 0, "--quiet"], timeout=60)
    assert gen.returncode == 3, f"expected the 'unacknowledged' exit: {gen.stdout} {gen.stderr}"

    calm, calm_acked = replay(work, broker.uri, session, "calm", kills=0)
    killed, killed_acked = replay(work, broker.uri, session, "killed", kills=3)
    assert len(calm_acked) == len(killed_acked) == UNITS * COUNT

    h.wait_until(lambda: len({h.key(r) for r in tail.readings() if r["source"].startswith("tcu")}) >= UNITS * COUNT,
                 60, "every unit reading at the subscriber")
    # Both agents' events: the same count, and no more arriving.
    last = []

    def settled():
        got = tail.readings()
        counts = (len(events_of(got, "gw-calm:custody")), len(events_of(got, "gw-killed:custody")))
        last.append(counts)
        return counts[0] > 0 and len(last) >= 3 and last[-1] == last[-2] == last[-3]
    h.wait_until(lambda: settled() or time.sleep(1), 90, "both agents' custody events")
    assert calm.terminate() == 0
    assert killed.terminate() == 0
    tail.stop()
    got = tail.readings()
    a = events_of(got, "gw-calm:custody")
    b = events_of(got, "gw-killed:custody")
    assert sorted(a) == list(range(1, len(a) + 1)), "the calm agent's custody seqs have a hole"
    assert sorted(b) == list(range(1, len(b) + 1)), "the killed agent's custody seqs have a hole"
    # The custody source's seqs follow the order in which units' readings
    # happened to be committed (units interleave differently in each run);
    # per unit, the events are the same, in the same order, byte for byte.
    def per_unit(events):
        out = collections.defaultdict(list)
        for seq in sorted(events):
            out[events[seq]["subject"]].append(content(events[seq]))
        return out
    ca, cb = per_unit(a), per_unit(b)
    assert sorted(ca) == sorted(cb), f"units with events: calm {sorted(ca)}, killed {sorted(cb)}"
    for unit in ca:
        if ca[unit] != cb[unit]:
            n = min(len(ca[unit]), len(cb[unit]))
            first = next((i for i in range(n) if ca[unit][i] != cb[unit][i]), n)
            raise AssertionError(f"{unit}: three SIGKILLs changed its events (repeated, lost or different): "
                                 f"{len(ca[unit])} calm, {len(cb[unit])} killed; first difference at its event "
                                 f"{first + 1}:\n  calm   {ca[unit][first] if first < len(ca[unit]) else None}\n"
                                 f"  killed {cb[unit][first] if first < len(cb[unit]) else None}")
    kinds = collections.Counter(r["event"] for r in a.values())
    assert kinds["pairing"] == UNITS, kinds
    assert kinds["geofence_entry"] >= 1 and kinds["geofence_exit"] >= 1, kinds
    assert kinds["motion_start"] >= 1, kinds
    zones = {r["zone"] for r in a.values() if r["event"] == "geofence_entry"}
    assert any(z.startswith("yangshan") for z in zones), zones
    # The seal alarms: the one tamper of the fleet; customs seals read where
    # the origin's was expected and openings (the inspections) outside the
    # allowed zones (none); each naming both numbers.
    assert kinds["seal_tampered"] == 1, kinds
    assert kinds["seal_mismatch"] >= 1 and kinds["seal_opened_outside_zone"] >= 1, kinds
    expected = {u["container"]: u["seal"] for u in fleet()}
    for r in a.values():
        assert r["kind"] == "event", r
        assert r["subject"].startswith("tcu") and r["container"], r
        if r["event"].startswith("seal_"):
            assert "dcsa" not in r and r["seal_id"] and r["seal_class"] == "security", r
            assert r["expected_seal_id"] == expected[r["container"]], r
            if r["event"] == "seal_mismatch":
                assert r["seal_id"] != r["expected_seal_id"], r
        else:
            assert r["dcsa"], r
    h.log(f"{len(a)} custody events, identical across 3 SIGKILLs: {dict(kinds)}; zones entered: {sorted(zones)}")


if __name__ == "__main__":
    h.main(test_custody_events)
