"""The TypeScript decoder package (consumers/typescript) alone, no broker: built as a user
would (npm ci, tsc), then its unit tests with node's test runner: the shared vectors of
agent/codec/fuzz/corpus/envelope refused with the C++ codec's messages (gen_corpus.py's
EXPECTED), docs/consuming.md's worked example, zstd and size bounds, 64-bit values over
2^53-1, truncations, mutants and random bytes refused with DecodeError only; envelope v2: the
seeds of agent/codec/fuzz/corpus/envelope_v2 decoded to tests/data/envelope_v2/*.jsonl (the C++
codec's lines), docs/schema.md's v2 example, the refusals of test_python_v2.py with the same
messages, the v2 dictionary's frames bounded, mutants refused with DecodeError only."""
import os
import subprocess

import harness as h
import ts_package

PKG = ts_package.build()  # or exit 77, saying why (no node, npm or tsc; npm cannot reach the registry)


def test_ts_decoder(work):
    env = dict(os.environ, EPORT_SOURCE_DIR=os.path.abspath(h.SOURCE_DIR))
    p = subprocess.run(["node", "--test", "test/decoder.test.mjs"], cwd=PKG, capture_output=True, text=True, timeout=240, env=env)
    print(p.stdout[-4000:], p.stderr[-2000:], flush=True)
    assert p.returncode == 0, "node --test failed"
    assert "# fail 0" in p.stdout, p.stdout[-2000:]


if __name__ == "__main__":
    h.main(test_ts_decoder)
