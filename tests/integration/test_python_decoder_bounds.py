"""The Python example consumer against hostile envelopes, without a broker (issue 11): the same
bytes as the C++ codec refuses (the hostile seeds of fuzz_envelope, agent/codec/fuzz/corpus/envelope;
tests/unit/codec_test.cpp checks the C++ side) are refused with the same messages: a payload_type
without its table, ids over 32/11/32 bytes, a decoded size over Limits.max_decoded_bytes (checked
before anything is copied: an envelope whose readings share one long string is refused quickly,
in little memory), a reading count over the limit. Then a structured corpus run: mutants of the
seed corpus each either decode or raise DecodeError, nothing else, within a time bound."""
import os
import random
import sys
import time
import tracemalloc

import harness as h

try:
    import flatbuffers  # noqa: F401
    import zstandard
except ImportError as e:
    print(f"SKIP: needs the module {e.name!r} (Debian 12: python3-flatbuffers, python3-zstandard)", flush=True)
    sys.exit(77)

SRC = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(SRC, "agent", "codec", "fuzz", "corpus", "envelope")
sys.path.insert(0, os.path.join(SRC, "examples", "python"))
sys.path.insert(0, os.path.join(SRC, "agent", "codec", "fuzz"))
import eport_consumer as ec  # noqa: E402
import gen_corpus as gen  # noqa: E402

FUZZ_SECONDS = float(os.environ.get("EPORT_PY_FUZZ_SECONDS", "8"))
FUZZ_MAX = int(os.environ.get("EPORT_PY_FUZZ_MAX", "20000"))


def refused(codec, data):
    try:
        codec.decode_payload(data)
    except ec.DecodeError as e:
        return str(e)
    return None


def check_same_messages_as_cpp(codec):
    for name, expected in sorted(gen.EXPECTED.items()):
        with open(os.path.join(CORPUS, name), "rb") as f:
            data = f.read()
        got = refused(codec, data)
        assert got == expected, f"{name}: got {got!r}, want {expected!r}"
        if expected is None:
            header, readings, problems = codec.decode_payload(data)
            assert len(readings) == 6 and len(problems) == 1, (readings, problems)


def check_decoded_size_bound(codec):
    # 10,000 readings sharing one 4,000-byte source_id: 40 MB if copied per reading.
    bomb = gen.envelope(lambda b: [gen.reading(b, None, gen.DOOR, None, 1, src_off=src)
                                   for src in [b.CreateString("S" * 4000)] for _ in range(10000)])
    data = zstandard.ZstdCompressor(write_content_size=True).compress(bomb)
    tracemalloc.start()
    t0 = time.monotonic()
    msg = refused(codec, data)
    elapsed = time.monotonic() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert msg == "reading 0: source_id of 4000 bytes > 40", msg
    # A hang guard, not a speed test (the memory bound below is the check; a
    # 2 s limit failed on a loaded 2-core machine at 2.5 s): copying per
    # reading would take minutes.
    assert elapsed < 30.0, f"{elapsed:.2f} s to refuse it"
    assert peak < 4 * len(bomb) + (1 << 20), f"peak {peak} bytes for a {len(bomb)}-byte envelope"

    # Ids within bounds, more readings than max_decoded_bytes allows: refused at the reading
    # that crosses the bound, with the C++ message and index.
    many = gen.envelope(lambda b: [gen.reading(b, "S" * 32, gen.DOOR, "CSQU3054383", i + 1) for i in range(2000)])
    limit = 100000
    small = ec.Codec(codec_dir, ec.Limits(max_decoded_bytes=limit))
    at = (limit - len("cnsha") - len("gw-test-01")) // (ec.DECODED_READING_BYTES + 32 + 11)
    msg = refused(small, many)
    assert msg == f"envelope decodes to more than {limit} bytes (limit reached at reading {at})", msg
    assert refused(codec, many) is None  # the defaults decode it
    few = ec.Codec(codec_dir, ec.Limits(max_readings=1999))
    assert refused(few, many) == "envelope holds 2000 readings > limit 1999"


