"""The tamper table of issue 14, against the outsider's verifier
examples/python/eport_verify.py (written from docs/evidence.md; no eport code
in it): signed runs of two units made by the C library (epb-evidence demo)
with keys that eport-pki issued and put in its signed registry, turned into
a capture of decoded readings and checkpoints. The clean capture, with
resent readings and checkpoints, verifies with 0 problems; each tampering
is detected and named: one reading dropped, a range dropped (missing
readings), the newest readings and checkpoints dropped (an unverified tail),
two readings swapped, one field changed, a reading moved from another unit
(altered), a reading forged with a fresh seq (not covered), a checkpoint
replayed from another chain (replayed checkpoint), a checkpoint re-signed
with another unit's key (key of another source), the unit's key revoked
(revoked key), a registry changed after signing (refused), and a checkpoint
cut short (malformed, and the chain broken after it), a reading with a value no unit
can send (altered), a second different copy of a reading (conflicting
copies), readings the unit discarded with its DISCARD (declared discarded,
and missing beyond what it declares), and custody events of a gateway
with no checkpoint of them (its unverified tail).

Every case runs through both verifiers on the same capture file: the Python
one and the C++ eport-verify (agent/tools/verify, over the C library's
epb_ev_verifier). Each must name the expected kinds with the expected exit
status (0 clean, 1 problems, 2 bad input), and the two --json reports must be
equal member for member (only the wording of a malformed checkpoint's parse
error may differ), as must their text reports."""
import copy
import json
import os
import subprocess
import sys

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(SOURCE, "examples", "python"))
PKI = os.path.join(SOURCE, "broker-config", "pki", "eport-pki")
EPB_EVIDENCE = os.path.join(os.path.dirname(h.BIN), "firmware-bridge", "epb-evidence")
VERIFY = os.path.join(SOURCE, "examples", "python", "eport_verify.py")
EPORT_VERIFY = os.path.join(h.BIN, "tools", "eport-verify")
# The two verifiers every case runs through, as commands.
VERIFIERS = {"python": [sys.executable, VERIFY], "eport-verify": [EPORT_VERIFY]}

try:
    import cbor2
    from cryptography.hazmat.primitives import serialization
    import eport_verify as ev
except ImportError as e:  # python3-cbor2, python3-nacl, python3-cryptography (setup.sh --test)
    print(f"SKIP: {e}")
    sys.exit(77)


def pki(*args):
    subprocess.run([PKI, *args], check=True, capture_output=True, text=True)


def demo(work, key, name, readings, source):
    out = work.file(name)
    os.makedirs(out)
    subprocess.run([EPB_EVIDENCE, "demo", key, out, str(readings), source], check=True, capture_output=True)
    raw = [bytes.fromhex(x) for x in open(os.path.join(out, "readings.hex")).read().split()]
    cks = [bytes.fromhex(x) for x in open(os.path.join(out, "checkpoints.hex")).read().split()]
    return [ev.reading_of_canonical(source, r) for r in raw], cks


def resign(checkpoint, key_pem, kid_hex):
    """The same checkpoint payload signed with another key under its kid."""
    msg = cbor2.loads(checkpoint)
    _, _, payload, _ = msg.value
    protected = cbor2.dumps({1: -8, 4: bytes.fromhex(kid_hex)}, canonical=True)
    tbs = cbor2.dumps(["Signature1", protected, b"", payload], canonical=True)
    key = serialization.load_pem_private_key(open(key_pem, "rb").read(), password=None)
    return cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, key.sign(tbs)]), canonical=True)


def kinds(reports, source):
    return sorted({p["kind"] for p in reports[source]["problems"]})


