#!/usr/bin/python3
"""[ingest] The DCSA and EPCIS documents of the mapping (the journey of tests/journey.py)
through the shared Node validators, Ajv 8 with ajv-formats (which, unlike Debian's
python3-jsonschema, checks date-time and uri itself): validate-epcis.js passes our
EPCISDocument, EPCISQueryDocument and the 21 GS1 examples and fails each of the 15
must-fail documents; validate-dcsa.js --strict-codes finds our events valid and the
published example with the old codes invalid. Skips (77), saying why, without node or
npm or when npm cannot reach or trust the registry."""
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import standards  # noqa: E402
import node_validators  # noqa: E402

if standards.missing():
    print(f"SKIP: needs {standards.missing()}")
    sys.exit(77)
try:
    TOOLS = node_validators.install()
except node_validators.Unavailable as e:
    print(f"SKIP: {e}")
    sys.exit(77)

import journey  # noqa: E402
import eport_ingest  # noqa: E402,F401  (puts the consumer kit on sys.path)
from eport import dcsa, epcis  # noqa: E402


def main():
    work = tempfile.mkdtemp(prefix="eport-standards-node-docs-")
    try:
        rows = journey.all_rows()
        evs = [e for e in (epcis.to_event(r) for r in rows) if e is not None]
        paths = []
        for name, doc in (("document.jsonld", epcis.document(evs)), ("query.jsonld", epcis.query_document(evs))):
            paths.append(os.path.join(work, name))
            with open(paths[-1], "w") as f:
                json.dump(doc, f)
        passed, failed, out = node_validators.epcis(TOOLS, paths)
        assert (passed, failed) == (2, 0), out
        passed, failed, out = node_validators.epcis(TOOLS, standards.example_documents())
        assert (passed, failed) == (21, 0), out
        must_fail = standards.must_fail_documents()
        passed, failed, out = node_validators.epcis(TOOLS, must_fail)
        assert (passed, failed) == (0, len(must_fail)) and len(must_fail) == 15, out
        print(f"EPCIS: ours and 21 GS1 examples pass, {failed} must-fail documents fail (Ajv)")

        devs = [e for e in (dcsa.to_event(r) for r in rows) if e is not None]
        verdict = node_validators.dcsa(TOOLS, {"events": devs}, work)
        assert verdict == "valid", verdict
        with open(os.path.join(standards.STANDARDS, "dcsa", "examples-20260130", "tnt-300-request-iot.json")) as f:
            old = json.load(f)
        verdict = node_validators.dcsa(TOOLS, old, work, "old.json")
        assert verdict.startswith("invalid"), verdict
        broken = dict(devs[0], eventClassification=dict(devs[0]["eventClassification"], iotEventType="DRO"))
        assert node_validators.dcsa(TOOLS, {"events": [broken]}, work, "broken.json").startswith("invalid")
        print(f"DCSA: {len(devs)} events valid with --strict-codes; the old-code example and an unknown code invalid")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASSED")


if __name__ == "__main__":
    main()