MUTATORS = []


def mutator(fn):
    MUTATORS.append(fn)
    return fn


@mutator
def flip(rng, b):
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)


@mutator
def byte(rng, b):
    b[rng.randrange(len(b))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])


@mutator
def word(rng, b):  # an offset, length or vtable entry set to an interesting value
    i = rng.randrange(0, max(1, len(b) - 4)) & ~3
    v = rng.choice([0, 1, 4, 8, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, len(b), len(b) - 4, rng.randrange(1 << 32)])
    b[i:i + 4] = (v & 0xFFFFFFFF).to_bytes(4, "little")


@mutator
def half(rng, b):  # a vtable slot or u16 field
    i = rng.randrange(0, max(1, len(b) - 2)) & ~1
    b[i:i + 2] = rng.choice([0, 2, 4, 0xFFFF, rng.randrange(1 << 16)]).to_bytes(2, "little")


@mutator
def truncate(rng, b):
    del b[rng.randrange(len(b)):]


@mutator
def splice(rng, b):  # a chunk copied elsewhere (a table or string somewhere it does not belong)
    n = rng.randint(1, 32)
    i, j = rng.randrange(len(b)), rng.randrange(len(b))
    b[j:j + n] = b[i:i + n]


@mutator
def insert(rng, b):
    i = rng.randrange(len(b))
    b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))


def structured_corpus_run(codec):
    seeds = []
    for name in sorted(os.listdir(CORPUS)):
        with open(os.path.join(CORPUS, name), "rb") as f:
            data = f.read()
        if data[:4] == ec.ZSTD_MAGIC:
            seeds.append((name, data, True))
            data = zstandard.ZstdDecompressor().decompress(data)
        seeds.append((name, data, False))
    rng = random.Random(int(os.environ.get("EPORT_PY_FUZZ_SEED", "11")))
    outcomes = {"decoded": 0, "refused": 0}
    deadline = time.monotonic() + FUZZ_SECONDS
    n = 0
    zc = zstandard.ZstdCompressor(write_content_size=True)
    while n < FUZZ_MAX and time.monotonic() < deadline:
        name, seed, compressed = seeds[n % len(seeds)]
        b = bytearray(seed)
        for _ in range(rng.randint(1, 3)):
            if b:
                rng.choice(MUTATORS)(rng, b)
        data = bytes(b)
        if not compressed and rng.random() < 0.1:
            data = zc.compress(data)  # the same mutant inside a valid zstd frame
        n += 1
        try:
            codec.decode_payload(data)
            outcomes["decoded"] += 1
        except ec.DecodeError as e:
            # The catch-all inside decode_payload ("could not be decoded") means the checks
            # missed something: an error, not a clean refusal.
            assert "could not be decoded" not in str(e), f"mutant {n} of {name}: {e}: {data.hex()}"
            outcomes["refused"] += 1
        # Anything else propagates and fails the test.
    assert n >= 500, f"only {n} mutants in {FUZZ_SECONDS} s"
    assert outcomes["decoded"] > 0 and outcomes["refused"] > 0, outcomes
    h.log(f"structured corpus run: {n} mutants of {len(seeds)} seeds in {FUZZ_SECONDS:.0f} s at most: {outcomes}")


codec_dir = None


def test_python_decoder_bounds(work):
    global codec_dir
    codec_dir = ec.generate_code(ec.DEFAULT_SCHEMA, cache_dir=work.file("codegen"))
    codec = ec.Codec(codec_dir)
    check_same_messages_as_cpp(codec)
    check_decoded_size_bound(codec)
    structured_corpus_run(codec)
    h.log("hostile envelopes refused with the C++ messages; decoded size bounded; mutants decode or are refused")


if __name__ == "__main__":
    h.main(test_python_decoder_bounds)
