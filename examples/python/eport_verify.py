#!/usr/bin/python3
"""eport_verify: checks the evidence of eport-edge telemetry (docs/evidence.md)
from the messages and the signed device registry alone, written from that
document for a customs IT team. It shares no code with the agent: Debian's
python3-cbor2, python3-nacl (Ed25519) and python3-cryptography (ES256, the
registry's signature) and hashlib.

Input: the decoded readings as eport-tail and eport_consumer.py print them
(one JSON object per line: "source", "seq", "kind", ...), and the sources'
checkpoints (COSE_Sign1 bytes). Per source it rebuilds each reading's
canonical bytes (section 3), the hash chain (section 4), and walks the
checkpoints in order (sections 5 and 7), with the keys of the registry
(section 14). It reports, per source: the seq ranges verified, every
problem by kind (missing readings, declared discarded, altered, not
covered, conflicting copies, checkpoint chain broken, replayed checkpoint,
bad signature, unknown key, key of another source, revoked key, malformed
checkpoint) and the unverified tail.

    python3 eport_verify.py --registry registry.json --ca ca.crt CAPTURE.jsonl... [--json]
    python3 eport_verify.py --keys evidence_keys CAPTURE.jsonl...      (tests, demos: no registry)

A capture line is a reading object as eport-tail prints it; a checkpoint is
such an object of kind "evidence" (its "cose": the COSE_Sign1 in hex, from the
gateway's evidence topic, docs/evidence.md 13), or {"checkpoint": "<hex>"}.
--keys takes the agent's bridge.evidence_keys file ("UNIT_ID ALG KID PUBKEY_HEX"
lines) instead of a signed registry: nothing then proves who listed the keys.
Exit 0: no problem (an unverified tail is not a problem); 1: problems; 2: bad input.
"""
import argparse
import json
import os
import sys

# The verifier is the consumer kit's (consumers/python/eport/verify.py, installed as python3-eport);
# from a source tree, the repository's copy comes first.
_KIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "consumers", "python")
if os.path.isdir(os.path.join(_KIT, "eport")):
    sys.path.insert(0, os.path.normpath(_KIT))

from eport.verify import (BadInput, Checkpoint, Registry, canonical_event, canonical_reading,  # noqa: E402,F401
                          crc32c, reading_of_canonical, summary, verify, _ranges)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--registry")
    ap.add_argument("--ca", help="the operator CA's certificate (PEM)")
    ap.add_argument("--signature", help="default: REGISTRY.sig")
    ap.add_argument("--keys", help="an agent's bridge.evidence_keys file instead of a registry")
    ap.add_argument("--json", action="store_true", help="the report as one JSON object")
    ap.add_argument("capture", nargs="+")
    a = ap.parse_args(argv)
    if not a.keys and not (a.registry and a.ca):
        ap.error("give --registry and --ca, or --keys")
    try:
        registry = Registry.from_key_file(a.keys) if a.keys else Registry.load(a.registry, a.ca, a.signature)
        readings, checkpoints = [], []
        for path in a.capture:
            with open(path) as f:
                for line in f:
                    if not line.strip() or not line.startswith("{"):
                        continue
                    obj = json.loads(line)
                    if "checkpoint" in obj:
                        checkpoints.append(bytes.fromhex(obj["checkpoint"]))
                    elif obj.get("kind") == "evidence":
                        checkpoints.append(bytes.fromhex(obj["cose"]))
                    elif "source" in obj and "seq" in obj:
                        readings.append(obj)
        reports = verify(readings, checkpoints, registry)
    except (BadInput, OSError, ValueError, KeyError) as e:
        print(f"eport_verify: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({"sources": reports, "summary": summary(reports)}, sort_keys=True))
    else:
        for r in reports.values():
            tail = r["unverified_tail"]
            print(f"{r['source']}: verified {_ranges([tuple(v) for v in r['verified']]) or 'nothing'}"
                  f" ({r['readings_verified']} readings, {r['checkpoints']} checkpoints)"
                  + (f"; unverified tail {tail['first']}..{tail['last']} ({tail['readings']} readings)" if tail else ""))
            for p in r["problems"]:
                where = "" if p["first"] is None else f" {p['first']}..{p['last']}"
                print(f"  {p['kind']}{where}: {p['detail']}")
        print(summary(reports))
    return 1 if any(r["problems"] for r in reports.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
