"""Schema 1.1 in the Python example consumer, without a broker: declared gaps (SequenceGap) and
the reading's time source decode to the same JSON lines as the C++ codec (tests/unit/codec_test.cpp
checks the C++ side against the same lines; test_python_consumer.py sends them through eport-tail);
a 1.0 writer's reading (no time_source field) reads as Source; values from a newer schema read as
the C++ codec reads them; completeness() and class_completeness() and their examples in docs/consuming.md."""
import json
import os
import re
import subprocess
import sys

import harness as h

try:
    import flatbuffers  # noqa: F401
    import zstandard  # noqa: F401  (eport_consumer's Codec needs it)
except ImportError as e:
    print(f"SKIP: needs the module {e.name!r} (Debian 12: python3-flatbuffers, python3-zstandard)", flush=True)
    sys.exit(77)

SRC = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CONSUMER_DIR = os.path.join(SRC, "examples", "python")
DOC = os.path.join(SRC, "docs", "consuming.md")
sys.path.insert(0, CONSUMER_DIR)
import eport_consumer as ec  # noqa: E402
import envelopes  # noqa: E402


def decode_lines(codec, data):
    header, readings, problems = codec.decode_payload(data)
    return [ec.json_line(r).decode() for r in readings], problems


def check_decoding(codec, builder):
    # Every gap reason, gateway time on every kind, the highest seq: as the C++ codec prints them.
    data = builder.envelope(envelopes.GAP_LINES)
    got, problems = decode_lines(codec, data)
    assert not problems, problems
    assert got == envelopes.GAP_LINES, "\n".join(f"got  {g}\nwant {w}" for g, w in zip(got, envelopes.GAP_LINES)
                                                   if g != w) or f"{len(got)} lines"
    # Compressed, the same.
    assert decode_lines(codec, zstandard.ZstdCompressor().compress(data))[0] == envelopes.GAP_LINES

    # Schema 1.4: evidence checkpoints, as the C++ codec prints them; one of 337 bytes is refused.
    got, problems = decode_lines(codec, builder.envelope(envelopes.EVIDENCE_LINES, priority="alarm"))
    assert got == envelopes.EVIDENCE_LINES and not problems, got
    too_long = dict(json.loads(envelopes.EVIDENCE_LINES[1]), cose="d2" * 337)
    try:
        codec.decode_payload(builder.envelope([too_long], priority="alarm"))
        raise AssertionError("a 337-byte checkpoint was not refused")
    except ec.DecodeError as e:
        assert "evidence checkpoint of 337 bytes" in str(e), e

    # A 1.0 writer: no time_source field at all (the Reading vtable ends at payload).
    old = {"source": "tcu-1", "seq": 7, "time_utc_ms": 1795000000000, "kind": "door", "state": "closed"}
    got, problems = decode_lines(codec, builder.envelope([old]))
    assert got == ['{"source":"tcu-1","seq":7,"time_utc_ms":1795000000000,"kind":"door","state":"closed"}'], got

    # Values from a newer schema, as the C++ codec reads them (codec_test.cpp: "a time_source or
    # gap reason from a newer schema"): time_source 9 reads as Source, gap reason 200 as "unknown".
    newer = {"source": "tcu-1", "seq": 9, "time_utc_ms": 1000, "kind": "gap", "first_seq": 5, "reason": "?",
             "reason_value": 200, "time_source_value": 9}
    got, problems = decode_lines(codec, builder.envelope([newer]))
    assert got == ['{"source":"tcu-1","seq":9,"time_utc_ms":1000,"kind":"gap","first_seq":5,"reason":"unknown"}'], got

    # A payload kind from a newer schema: that reading is skipped and reported, the rest kept.
    future = {"source": "tcu-1", "seq": 10, "time_utc_ms": 1000, "payload_type": 9}
    got, problems = decode_lines(codec, builder.envelope([future, old]))
    assert len(got) == 1 and len(problems) == 1 and "unknown or missing payload type 9" in problems[0], problems

    # The hand-written verifier covers the new table and field: damaged copies raise DecodeError or decode.
    outcomes = {"ok": 0, "refused": 0}
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[i] ^= flip
            try:
                codec.decode_payload(bytes(damaged))
                outcomes["ok"] += 1
            except ec.DecodeError:
                outcomes["refused"] += 1
    assert outcomes["refused"] > 0, outcomes
    h.log(f"schema 1.1 lines decode as the C++ codec prints them; {len(data) * 3} damaged copies: {outcomes}")


