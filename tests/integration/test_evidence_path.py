"""Evidence checkpoints carried like data (docs/evidence.md section 13,
docs/firmware-bridge.md 7.15): simulated units with Ed25519 keys keep hash
chains over their readings and send signed checkpoints (EVIDENCE) through an
agent that is SIGKILLed twice and whose broker restarts once; every fourth
EVIDENCE_ACK is lost, so checkpoints are resent and must not be stored twice. The subscriber
gets every checkpoint the simulator saw acknowledged, exactly once per
(source, n), on the evidence topic; an independent check (python3 with cbor2
and nacl, no eport code) verifies every signature, the checkpoint chain, and
that each head is the hash chain over the readings the subscriber received.
Every unit's every third checkpoint has a corrupted signature: the agent
counts it in health (evidence.bad), alarms, and forwards it as sent; the
checkpoint after it cannot be linked to an unauthentic one and is counted
as a broken chain (the independent check, which reads the corrupted one's
payload anyway, links them)."""
import collections
import hashlib
import json
import os
import struct
import subprocess
import sys
import time

import harness as h

UNITS, COUNT, RATE, EVERY = 4, 150, 30, 16


def crc32c(b):
    crc = 0xFFFFFFFF
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def canonical(r):
    """R of a decoded reading (docs/evidence.md section 3), from its JSON alone."""
    t = 0 if r.get("time_source") == "gateway_receive" else r["time_utc_ms"]
    kind = r["kind"]
    p = struct.pack("<QQ", r["seq"], t)
    if kind == "position":
        present = sum(bit for bit, k in ((1, "speed_cm_s"), (2, "heading_cdeg"), (4, "hdop_centi")) if k in r)
        p += bytes([0]) + struct.pack("<iiBBB", r["lat_e7"], r["lon_e7"], r["fix"], r["satellites"], present)
        for k in ("speed_cm_s", "heading_cdeg", "hdop_centi"):
            if k in r:
                p += struct.pack("<H", r[k])
    elif kind == "seal":
        states = {"unknown": 0, "sealed": 1, "opened": 2, "tampered": 3}
        sid = r["seal_id"].encode()
        p += bytes([1, states[r["state"]], len(sid)]) + sid
    elif kind == "door":
        p += bytes([2, {"unknown": 0, "closed": 1, "open": 2}[r["state"]]])
    elif kind == "sensor":
        fields = (("temperature_centi_c", "<h"), ("humidity_centi_pct", "<H"), ("shock_milli_g", "<H"),
                  ("battery_mv", "<H"), ("battery_pct", "<B"), ("reefer_setpoint_centi_c", "<h"))
        present = sum(1 << i for i, (k, _) in enumerate(fields) if k in r)
        p += bytes([3, present])
        for k, fmt in fields:
            if k in r:
                p += struct.pack(fmt, r[k])
    else:
        raise AssertionError(f"no canonical bytes for a {kind} reading")
    body = bytes([2, 3]) + p
    return body + struct.pack("<I", crc32c(body))


def verify_independently(keys, checkpoints, readings):
    """keys: unit -> (kid, pub); checkpoints: unit -> [cose bytes in n order];
    readings: unit -> {seq: reading JSON}. Raises unless every checkpoint
    signature (but the corrupted ones, returned) verifies and every head
    matches; returns (verified, bad_signatures, readings covered)."""
    import cbor2
    import nacl.exceptions
    import nacl.signing
    verified = bad = covered = 0
    for unit, cks in checkpoints.items():
        kid, pub = keys[unit]
        head = hashlib.sha256(b"eport-ev1 genesis" + bytes([len(unit)]) + unit.encode()).digest()
        prev_id, prev_last = None, None
        for n, raw in enumerate(cks, start=1):
            msg = cbor2.loads(raw)
            assert isinstance(msg, cbor2.CBORTag) and msg.tag == 18
            protected, unprotected, payload, sig = msg.value
            assert cbor2.loads(protected) == {1: -8, 4: kid} and unprotected == {}
            tbs = cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)
            try:
                nacl.signing.VerifyKey(pub).verify(tbs, sig)
                verified += 1
            except nacl.exceptions.BadSignatureError:
                bad += 1
            p = cbor2.loads(payload)
            assert p[1] == unit and p[2] == n, f"{unit}: checkpoint {p[2]} where {n} was expected"
            if prev_id is None:
                assert 7 not in p
            else:
                assert p[7] == prev_id and p[3] == prev_last + 1, f"{unit}: checkpoint {n} does not follow"
            seqs = [s for s in range(p[3], p[4] + 1) if s in readings[unit]]
            assert len(seqs) == p[5], f"{unit}: checkpoint {n} counts {p[5]} readings, the subscriber has {len(seqs)}"
            for s in seqs:
                head = hashlib.sha256(b"eport-ev1 link" + head + s.to_bytes(8, "little") +
                                      canonical(readings[unit][s])).digest()
            assert head == p[6], f"{unit}: the head of checkpoint {n} is not the chain over the readings received"
            prev_id, prev_last = hashlib.sha256(tbs).digest(), p[4]
            covered += len(seqs)
    return verified, bad, covered


