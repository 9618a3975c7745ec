"""The Python consumer kit (consumers/python/eport/decode.py) reads envelope v2, without a broker:
every v2 seed envelope of fuzz_envelope_v2 (agent/codec/fuzz/corpus/envelope_v2, written by the C++
encoder; tests/unit/codec_v2_test.cpp checks them) decodes, on a telemetry topic of cnsha/gw-01, to
exactly the JSON lines the C++ codec prints (tests/data/envelope_v2/*.jsonl); an unknown dictionary
id, ids that differ from the topic's, and malformed columns are refused with the C++ messages;
mutants of the seeds either decode or raise DecodeError, nothing else."""
import os
import random
import sys

import harness as h

try:
    import flatbuffers  # noqa: F401
    import zstandard
except ImportError as e:
    print(f"SKIP: needs the module {e.name!r} (Debian 12: python3-flatbuffers, python3-zstandard)", flush=True)
    sys.exit(77)

SRC = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(SRC, "agent", "codec", "fuzz", "corpus", "envelope_v2")
EXPECTED = os.path.join(SRC, "tests", "data", "envelope_v2")
sys.path.insert(0, os.path.join(SRC, "consumers", "python"))
from eport import decode  # noqa: E402

TOPIC = "eport/v1/cnsha/gw-01/data/telemetry"


def refused(codec, data, topic=TOPIC):
    try:
        codec.decode_payload(data, topic)
    except decode.DecodeError as e:
        return str(e)
    return None


def test_python_v2(work):
    codec = decode.load_codec(cache_dir=work.file("codegen"))
    seeds = sorted(os.listdir(CORPUS))
    assert len(seeds) == 5, seeds
    for name in seeds:
        with open(os.path.join(CORPUS, name), "rb") as f:
            data = f.read()
        header, readings, problems = codec.decode_payload(data, TOPIC)
        assert not problems, problems
        got = [decode.json_line(header)] + [decode.json_line(r) for r in readings]
        with open(os.path.join(EXPECTED, name + ".jsonl"), "rb") as f:
            want = f.read().splitlines()
        assert got == want, f"{name}: the Python kit prints\n{got}\nthe C++ codec\n{want}"
        h.log(f"{name}: {len(readings)} readings, the same lines as the C++ codec")

    with open(os.path.join(CORPUS, "every_kind.ept2.zst"), "rb") as f:
        zst = bytearray(f.read())
    # The frame names dictionary 32769; as if it named 32770: refused, not guessed.
    at = 5 if zst[4] & 0x20 else 6
    zst[at] += 1
    assert refused(codec, bytes(zst)) == ("zstd payload: compressed with dictionary 32770, which this decoder "
                                          "does not have (it knows 32769)"), refused(codec, bytes(zst))
    with open(os.path.join(CORPUS, "every_kind.ept2"), "rb") as f:
        plain = f.read()  # carries site cnsha and gateway gw-01
    assert refused(codec, plain, "eport/v1/cnsha/gw-02/data/telemetry") == \
        "v2 envelope's gateway_id gw-01 is not its topic's gw-02"
    assert refused(codec, plain, None) is None

    # Malformed columns, built as codec_v2_test.cpp builds them: the same messages.
    def envelope(columns):
        b = flatbuffers.Builder(256)
        vec = b.CreateByteVector(bytes(columns))
        b.StartObject(4)
        b.PrependUOffsetTRelativeSlot(0, vec, 0)
        b.Finish(b.EndObject(), file_identifier=b"EPT2")
        return bytes(b.Output())
    head = [0x07, 0x64, 0x01, 0x01, 0x05, *b"tcu-1", 0x00, 0x01, 0x05, 0x00]
    cases = [
        ([], "envelope_seq: columns end inside reading 0"),
        ([0x07, 0x64, 0x04, 0x00], "priority 4 unknown"),
        ([0x07, 0x64, 0x01, 0x01, 0x00, 0x00], "group 0: empty source_id"),
        ([0x07, 0x64, 0x01, 0x01, 41, *b"x" * 41], "group 0: source_id of 41 bytes > 40"),
        ([0x07, 0x64, 0x01, 0x01, 0x01, 0x61, 0x00, 0x7F, 0x01, 0x00], "group 0: count 127 but only 2 bytes of columns left"),
        (head + [0x03, 0x00, 0x02, 0x01, 0x02, 0x10], "group 0: reading 0: tag of unknown kind 3"),
        (head + [0x00, 0x08, 0x02, 0x01, 0x02, 0x10], "group 0: reading 0: presence has reserved bits set"),
        (head + [0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x10, 0x01, 0x02, 0x10],
         "group 0: reading 0: lat_e7 2147483648 out of range -2147483648..2147483647"),
        (head + [0x00, 0x00, 0x02, 0x01, 0x02], "group 0: satellites: columns end inside reading 0"),
        (head + [0x00, 0x00, 0x02, 0x01, 0x02, 0x10, 0x00], "1 bytes after the last group"),
        (head + [0x02], "group 0: 1 readings of kind v1 but only 0 v1 tables left"),
    ]
    for columns, want in cases:
        got = refused(codec, envelope(columns))
        assert got == want, f"{bytes(columns).hex()}: got {got!r}, want {want!r}"
    header, readings, _ = codec.decode_payload(envelope(head + [0x00, 0x00, 0x02, 0x01, 0x02, 0x10]), TOPIC)
    assert readings == [{"source": "tcu-1", "seq": 5, "time_utc_ms": 100, "kind": "position", "lat_e7": 1,
                         "lon_e7": -1, "fix": 1, "satellites": 8}], readings

    # Mutants: decode or DecodeError, nothing else.
    rng = random.Random(16)
    n = 0
    for _ in range(3000):
        data = bytearray(plain)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            codec.decode_payload(bytes(data), TOPIC)
        except decode.DecodeError:
            n += 1
    h.log(f"3000 mutants: {n} refused with DecodeError, the rest decoded; nothing else raised")


if __name__ == "__main__":
    h.main(test_python_v2)