def check_completeness():
    r = lambda seq, **kw: {"source": kw.pop("source", "TU-1"), "seq": seq, "kind": kw.pop("kind", "door"), **kw}
    gap = lambda first, seq, reason, **kw: r(seq, kind="gap", first_seq=first, reason=reason, **kw)
    readings = [r(1), r(2), r(3), gap(4, 9, "flash_full"), r(10), r(12), r(12),  # 12 twice: a duplicate
                gap(13, 13, "rejected_malformed"), r(16), gap(17, 20, "unit_reset"), gap(17, 20, "unit_reset"),
                r(5, source="TU-2"), r(6, source="TU-2"), gap(8, 8, "expired", source="TU-2"),
                r(30, source="TU-3"), gap(10, 9, "unknown", source="TU-3")]  # first_seq > seq: covers nothing
    c = ec.completeness(readings)
    assert c["TU-1"] == {"received": [(1, 3), (10, 10), (12, 12), (16, 16)],
                         "declared_gaps": [(4, 9, "flash_full"), (13, 13, "rejected_malformed"),
                                           (17, 20, "unit_reset")],
                         "undeclared_gaps": [(11, 11), (14, 15)]}, c["TU-1"]
    assert c["TU-2"] == {"received": [(5, 6)], "declared_gaps": [(8, 8, "expired")],
                         "undeclared_gaps": [(1, 4), (7, 7)]}, c["TU-2"]
    assert c["TU-3"]["undeclared_gaps"] == [(1, 29)], c["TU-3"]
    # A consumer that joined late says where its record of a source starts.
    c = ec.completeness(readings, start={"TU-2": 5, "TU-3": 30})
    assert c["TU-2"]["undeclared_gaps"] == [(7, 7)] and c["TU-3"]["undeclared_gaps"] == [], c
    assert ec.completeness(readings, start=12)["TU-1"]["undeclared_gaps"] == [(14, 15)]
    # A gap that starts before `start` still covers what follows it.
    assert ec.completeness([gap(1, 50, "expired"), r(51)], start=10)["TU-1"]["undeclared_gaps"] == []
    # Wide ranges cost nothing: seqs up to 2^53 - 1.
    top = (1 << 53) - 1
    c = ec.completeness([r(1), gap(2, top - 2, "unit_reset"), r(top)])["TU-1"]
    assert c["undeclared_gaps"] == [(top - 1, top - 1)] and c["received"] == [(1, 1), (top, top)], c
    assert ec.completeness([]) == {}
    h.log("completeness(): received, declared and undeclared ranges as specified")


def check_doc_example(work, codec, builder, name, data_file, priority="event"):
    """A completeness example of docs/consuming.md: the blocks after <!-- check: NAME_input -->,
    <!-- check: NAME --> and <!-- check: NAME_output -->. Its input lines are what the consumer
    prints for the envelope they describe (of class `priority`), and its program, run with those
    lines in `data_file`, prints exactly the output shown."""
    with open(DOC) as f:  # blocks after <!-- check: NAME --> markers, as test_python_consumer.py reads them
        blocks = dict(re.findall(r"<!-- check: (\w+) -->\s*```[a-z]*\n(.*?)```", f.read(), re.S))
    assert {f"{name}_input", name, f"{name}_output"} <= set(blocks), list(blocks)
    lines = blocks[f"{name}_input"].strip().splitlines()
    got, problems = decode_lines(codec, builder.envelope(lines, priority=priority))
    assert got == lines and not problems, f"doc {name}: the input lines are not what the consumer prints: {got}"
    with open(work.file(data_file), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(work.file(f"doc_{name}.py"), "w") as f:
        f.write(blocks[name])
    env = dict(os.environ, PYTHONPATH=CONSUMER_DIR)
    p = subprocess.run([sys.executable, f"doc_{name}.py"], cwd=work.path, capture_output=True, text=True,
                       timeout=30, env=env)
    assert p.returncode == 0, p.stderr
    want = blocks[f"{name}_output"].strip()
    assert p.stdout.strip() == want, f"doc {name} example prints\n{p.stdout}\nthe doc shows\n{want}"
    h.log(f"doc's {name} example prints what the doc shows")


def check_class_completeness():
    def r(seq, cs, cls="alarm", source="TU-1"):
        return {"source": source, "seq": seq, "class": cls, "class_seq": cs, "kind": "door", "state": "open"}
    # Consecutive counts, duplicates, out of order: nothing missing.
    c = ec.class_completeness([r(9, 3), r(5, 1), r(7, 2), r(7, 2)])
    assert c == {("TU-1", "alarm"): {"received": 3, "first": (5, 1), "missing": [], "restarts": []}}, c
    # Holes, located by the seq after them; classes and sources apart; unnumbered readings ignored.
    c = ec.class_completeness([r(5, 1), r(20, 4), r(30, 5), r(40, 9), r(6, 1, "telemetry"), r(8, 3, "telemetry"),
                               r(3, 7, source="TU-2"), {"source": "TU-1", "seq": 50, "kind": "door", "state": "open"}])
    assert c[("TU-1", "alarm")]["missing"] == [(2, 3, 20), (6, 8, 40)], c
    assert c[("TU-1", "telemetry")]["missing"] == [(2, 2, 8)], c
    assert c[("TU-2", "alarm")] == {"received": 1, "first": (3, 7), "missing": [], "restarts": []}, c
    assert len(c) == 3, c
    # start: holes before the first one received.
    assert ec.class_completeness([r(20, 4)], start={("TU-1", "alarm"): 1})[("TU-1", "alarm")]["missing"] == [(1, 3, 20)]
    assert ec.class_completeness([r(20, 4)], start={("TU-1", "alarm"): 4})[("TU-1", "alarm")]["missing"] == []
    # A restart (lower count on a later seq): listed, holes from 1 there.
    c = ec.class_completeness([r(5, 8), r(6, 9), r(70, 1), r(71, 2), r(90, 3), r(95, 2), r(99, 4)])[("TU-1", "alarm")]
    assert c["restarts"] == [70, 95] and c["missing"] == [(1, 1, 95), (3, 3, 99)], c
    c = ec.class_completeness([r(5, 8), r(70, 3)])[("TU-1", "alarm")]
    assert c["restarts"] == [70] and c["missing"] == [(1, 2, 70)], c
    assert ec.class_completeness([]) == {}
    h.log("class_completeness(): holes, starts and restarts as specified")


def test_python_gaps(work):
    codec = ec.load_codec(cache_dir=work.file("codegen"))
    builder = envelopes.Builder()
    check_decoding(codec, builder)
    check_completeness()
    check_doc_example(work, codec, builder, "completeness", "tu-0042.jsonl")
    check_class_completeness()
    check_doc_example(work, codec, builder, "class_completeness", "alarms.jsonl", priority="alarm")


if __name__ == "__main__":
    h.main(test_python_gaps)