def test_evidence_path(work):
    broker = h.Broker(work, persistent=True)
    broker.start()
    data_tail = h.Tail(work, broker.uri, client_id="ev-data", name="data")
    ev_tail = h.Tail(work, broker.uri, client_id="ev-evidence", name="evidence",
                     extra_args=("--topic", "eport/v1/+/+/evidence"))
    keydir = work.file("keys")
    listing = subprocess.run([h.SIM, "--units", str(UNITS), "--evidence-keys", keydir, "--list-units"],
                             capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0, listing.stderr
    keys_file = os.path.join(keydir, "evidence_keys")
    keys = {}
    for line in open(keys_file):
        unit, alg, kid, pub = line.split()
        assert alg == "ed25519"
        keys[unit] = (bytes.fromhex(kid), bytes.fromhex(pub))
    assert len(keys) == UNITS
    agent = h.FleetAgent(work, broker.uri, name="agent", gateway="gw-ev", extra="[health]\ninterval_s = 1\n")
    with open(agent.config) as f:  # bridge.evidence_keys joins its [bridge] section
        text = f.read()
    with open(agent.config, "w") as f:
        f.write(text.replace("[bridge]\n", f'[bridge]\nevidence_keys = "{keys_file}"\n', 1))
    agent.start()
    acked_log, ev_log = work.file("acked.jsonl"), work.file("sim-evidence.jsonl")
    sim = h.sim(["--connect", "unix:" + agent.socket, "--units", UNITS, "--rate", RATE, "--count", COUNT,
                 "--evidence-keys", keydir, "--evidence-every", EVERY, "--evidence-log", ev_log,
                 "--acked-log", acked_log, "--drain-timeout", 120, "--ack-timeout", 2000, "--quiet",
                 "--corrupt-evidence-every", 3, "--drop-evidence-acks-every", 4, "--prefix", "tcu"], background=True)
    for k in range(2):
        time.sleep(1.5)
        agent.kill9()
        time.sleep(0.3)
        agent.start()
        h.log(f"agent restarted after SIGKILL {k + 1}")
    time.sleep(0.5)
    broker.stop()
    h.log("broker stopped for 3 s")
    time.sleep(3)
    broker.start()
    out, err = sim.communicate(timeout=240)
    h.log(out.strip())
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    s = h.summary(out)
    assert s["evidence_unacked"] == 0 and s["evidence_acked"] == s["evidence_made"] > 0, s
    assert s["evidence_corrupted"] >= UNITS, s
    # Each lost EVIDENCE_ACK is recovered by a resend (or by the next link after a SIGKILL).
    assert s["evidence_acks_dropped"] >= UNITS and s["evidence_resent"] >= 1, s

    acked = h.read_jsonl(acked_log)
    assert len(acked) == UNITS * COUNT
    sent = h.read_jsonl(ev_log)
    assert len(sent) == s["evidence_acked"]
    h.wait_until(lambda: len({h.key(r) for r in data_tail.readings()}) >= UNITS * COUNT, 60, "every reading")
    h.wait_until(lambda: len({(r["source"], r["n"]) for r in ev_tail.readings()}) >= len(sent), 60,
                 "every acknowledged checkpoint")
    time.sleep(2)  # whatever else is still coming (there must be nothing new)
    # Counted in health, since the agent's last start: good and bad (the
    # corrupted signatures), never more bad than the simulator corrupted.
    hl = json.loads(subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t", "eport/v1/cnsha/gw-ev/health",
                                    "-C", "1", "-W", "20"], capture_output=True, text=True, timeout=30).stdout)
    ev = hl["evidence"]
    h.log(f"health evidence: {ev}")
    # A checkpoint after a bad one cannot be linked to it: the next is a broken chain.
    assert ev["bad"] == ev["by_check"]["bad_signature"] + ev["by_check"]["broken_chain"], ev
    assert ev["by_check"]["broken_chain"] <= ev["by_check"]["bad_signature"] <= s["evidence_corrupted"], ev
    assert ev["good"] + ev["bad"] >= 1 and ev["checkpoints_stored"] >= 1, ev
    assert ev["heads_checked"] >= 1, ev  # ranges whose readings all reached this agent since its start
    assert agent.terminate() == 0
    data_tail.stop()
    ev_tail.stop()
    h.check_all_arrived(acked, data_tail.readings())

    # Exactly once per (source, n): duplicates (redelivery) are identical and
    # dropped like any resend; every acknowledged checkpoint arrived, as sent.
    got = {}
    for r in ev_tail.readings():
        assert r["kind"] == "evidence" and r["source"].endswith(":ev"), r
        k = (r["source"], r["n"])
        if k in got:
            assert got[k] == r, f"{k} arrived twice with different content"
        got[k] = r
    assert all(not r["source"].endswith(":ev") for r in data_tail.readings()), "a checkpoint on a data topic"
    expected = {(c["unit"] + ":ev", c["n"]): c for c in sent}
    assert set(got) == set(expected), f"missing {set(expected) - set(got)}, extra {set(got) - set(expected)}"
    for k, c in expected.items():
        assert got[k]["cose"] == c["cose"] and got[k]["seq"] == c["seq"], f"{k} altered on the way"
    checks = collections.Counter(r["check"] for r in got.values())
    h.log(f"{len(got)} checkpoints at the subscriber, agent's checks: {dict(checks)}")
    assert checks["bad_signature"] == s["evidence_corrupted"], checks
    assert checks["verified"] + checks["bad_signature"] + checks["broken_chain"] == len(got), checks
    assert checks["broken_chain"] <= checks["bad_signature"], checks
    assert checks["readings_mismatch"] == 0, checks  # every head the agent could check matched

    # The independent check, from the messages and the public keys alone.
    readings = collections.defaultdict(dict)
    for r in data_tail.readings():
        readings[r["source"]][r["seq"]] = r
    by_unit = collections.defaultdict(list)
    for (source, n), r in sorted(got.items()):
        by_unit[source[:-3]].append(bytes.fromhex(r["cose"]))
    verified, bad, covered = verify_independently(keys, by_unit, readings)
    assert bad == s["evidence_corrupted"] and verified == len(got) - bad, (verified, bad)
    assert covered == UNITS * COUNT, f"the checkpoints cover {covered} of {UNITS * COUNT} readings"
    h.log(f"independently: {verified} signatures verified, {bad} bad (as corrupted), {covered} readings' chain "
          f"heads match")

    log = agent.read_log()
    assert "ALARM: evidence checkpoint" in log and "bad_signature" in log, "no alarm logged for a bad signature"

    # The outsider's verifier (examples/python/eport_verify.py, written from docs/evidence.md) on
    # everything the subscribers got, resends included: across the SIGKILLs, the broker restart
    # and the lost EVIDENCE_ACKs nothing is missing, altered or forged; the only problems are the
    # corrupted signatures and what they make unverifiable.
    sys.path.insert(0, os.path.join(h.SOURCE_DIR, "examples", "python"))
    import eport_verify as ev
    reports = ev.verify(list(data_tail.readings()), [bytes.fromhex(r["cose"]) for r in ev_tail.readings()],
                        ev.Registry.from_key_file(keys_file))
    kinds = collections.Counter(p["kind"] for r in reports.values() for p in r["problems"])
    assert kinds["bad signature"] == s["evidence_corrupted"], kinds
    assert set(kinds) <= {"bad signature", "checkpoint chain broken", "unverifiable"}, kinds
    h.log(f"eport_verify: {ev.summary(reports)} ({dict(kinds)}, all from the corrupted signatures)")

    # The C++ eport-verify on the subscribers' files as eport-tail wrote them: the same report.
    res = subprocess.run([os.path.join(h.BIN, "tools", "eport-verify"), "--keys", keys_file, "--json",
                          data_tail.out, ev_tail.out], capture_output=True, text=True, timeout=120)
    assert res.returncode == (1 if kinds else 0), f"eport-verify exit {res.returncode}: {res.stderr}"
    doc = json.loads(res.stdout)
    assert doc["sources"] == json.loads(json.dumps(reports)), "eport-verify and eport_verify.py differ"
    h.log(f"eport-verify: {doc['summary']} (the same report)")


if __name__ == "__main__":
    h.main(test_evidence_path)
