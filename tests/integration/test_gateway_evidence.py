"""The gateway's own evidence (docs/evidence.md 13.4), end to end: the
operator issues the gateway's custody key with eport-pki (signed registry),
the agent chains and signs its derived custody events (the seal alarms
among them) while it is SIGKILLed twice and the broker restarts, and the
outsider's verifier (examples/python/eport_verify.py, the CLI, with the
registry and the CA certificate) and eport-verify, which agree report for
report, verify the custody source from what the
subscribers got: every event covered, no problem, no unverified tail once
the time rule has run. One event changed in the capture is named
`altered`; one withheld is `missing readings`."""
import collections
import json
import os
import subprocess
import time

import harness as h
import test_custody_events as ce

PKI = os.path.join(h.SOURCE_DIR, "broker-config", "pki", "eport-pki")
VERIFY = os.path.join(h.SOURCE_DIR, "examples", "python", "eport_verify.py")
EPORT_VERIFY = h.AGENT.replace("app/eport-agent", "tools/eport-verify")
GATEWAY = "gw-evg"
CUSTODY_SOURCE = GATEWAY + ":custody"


def verify(work, pki_dir, lines, name):
    capture = work.file(f"{name}.jsonl")
    with open(capture, "w") as f:
        for r in lines:
            f.write(json.dumps(r) + "\n")
    args = ["--registry", os.path.join(pki_dir, "registry.json"), "--ca", os.path.join(pki_dir, "ca.crt"), "--json",
            capture]
    p = subprocess.run(["/usr/bin/python3", VERIFY, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode in (0, 1), f"eport_verify: {p.returncode} {p.stdout} {p.stderr}"
    # eport-verify (C++) gives the same report and exit status.
    c = subprocess.run([EPORT_VERIFY, *args], capture_output=True, text=True, timeout=120)
    assert c.returncode == p.returncode, f"eport-verify: {c.returncode} {c.stdout} {c.stderr}"
    assert json.loads(c.stdout) == json.loads(p.stdout), f"the verifiers differ on {name}"
    return p.returncode, json.loads(p.stdout)


def test_gateway_evidence(work):
    try:
        import cbor2, nacl, cryptography  # noqa: F401 (the verifier's packages)
    except ImportError as e:
        print(f"SKIP: {e}")
        raise SystemExit(77)
    pki_dir = work.file("pki")
    subprocess.run([PKI, "init", pki_dir, "Port of Test CA"], check=True, capture_output=True)
    subprocess.run([PKI, "evidence-key", pki_dir, CUSTODY_SOURCE], check=True, capture_output=True)
    registry = json.load(open(os.path.join(pki_dir, "registry.json")))
    kid = next(k["kid"] for k in registry["keys"] if k["source"] == CUSTODY_SOURCE)
    key_file = os.path.join(pki_dir, "evidence", "keys", f"{CUSTODY_SOURCE}-{kid}.key.pem")
    assert os.path.exists(key_file), os.listdir(os.path.dirname(key_file))

    broker = h.Broker(work, persistent=True)
    broker.start()
    data_tail = h.Tail(work, broker.uri, client_id="evg-data", name="data")
    ev_tail = h.Tail(work, broker.uri, client_id="evg-evidence", name="evidence",
                     extra_args=("--topic", "eport/v1/+/+/evidence"))
    session = work.file("session.jsonl")
    gen = h.sim(["--units", ce.UNITS, "--connect", "unix:" + work.file("nobody.sock"), "--rate", 100000,
                 "--count", ce.COUNT, "--seed", ce.SEED, "--time-step", 30000, "--record", session,
                 "--drain-timeout", 0, "--quiet"], timeout=60)
    assert gen.returncode == 3, f"expected the 'unacknowledged' exit: {gen.stdout} {gen.stderr}"

    # Checkpoints every 16 events, at once after an alarm, and 2 s after the
    # first uncovered one (the store's maintenance, every second, runs the
    # time rule): so the newest events are covered soon after they are made.
    extra = ce.CUSTODY + f'[evidence]\ncustody_key = "{key_file}"\ncheckpoint_every_readings = 16\n' \
                         f'checkpoint_every_s = 2\n[health]\ninterval_s = 1\n'
    agent = h.FleetAgent(work, broker.uri, name="agent", gateway=GATEWAY, extra=extra,
                         store_extra="maintenance_interval_s = 1")
    agent.start()
    h.wait_until(lambda: "connected to" in agent.read_log(), 20, "the agent connected to the broker")
    ce.expect_seals(broker.uri, GATEWAY)
    acked = work.file("acked.jsonl")
    p = h.sim(["--replay", session, "--connect", "unix:" + agent.socket, "--acked-log", acked,
               "--drain-timeout", 120, "--quiet"], background=True)
    for k in range(2):
        time.sleep(1.0)
        agent.kill9()
        time.sleep(0.3)
        agent.start()
        h.log(f"agent restarted after SIGKILL {k + 1}")
    broker.stop()
    time.sleep(2)
    broker.start()
    h.log("broker restarted")
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, f"eport-sim --replay: {out} {err}"

    def events():
        return ce.events_of(data_tail.readings(), CUSTODY_SOURCE)

    def covered_to():
        last = 0
        for r in ev_tail.readings():
            if r["source"] == CUSTODY_SOURCE + ":ev":
                last = max(last, r["seq"])
        return last

    # Every event made arrives, and checkpoints come until none is uncovered.
    h.wait_until(lambda: len(events()) > 0 and max(events()) == len(events()), 60, "the custody events")
    time.sleep(4)  # the time rule, then the last checkpoint's way to the subscriber

    def settled():
        return len(events()) == max(events()) and _tail_empty(work, pki_dir, data_tail, ev_tail)

    h.wait_until(settled, 60, "a checkpoint covering the newest custody event")
    hl = json.loads(subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t",
                                    f"eport/v1/cnsha/{GATEWAY}/health", "-C", "1", "-W", "20"],
                                   capture_output=True, text=True, timeout=30).stdout)
    ge = hl["gateway_evidence"]
    h.log(f"health gateway_evidence: {ge}")
    assert ge["sources"] == [CUSTODY_SOURCE] and ge["sign_failures"] == 0 and ge["restarts"] == 0, ge
    assert agent.terminate() == 0
    data_tail.stop()
    ev_tail.stop()

    ev = events()
    kinds = collections.Counter(r["event"] for r in ev.values())
    assert kinds["seal_mismatch"] >= 1 and kinds["pairing"] >= ce.UNITS, kinds
    lines = data_tail.readings() + ev_tail.readings()
    rc, report = verify(work, pki_dir, lines, "clean")
    custody = report["sources"][CUSTODY_SOURCE]
    h.log(f"eport_verify: {report['summary']}; {CUSTODY_SOURCE}: {custody['verified']}, "
          f"{custody['checkpoints']} checkpoints, {dict(kinds)}")
    assert custody["problems"] == [] and custody["unverified_tail"] is None, custody
    assert custody["readings_verified"] == len(ev), (custody, len(ev))
    assert custody["verified"] == [[1, len(ev)]], custody
    # The units have no evidence keys here: their readings are an unverified
    # tail, not a problem.
    assert rc == 0, report["summary"]

    # Tampering with the custody record is found and named.
    target = next(s for s, r in sorted(ev.items()) if r["event"] == "seal_mismatch")
    altered = [dict(r, expected_seal_id="NOT-EXPECTED") if r["source"] == CUSTODY_SOURCE and r["seq"] == target
               else r for r in lines]
    rc, report = verify(work, pki_dir, altered, "altered")
    kinds_found = {p["kind"] for p in report["sources"][CUSTODY_SOURCE]["problems"]}
    assert rc == 1 and kinds_found == {"altered"}, report["sources"][CUSTODY_SOURCE]
    dropped = [r for r in lines if not (r["source"] == CUSTODY_SOURCE and r["seq"] == target)]
    rc, report = verify(work, pki_dir, dropped, "dropped")
    kinds_found = {p["kind"] for p in report["sources"][CUSTODY_SOURCE]["problems"]}
    assert rc == 1 and kinds_found == {"missing readings"}, report["sources"][CUSTODY_SOURCE]
    h.log(f"seal_mismatch event seq {target}: changed -> altered, withheld -> missing readings")


def _tail_empty(work, pki_dir, data_tail, ev_tail):
    rc, report = verify(work, pki_dir, data_tail.readings() + ev_tail.readings(), "probe")
    src = report["sources"].get(CUSTODY_SOURCE)
    return src is not None and src["unverified_tail"] is None


if __name__ == "__main__":
    h.main(test_gateway_evidence)
