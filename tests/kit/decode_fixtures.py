#!/usr/bin/python3
"""decode_fixtures: the installed Python package eport (python3-eport, from DIST_PACKAGES)
decodes the payload of every schema version (tests/kit/make_fixtures.cpp: schema-1.X.ept)
to exactly the lines eport-tail prints (schema-1.X.jsonl), with the decoder generated at
build time (no flatc at run time), and its completeness checker and mappings run on them.
Exit 0: all agree; 1: a difference; 77: a Debian python3 package is missing (named)."""
import os
import sys

dist, fixtures = sys.argv[1], sys.argv[2]
sys.path.insert(0, dist)
for module, package in (("flatbuffers", "python3-flatbuffers"), ("zstandard", "python3-zstandard"),
                        ("cbor2", "python3-cbor2"), ("nacl", "python3-nacl"), ("cryptography", "python3-cryptography")):
    try:
        __import__(module)
    except ImportError:
        print(f"SKIP: needs {package} (apt-get install {package})")
        sys.exit(77)

import eport  # noqa: E402
from eport import completeness, dcsa, decode, epcis, records, verify  # noqa: E402,F401

failures = []
if not os.path.abspath(eport.__file__).startswith(os.path.abspath(dist) + os.sep):
    failures.append(f"eport imported from {eport.__file__}, not from {dist}")
if not decode.bundled():
    failures.append("the installed package has no generated decoder (eport/telemetry/v1)")
codec = decode.load_codec()
if not decode.Codec.__module__ == "eport.decode" or not sys.modules["eport.telemetry.v1.Envelope"].__file__.startswith(
        os.path.abspath(dist)):
    failures.append("the generated decoder was not the installed one")
versions = sorted(f[len("schema-"):-len(".ept")] for f in os.listdir(fixtures) if f.endswith(".ept"))
if versions != ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"]:
    failures.append(f"fixtures of versions {versions}, expected 1.0..1.5")
everything = []
for v in versions:
    with open(os.path.join(fixtures, f"schema-{v}.ept"), "rb") as f:
        payload = f.read()
    with open(os.path.join(fixtures, f"schema-{v}.jsonl"), "rb") as f:
        expected = f.read().splitlines()
    header, readings, problems = codec.decode_payload(payload)
    got = [decode.json_line(r) for r in readings]
    if problems or got != expected:
        failures.append(f"schema {v}: problems {problems}; got\n  " + "\n  ".join(x.decode() for x in got)
                        + "\nexpected\n  " + "\n  ".join(x.decode() for x in expected))
    everything += [(header, r) for r in readings]
    print(f"schema {v}: {len(readings)} readings as eport-tail prints them"
          f"{' (zstd)' if payload[:4] == decode.ZSTD_MAGIC else ''}")
# The other modules over the same readings.
c = completeness.completeness([r for _, r in everything])
if (120, 138, "flash_full") not in c["TU-0017"]["declared_gaps"] or c["TU-0017"]["received"] != [(139, 139)]:
    failures.append(f"completeness of TU-0017: {c['TU-0017']}")
rows = [records.Row.of_reading(h["site"], h["gateway"], r) for h, r in everything]
n_dcsa = sum(1 for row in rows if dcsa.to_event(row) is not None)
n_epcis = sum(1 for row in rows if epcis.to_event(row) is not None)
if n_dcsa == 0 or n_epcis == 0:
    failures.append(f"DCSA events {n_dcsa}, EPCIS events {n_epcis}: expected some of each")
print(f"completeness of {len(c)} sources; {n_dcsa} DCSA and {n_epcis} EPCIS events")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