def test_evidence_verifier(work):
    if not os.access(EPB_EVIDENCE, os.X_OK):
        print(f"SKIP: {EPB_EVIDENCE} is not built")
        sys.exit(77)
    assert os.access(EPORT_VERIFY, os.X_OK), f"{EPORT_VERIFY} is not built"
    p = work.file("pki")
    pki("init", p, "Port of Test CA")
    pki("evidence-key", p, "TU-0001")
    pki("evidence-key", p, "TU-0002")
    reg = json.load(open(os.path.join(p, "registry.json")))
    kid = {k["source"]: k["kid"] for k in reg["keys"]}
    key = {s: os.path.join(p, "evidence", "keys", f"{s}-{kid[s]}.key.pem") for s in kid}
    registry = ev.Registry.load(os.path.join(p, "registry.json"), os.path.join(p, "ca.crt"))

    a_readings, a_cks = demo(work, key["TU-0001"], "a", 300, "TU-0001")   # 1001..1300
    b_readings, b_cks = demo(work, key["TU-0002"], "b", 200, "TU-0002")
    ranges = [(c.first, c.last) for c in map(ev.Checkpoint, a_cks)]
    assert len(ranges) >= 3 and ranges[0][0] == 1001 and ranges[-1][1] == 1300, ranges

    registry_args = ["--registry", os.path.join(p, "registry.json"), "--ca", os.path.join(p, "ca.crt")]
    captures = [0]

    def capture(readings, cks):
        captures[0] += 1
        path = work.file(f"capture-{captures[0]}.jsonl")
        with open(path, "w") as f:
            for r in readings:
                f.write(json.dumps(r) + "\n")
            for c in cks:
                f.write(json.dumps({"checkpoint": c.hex()}) + "\n")
        return path

    def cli(args, text=False):
        """Both verifiers on the same arguments: {name: (reports or stdout, exit status, stderr)}."""
        out = {}
        for name, cmd in VERIFIERS.items():
            res = subprocess.run(cmd + args + ([] if text else ["--json"]), capture_output=True, text=True)
            got = res.stdout
            if not text and res.returncode in (0, 1):
                doc = json.loads(res.stdout)
                got = doc["sources"]
                assert doc["summary"] == ev.summary(got), (name, doc["summary"])
            out[name] = (got, res.returncode, res.stderr)
        return out

    def same(results, what):
        """The two verifiers agree: exit status, and every report member (a malformed checkpoint's
        parse error is worded by each parser)."""
        (pn, (pr, prc, perr)), (cn, (cr, crc, cerr)) = results.items()
        assert prc == crc, f"{what}: exit {pn} {prc}, {cn} {crc}: {perr} | {cerr}"
        if isinstance(pr, dict):
            pr, cr = copy.deepcopy(pr), copy.deepcopy(cr)
            for r in (pr, cr):
                for x in r.get("?", {}).get("problems", []):
                    x["detail"] = "(parse error)"
            assert pr == cr, f"{what}: {pn} and {cn} differ:\n{json.dumps(pr, sort_keys=True)}\n" \
                             f"{json.dumps(cr, sort_keys=True)}"
        else:
            assert pr == cr, f"{what}: {pn} and {cn} differ:\n{pr}\n{cr}"

    def run(a_r=None, a_c=None, b_r=None, b_c=None, reg=None, what="run"):
        """The reports of the in-process Python verifier, after checking that both CLIs give the
        same reports and exit status on the capture file of the same readings and checkpoints."""
        readings = (a_readings if a_r is None else a_r) + (b_readings if b_r is None else b_r)
        cks = (a_cks if a_c is None else a_c) + (b_cks if b_c is None else b_c)
        reports = ev.verify(readings, cks, reg or registry)
        results = cli(registry_args + [capture(readings, cks)])
        same(results, what)
        for name, (got, rc, err) in results.items():
            expect_rc = 1 if any(r["problems"] for r in reports.values()) else 0
            assert rc == expect_rc, f"{what}: {name} exit {rc}, expected {expect_rc}: {err}"
            if name == "python":
                assert got == json.loads(json.dumps(reports)), f"{what}: the CLI and ev.verify differ"
        return results["eport-verify"][0]

    # Clean, and clean with resends (the same readings and a checkpoint again, out of order).
    clean = run(what="clean")
    for s in ("TU-0001", "TU-0002"):
        assert clean[s]["problems"] == [] and clean[s]["unverified_tail"] is None, clean[s]
    assert clean["TU-0001"]["verified"] == [[1001, 1300]] and clean["TU-0001"]["readings_verified"] == 300
    resent = run(a_r=a_readings[::-1] + a_readings[10:40], a_c=a_cks + a_cks[:1], what="resends")
    assert resent["TU-0001"]["problems"] == [] and resent["TU-0001"]["readings_verified"] == 300, resent
    h.log(f"clean: {ev.summary(clean)}")

    table = []

    def case(what, expect, reports, source="TU-0001", other_clean=True):
        got = kinds(reports, source)
        assert got == expect, f"{what}: expected {expect}, got {got}: {reports[source]['problems']}"
        if other_clean:
            assert reports["TU-0002"]["problems"] == [], f"{what}: TU-0002 {reports['TU-0002']['problems']}"
        table.append((what, ", ".join(got) + " (both verifiers)"))

    case("one reading dropped", ["missing readings"], run(a_r=a_readings[:50] + a_readings[51:], what="one dropped"))
    dropped = run(a_r=a_readings[:49] + a_readings[70:], what="a range dropped")
    case("a range dropped", ["missing readings"], dropped)
    absent = sum(int(x["detail"].split(" of ")[0]) for x in dropped["TU-0001"]["problems"])
    assert absent == 21 and "1050.." in dropped["TU-0001"]["problems"][0]["detail"] and \
        "..1070)" in dropped["TU-0001"]["problems"][-1]["detail"], dropped["TU-0001"]["problems"]
    # Truncation: the newest checkpoint and the last few readings withheld.
    kept_last = ranges[-2][1]
    cut = 1300 - 3
    truncated = run(a_r=[r for r in a_readings if r["seq"] <= cut], a_c=a_cks[:-1], what="truncated")
    tail = {"first": kept_last + 1, "last": cut, "readings": cut - kept_last}
    assert truncated["TU-0001"]["problems"] == [] and truncated["TU-0001"]["unverified_tail"] == tail and \
        truncated["TU-0001"]["verified"] == [[1001, kept_last]], truncated["TU-0001"]
    table.append(("the newest readings and checkpoint dropped",
                  f"unverified tail {tail['first']}..{tail['last']} ({tail['readings']} readings), never clean"))
    swapped = copy.deepcopy(a_readings)
    swapped[10], swapped[11] = dict(swapped[11], seq=swapped[10]["seq"]), dict(swapped[10], seq=swapped[11]["seq"])
    case("two readings swapped", ["altered"], run(a_r=swapped, what="swapped"))
    changed = copy.deepcopy(a_readings)
    field = next(k for k in ("lat_e7", "temperature_centi_c", "seal_id", "state") if k in changed[200])
    changed[200][field] = changed[200][field] + ("X" if isinstance(changed[200][field], str) else 1) \
        if field != "state" else ("open" if changed[200]["state"] != "open" else "closed")
    case(f"one field ({field}) of one reading changed", ["altered"], run(a_r=changed, what="changed"))
    moved = copy.deepcopy(a_readings)
    moved[9] = dict(b_readings[60], source="TU-0001", seq=moved[9]["seq"])  # TU-0002's reading in TU-0001's slot
    case("a reading moved from another unit", ["altered"], run(a_r=moved, what="moved"))
    forged = a_readings + [dict(a_readings[0], seq=1000)]
    case("a reading forged with a fresh seq", ["not covered"], run(a_r=forged, what="forged"))
    # A value no unit can send (GGA quality 9): eport-verify has no R for it, Python hashes what it
    # packs; both: altered.
    no_r = copy.deepcopy(a_readings)
    at = next(i for i, r in enumerate(no_r) if i > 20 and "fix" in r)
    no_r[at]["fix"] = 9
    case("a position's fix set to 9 (not an epb value)", ["altered"], run(a_r=no_r, what="fix 9"))
    # Declared gaps, other copies and kinds without R, through both verifiers too.
    conflicting = a_readings + [dict(a_readings[5], time_utc_ms=a_readings[5]["time_utc_ms"] + 1)]
    case("a second, different copy of a reading", ["conflicting copies"], run(a_r=conflicting, what="conflicting"))
    gap = {"source": "TU-0001", "seq": 1060, "time_utc_ms": 0, "time_source": "gateway_receive", "kind": "gap",
           "first_seq": 1050, "reason": "unit_discard"}
    discarded = [r for r in a_readings if not 1050 <= r["seq"] <= 1060] + [gap]
    case("readings discarded by the unit, with its DISCARD", ["declared discarded"],
         run(a_r=discarded, what="declared"))
    half = [r for r in a_readings if not 1050 <= r["seq"] <= 1062] + [gap]
    # 1050..1062 absent, 1050..1060 declared: across two ranges, the first all declared, the second not.
    case("more readings absent than the DISCARD declares", ["declared discarded", "missing readings"],
         run(a_r=half, what="half declared"))
    event = {"source": "gw-01:custody", "seq": 7, "time_utc_ms": 1718000000000, "kind": "event",
             "event": "pairing", "subject": "TU-0001", "first_seq": 1001, "caused_by_seq": 1001}
    with_events = run(a_r=a_readings[:100] + [event, dict(event, seq=8)] + a_readings[100:], what="events")
    # Custody events are the gateway's own source (section 13.4): with no checkpoint of it here, an unverified
    # tail, never a problem.
    assert all(r["problems"] == [] for r in with_events.values()), with_events
    assert with_events["gw-01:custody"]["unverified_tail"] == {"first": 7, "last": 8, "readings": 2}, with_events
    # Another chain of the same unit whose last checkpoint ends elsewhere: the same n, another content.
    _, other_chain = demo(work, key["TU-0001"], "a2", 1300 - 1001 - 2, "TU-0001")
    assert other_chain[-1] != a_cks[len(other_chain) - 1]
    case("a checkpoint replayed from another chain", ["replayed checkpoint"], run(a_c=a_cks + [other_chain[-1]], what="replayed"))
    stolen = a_cks[:1] + [resign(a_cks[1], key["TU-0002"], kid["TU-0002"])] + a_cks[2:]
    forged_key = run(a_c=stolen, what="another key")
    case("a checkpoint signed with another unit's key", ["checkpoint chain broken", "key of another source",
                                                         "unverifiable"], forged_key)
    # A checkpoint cut short: malformed (source "?"), so the chain breaks after the one before it.
    cut_ck = a_cks[:1] + [a_cks[1][:-5]] + a_cks[2:]
    cut = run(a_c=cut_ck, what="cut short")
    case("a checkpoint cut short", ["checkpoint chain broken", "unverifiable"], cut)
    assert [x["kind"] for x in cut["?"]["problems"]] == ["malformed checkpoint"], cut["?"]
    pki("evidence-key", p, "TU-0001", "--revoke", "keyCompromise")
    revoked = ev.Registry.load(os.path.join(p, "registry.json"), os.path.join(p, "ca.crt"))
    case("the unit's key revoked", ["revoked key"], run(reg=revoked, what="revoked"))
    with open(os.path.join(p, "registry.json"), "rb") as f:
        data = f.read()
    try:
        ev.Registry(data.replace(b"keyCompromise", b"superseded\x20\x20\x20"),
                    open(os.path.join(p, "registry.json.sig"), "rb").read(), open(os.path.join(p, "ca.crt"), "rb").read())
        raise AssertionError("a changed registry was accepted")
    except ev.BadInput as e:
        table.append(("the registry changed after signing", str(e)))
    changed_reg = work.file("changed-registry.json")
    with open(changed_reg, "wb") as f:
        f.write(data.replace(b"keyCompromise", b"superseded\x20\x20\x20"))
    refused = cli(["--registry", changed_reg, "--signature", os.path.join(p, "registry.json.sig"),
                   "--ca", os.path.join(p, "ca.crt"), capture(b_readings, b_cks)])
    for name, (_, rc, err) in refused.items():
        assert rc == 2 and "does not verify with the CA's key" in err, f"changed registry: {name} {rc} {err}"

    # The CLIs on a capture file, as text: exit 0 and a clean summary; exit 1 with a problem; the
    # same lines from both. A foreign CA: exit 2.
    p2 = work.file("pki2")
    pki("init", p2, "Port of Test CA")
    ok = cli(registry_args + [capture(b_readings, b_cks)], text=True)
    same(ok, "text, clean")
    for name, (out, rc, err) in ok.items():
        assert rc == 0 and out.strip().endswith("sources verified 1 of 1, readings covered 200, problems 0"), \
            f"{name}: {out} {err}"
    bad = cli(registry_args + [capture(b_readings[:150] + b_readings[151:], b_cks)], text=True)
    same(bad, "text, one missing")
    for name, (out, rc, err) in bad.items():
        assert rc == 1 and "missing readings" in out, f"{name}: {out} {err}"
    foreign = cli(["--registry", os.path.join(p, "registry.json"), "--ca", os.path.join(p2, "ca.crt"),
                   capture(b_readings, b_cks)])
    for name, (_, rc, err) in foreign.items():
        assert rc == 2 and "does not verify with the CA's key" in err, f"foreign CA: {name} {rc} {err}"
    for what, found in table:
        h.log(f"  {what}: {found}")
    h.log(f"tamper table: {len(table)} of {len(table)} detected and named, by both verifiers alike")


if __name__ == "__main__":
    h.main(test_evidence_verifier)
