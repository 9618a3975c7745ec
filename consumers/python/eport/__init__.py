"""eport: the consumer kit of eport-edge for cloud services in Python (docs/consuming.md).

    eport.decode        payload (zstd or not) -> checked FlatBuffers envelope -> readings
                        as eport-tail prints them; every schema version 1.0..1.5, envelopes v1 and v2
    eport.completeness  per source: received seqs, declared gaps, undeclared gaps;
                        per source and class: the gateway's class counts, and their holes
    eport.verify        the evidence verifier (docs/evidence.md section 15)
    eport.records       eport.records.Row: a reading as the mappings read it
    eport.dcsa          DCSA Track & Trace 3.0 events of readings
    eport.epcis         GS1 EPCIS 2.0 events and documents of readings

Runs on Debian 12's /usr/bin/python3: python3-flatbuffers and python3-zstandard (decode),
python3-cbor2, python3-nacl and python3-cryptography (verify). Submodules are imported
on demand, so a service that only decodes needs only the first two.

eport.telemetry (flatc's generated code of schema/telemetry.fbs, namespace
eport.telemetry.v1) is not in the source tree: the python3-eport package installs the code
generated at build time, and from a source tree eport.decode.load_codec() generates it.
"""
__version__ = "0.1.0"
