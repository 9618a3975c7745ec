// The TypeScript decoder against the shared test vectors (node --test, after tsc): the seed
// corpus of fuzz_envelope (agent/codec/fuzz/corpus/envelope) refused with the messages of
// gen_corpus.py's EXPECTED table (the C++ codec's and the Python consumer's), the worked
// example of docs/consuming.md decoded to exactly the lines shown there, zstd and decoded-size
// bounds, 64-bit values over 2^53-1 refused, and truncations, mutants and random bytes refused
// with DecodeError and nothing else. Envelope v2 (EPT2): every seed of fuzz_envelope_v2
// (agent/codec/fuzz/corpus/envelope_v2) decodes, on a topic of cnsha/gw-01, to exactly the JSON
// lines of the C++ codec (tests/data/envelope_v2/*.jsonl), docs/schema.md's worked example
// decodes, an unknown dictionary id, ids differing from the topic's and malformed columns are
// refused with the C++ and Python messages (tests/integration/test_python_v2.py's list), frames
// of the v2 dictionary are bounded as v1 frames are, and truncations and mutants of the v2 seeds
// decode or throw DecodeError, nothing else.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";
import { fileURLToPath } from "node:url";

import {
  Codec, DecodeError, decompressBounded, envelopeLine, jsonLine, readingLine, completeness, isReady, V2_DICTIONARY_ID,
  V2_DICTIONARY_URL,
} from "../dist/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = process.env.EPORT_SOURCE_DIR ?? path.join(HERE, "..", "..", "..");
const CORPUS = path.join(SRC, "agent", "codec", "fuzz", "corpus", "envelope");
const CORPUS_V2 = path.join(SRC, "agent", "codec", "fuzz", "corpus", "envelope_v2");
const EXPECTED_V2 = path.join(SRC, "tests", "data", "envelope_v2");
const TOPIC = "eport/v1/cnsha/gw-01/data/telemetry";
const read = (name) => new Uint8Array(fs.readFileSync(path.join(CORPUS, name)));

/** gen_corpus.py's EXPECTED: file -> message (null: decodes). */
function expected() {
  const text = fs.readFileSync(path.join(SRC, "agent", "codec", "fuzz", "gen_corpus.py"), "utf8");
  const block = text.match(/^EXPECTED = \{\n([\s\S]*?)^\}/m);
  assert.ok(block, "EXPECTED table not found in gen_corpus.py");
  const out = {};
  for (const m of block[1].matchAll(/^\s*"([^"]+)":\s*(None|"((?:[^"\\]|\\.)*)"),/gm)) out[m[1]] = m[2] === "None" ? null : m[3];
  assert.ok(Object.keys(out).length >= 10, `EXPECTED parsed to ${JSON.stringify(out)}`);
  return out;
}

function refused(codec, data, topic) {
  try {
    codec.decodePayload(data, topic);
    return null;
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    return e.message;
  }
}

const codec = new Codec();

test("hostile corpus files are refused with the C++ codec's and Python consumer's messages", () => {
  for (const [name, want] of Object.entries(expected()).sort()) {
    assert.equal(refused(codec, read(name)), want, name);
    if (want === null) {
      const d = codec.decodePayload(read(name));
      assert.equal(d.readings.length, 6, name);
      assert.deepEqual(d.problems, ["reading 5: unknown or missing payload type 9: skipped"], name);
    }
  }
});

test("one_of_each decodes to eport-tail's lines; optional fields absent stay absent", () => {
  const d = codec.decodePayload(read("one_of_each.ept.zst"));
  assert.equal(d.compressed, true);
  assert.equal(envelopeLine(d, 318), '{"envelope":{"site":"cnsha","gateway":"gw-test-01","envelope_seq":42,' +
    '"sent_utc_ms":1795000002000,"priority":"event","schema_version":1},"readings":7,"bytes":318}');
  const lines = d.readings.map(readingLine);
  assert.deepEqual(lines, [
    '{"source":"tcu-0001","container":"CSQU3054383","seq":1,"time_utc_ms":1795000000000,"kind":"position","lat_e7":306187233,"lon_e7":1220670000,"speed_cm_s":1234,"fix":4,"satellites":14}',
    '{"source":"tcu-0001","container":"CSQU3054383","seq":2,"time_utc_ms":1795000000000,"kind":"seal","seal_id":"SL00012345","state":"tampered"}',
    '{"source":"tcu-0001","container":"CSQU3054383","seq":3,"time_utc_ms":1795000000000,"kind":"door","state":"open"}',
    '{"source":"tcu-0001","container":"CSQU3054383","seq":4,"time_utc_ms":1795000000000,"time_source":"gateway_receive","kind":"sensor","temperature_centi_c":-1850,"battery_mv":3700}',
    '{"source":"tcu-0001","container":"CSQU3054383","seq":9,"time_utc_ms":1795000000000,"kind":"gap","first_seq":1,"reason":"flash_full"}',
    '{"source":"gw-test-01","seq":5,"time_utc_ms":1795000000000,"kind":"position","lat_e7":306187233,"lon_e7":1220670000,"speed_cm_s":1234,"fix":4,"satellites":14}',
  ]);
  assert.ok(!("heading_cdeg" in d.readings[0]) && !("hdop_centi" in d.readings[0]));
  assert.ok(!("humidity_centi_pct" in d.readings[3]));
  const c = completeness(d.readings);
  assert.deepEqual(c["tcu-0001"], { received: [[1, 4]], declared_gaps: [[1, 9, "flash_full"]], undeclared_gaps: [] });
  assert.deepEqual(c["gw-test-01"].undeclared_gaps, [[1, 4]]);
});

function docBlocks() {
  const text = fs.readFileSync(path.join(SRC, "docs", "consuming.md"), "utf8");
  const blocks = {};
  for (const m of text.matchAll(/<!-- check: (\w+) -->\s*```[a-z]*\n([\s\S]*?)```/g)) blocks[m[1]] = m[2];
  return blocks;
}

function hexdump(block) {
  const hex = block.split("\n").filter(Boolean).map((l) => l.split("|")[0].trim().split(/\s+/).slice(1).join("")).join("");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

test("the worked example of docs/consuming.md decodes to the lines shown there", () => {
  const b = docBlocks();
  const payload = hexdump(b.payload);
  const envelope = hexdump(b.envelope);
  const output = b.output.trim().split("\n");
  assert.deepEqual(decompressBounded(payload, 1 << 20), envelope);
  for (const [data, bytes] of [[payload, payload.length], [envelope, envelope.length]]) {
    const d = codec.decodePayload(data);
    const want = [output[0].replace(`"bytes":${payload.length}}`, `"bytes":${bytes}}`), ...output.slice(1)];
    assert.deepEqual([envelopeLine(d, bytes), ...d.readings.map(readingLine)], want);
  }
});

/** The positions of a little-endian u64 value in a buffer. */
function find64(buf, value) {
  const out = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i + 8 <= buf.length; i += 4) if (v.getBigUint64(i, true) === value) out.push(i);
  return out;
}

test("64-bit fields over 2^53-1 are refused, never rounded; 2^53-1 decodes", () => {
  const base = read("one_of_each.ept");
  const put = (at, value) => {
    const b = base.slice();
    new DataView(b.buffer).setBigUint64(at, value, true);
    return b;
  };
  const [sent] = find64(base, 1795000002000n);
  assert.equal(refused(codec, put(sent, 2n ** 53n)), "sent_utc_ms 9007199254740992 > 9007199254740991, not exact in a JavaScript number");
  assert.equal(codec.decodePayload(put(sent, 2n ** 53n - 1n)).header.sent_utc_ms, 9007199254740991);
  const [seq1] = find64(base, 1n).filter((at) => codec.decodePayload(put(at, 7n)).readings[0]?.seq === 7);
  const d = codec.decodePayload(put(seq1, 2n ** 64n - 1n));
  assert.equal(d.readings.length, 5);
  assert.equal(d.problems[0], "reading 0: seq 18446744073709551615 > 9007199254740991, not exact in a JavaScript number");
});

test("zstd: frames declaring too much, no size, or more than declared are refused before allocating", () => {
  const claim64g = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 16, 0, 0, 0, ...new Array(16).fill(0)]);
  assert.equal(refused(codec, claim64g), "zstd payload: decompresses to 68719476736 bytes > 4194304");
  const noSize = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 1, 0, 0]);
  assert.equal(refused(codec, noSize), "zstd payload: frame without content size");
  const z = read("one_of_each.ept.zst"); // FHD 0x60: 2-byte content size (+256) at 5..6, no window byte
  assert.equal(z[4], 0x60);
  const small = z.slice();
  new DataView(small.buffer).setUint16(5, 808 - 256 - 8, true); // declares 800 of its 808 bytes
  assert.equal(refused(codec, small), "zstd payload: more than the 800 bytes its frame declares");
  const large = z.slice();
  new DataView(large.buffer).setUint16(5, 808 - 256 + 8, true);
  assert.equal(refused(codec, large), "zstd payload: size mismatch");
  assert.equal(refused(new Codec({ maxBytes: 807 }), z), "zstd payload: decompresses to 808 bytes > 807");
  assert.equal(refused(new Codec({ maxPayloadBytes: 100 }), z), "payload too large: 318 bytes > 100");
  assert.match(refused(codec, z.subarray(0, 40)), /^zstd payload: /);
});

test("reading count and decoded size limits, with the C++ messages", () => {
  const e = read("one_of_each.ept");
  assert.equal(refused(new Codec({ maxReadings: 6 }), e), "envelope holds 7 readings > limit 6");
  // site 5 + gateway 10 bytes, then 384 + source + container per decoded reading.
  // Reading 1 also copies its 10-byte seal_id; reading 5 (unknown kind) costs nothing.
  const limit = 5 + 10 + 3 * (384 + 8 + 11) + 10;
  assert.equal(refused(new Codec({ maxDecodedBytes: limit }), e), `envelope decodes to more than ${limit} bytes (limit reached at reading 3)`);
  const all = limit + 2 * 403 + 384 + 10;
  assert.equal(refused(new Codec({ maxDecodedBytes: all - 1 }), e), `envelope decodes to more than ${all - 1} bytes (limit reached at reading 6)`);
  assert.equal(refused(new Codec({ maxDecodedBytes: all }), e), null);
  assert.equal(refused(codec, new TextEncoder().encode("this is not a flatbuffer")), "not an EPT1 envelope (missing file identifier)");
});

test("JSON escapes as eport::json: quotes, backslashes, control bytes and DEL, ill-formed UTF-8", () => {
  assert.equal(jsonLine({ s: 'a"b\\c\u0001\u001f\u007f\u00e9\ufffd' }), '{"s":"a\\"b\\\\c\\u0001\\u001f\\u007fé\\ufffd"}');
  assert.equal(jsonLine({ a: 1, b: undefined, c: true }), '{"a":1,"c":true}');
});

function mutants(seed, rng, n) {
  const out = [];
  for (let k = 0; k < n; k++) {
    const b = seed.slice();
    const op = rng() % 5;
    const at = rng() % b.length;
    if (op === 0) b[at] ^= 1 << (rng() % 8);
    else if (op === 1) b[at] = [0, 1, 0x7f, 0x80, 0xff][rng() % 5];
    else if (op === 2 && b.length >= 4) new DataView(b.buffer).setUint32(Math.min(at & ~3, b.length - 4), [0, 1, 4, 0xffff, 0x7fffffff, 0xffffffff, b.length][rng() % 7] >>> 0, true);
    else if (op === 3 && b.length >= 2) new DataView(b.buffer).setUint16(Math.min(at & ~1, b.length - 2), [0, 2, 4, 0xffff][rng() % 4], true);
    else out.push(b.subarray(0, at));
    out.push(b);
  }
  return out;
}

test("truncations, mutants and random bytes decode or throw DecodeError, nothing else", () => {
  let x = 11;
  const rng = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8;
  const seeds = fs.readdirSync(CORPUS).sort().map(read);
  seeds.push(decompressBounded(read("one_of_each.ept.zst"), 1 << 20), decompressBounded(read("shared_string_bomb.ept.zst"), 1 << 20));
  const doc = docBlocks();
  seeds.push(hexdump(doc.payload), hexdump(doc.envelope));
  const outcomes = { decoded: 0, refused: 0 };
  const t0 = Date.now();
  const check = (data, what) => {
    try {
      codec.decodePayload(data);
      outcomes.decoded++;
    } catch (e) {
      assert.ok(e instanceof DecodeError, `${what}: ${e}`);
      assert.ok(!e.message.includes("could not be decoded"), `${what}: the verifier missed it: ${e.message} ${Buffer.from(data).toString("hex")}`);
      outcomes.refused++;
    }
  };
  for (const seed of seeds) for (let n = 0; n < seed.length; n++) check(seed.subarray(0, n), `truncated to ${n}`);
  for (const seed of seeds) for (const m of mutants(seed, rng, 400)) check(m, "mutant");
  for (let k = 0; k < 2000; k++) {
    const b = new Uint8Array(rng() % 300);
    for (let i = 0; i < b.length; i++) b[i] = rng() & 0xff;
    if (k % 2 && b.length >= 8) b.set([0x45, 0x50, 0x54, 0x31], 4); // EPT1
    if (k % 7 === 0 && b.length > 8) b.set([0x28, 0xb5, 0x2f, 0xfd], 0);
    check(b, "random");
  }
  assert.ok(outcomes.decoded > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
  assert.ok(Date.now() - t0 < 60000, `${Date.now() - t0} ms`);
  console.log(`# fuzz outcomes ${JSON.stringify(outcomes)} in ${Date.now() - t0} ms`);
});

test("docs/consuming.md's TypeScript example prints §10's output", async () => {
  const { spawnSync } = await import("node:child_process");
  const b = docBlocks();
  assert.ok(b.ts_example, "the ts_example block is missing in docs/consuming.md");
  const script = path.join(HERE, "..", "doc-example.mjs"); // in the package: imports "eport-consumer" by name
  fs.writeFileSync(script, b.ts_example);
  const run = (bytes, ...args) => {
    const p = spawnSync(process.execPath, [script, ...args], { input: Buffer.from(bytes).toString("hex"), encoding: "utf8" });
    assert.equal(p.status, 0, p.stderr);
    return p.stdout.trim().split("\n");
  };
  try {
    const payload = hexdump(b.payload);
    const envelope = hexdump(b.envelope);
    const output = b.output.trim().split("\n");
    assert.deepEqual(run(payload), output);
    assert.deepEqual(run(envelope), [output[0].replace(`"bytes":${payload.length}}`, `"bytes":${envelope.length}}`), output[1]]);
    assert.match(run(payload.subarray(0, 100))[0], /^\{"error":"zstd payload: /);
    // Envelope v2, with the topic as its argument: the C++ codec's lines, the envelope line first.
    const want = fs.readFileSync(path.join(SRC, "tests", "data", "envelope_v2", "every_kind.ept2.zst.jsonl"), "utf8").split("\n").filter(Boolean);
    const v2 = new Uint8Array(fs.readFileSync(path.join(SRC, "agent", "codec", "fuzz", "corpus", "envelope_v2", "every_kind.ept2.zst")));
    const got = run(v2, "eport/v1/cnsha/gw-01/data/telemetry");
    assert.equal(got[0], `{"envelope":${want[0]},"readings":${want.length - 1},"bytes":${v2.length}}`);
    assert.deepEqual(got.slice(1), want.slice(1));
  } finally {
    fs.rmSync(script, { force: true });
  }
});

test("zstd: a frame with a 1-byte content size (single segment, up to 255) that produces more is refused", () => {
  // One raw block of 8 bytes in a frame declaring 4: FHD 0x20 (single segment, 1-byte size).
  const frame = Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 4, (8 << 3) | 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(refused(codec, frame), "zstd payload: more than the 4 bytes its frame declares");
  const full = Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 255, (256 << 3) & 0xff | 1, 256 >> 5, 0, ...new Array(256).fill(7)]);
  assert.equal(refused(codec, full), "zstd payload: more than the 255 bytes its frame declares");
  const exact = Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 8, (8 << 3) | 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(decompressBounded(exact, 100), Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
});

// ---- envelope v2 ---------------------------------------------------------------------------
const readV2 = (name) => new Uint8Array(fs.readFileSync(path.join(CORPUS_V2, name)));
const PKG = path.join(HERE, "..");
const codec2 = await Codec.create(); // loads the zstd WebAssembly module and the v2 dictionary

/** docs/schema.md's worked example of envelope v2: the block after <!-- v2 example bytes -->. */
function v2Example() {
  const text = fs.readFileSync(path.join(SRC, "docs", "schema.md"), "utf8");
  const m = text.match(/<!-- v2 example bytes -->\s*```\n([\s\S]*?)```/);
  assert.ok(m, "the v2 example bytes are missing in docs/schema.md");
  const hex = m[1].split("\n").map((l) => l.split("#")[0].trim()).join(" ").split(/\s+/).filter(Boolean).join("");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** An EPT2 envelope holding only `columns` (built as codec_v2_test.cpp and test_python_v2.py build
 * them): root offset, "EPT2", 2 bytes of padding, vtable (6 bytes, table of 8, columns at +4), the
 * table, the vector, padding to 4. */
function envelopeV2(columns) {
  const n = columns.length;
  const b = new Uint8Array(28 + n + ((4 - (n % 4)) % 4));
  const v = new DataView(b.buffer);
  v.setUint32(0, 16, true);
  b.set([0x45, 0x50, 0x54, 0x32], 4);
  v.setUint16(10, 6, true);
  v.setUint16(12, 8, true);
  v.setUint16(14, 4, true);
  v.setInt32(16, 6, true);
  v.setUint32(20, 4, true);
  v.setUint32(24, n, true);
  b.set(columns, 28);
  return b;
}

test("v2: the package loads its own copy of the v2 dictionary, next to dist/", () => {
  assert.equal(isReady(), true);
  const file = fileURLToPath(V2_DICTIONARY_URL);
  assert.equal(path.dirname(file), fs.realpathSync(PKG), `${file} is not in the package ${PKG}`);
  assert.deepEqual(new Uint8Array(fs.readFileSync(file)), new Uint8Array(fs.readFileSync(path.join(SRC, "schema", "eport_v2_dict_1.zdict"))));
  assert.equal(V2_DICTIONARY_ID, 32769);
});

test("v2: every seed envelope decodes, on a cnsha/gw-01 topic, to exactly the C++ codec's JSON lines", () => {
  const seeds = fs.readdirSync(CORPUS_V2).sort();
  assert.deepEqual(seeds, ["every_kind.ept2", "every_kind.ept2.zst", "mix_50.ept2.zst", "numbered_mix.ept2.zst", "one_position.ept2"]);
  for (const name of seeds) {
    const d = codec2.decodePayload(readV2(name), TOPIC);
    assert.deepEqual(d.problems, [], name);
    assert.equal(d.compressed, name.endsWith(".zst"), name);
    assert.equal(d.header.schema_version, 2, name);
    const got = [jsonLine({ ...d.header }), ...d.readings.map(readingLine)];
    const want = fs.readFileSync(path.join(EXPECTED_V2, `${name}.jsonl`), "utf8").split("\n").filter(Boolean);
    assert.ok(want.length >= 2, name);
    assert.deepEqual(got, want, name);
  }
  // The compressed seeds name the v2 dictionary and hold EPT2 envelopes.
  for (const name of ["every_kind.ept2.zst", "mix_50.ept2.zst"]) {
    const zst = readV2(name);
    assert.equal(zst[4] & 0x23, 0x22, name); // single segment (no window byte), a 2-byte dictionary id ...
    assert.equal(zst[5] | (zst[6] << 8), 32769, name); // ... of the v2 dictionary
    assert.equal(Buffer.from(decompressBounded(zst, 1 << 20).subarray(4, 8)).toString(), "EPT2", name);
  }
});

test("v2: ids come from the topic; ids that differ from it, an unknown dictionary, malformed columns are refused", () => {
  const plain = readV2("every_kind.ept2"); // carries site cnsha and gateway gw-01
  assert.equal(refused(codec2, plain, "eport/v1/cnsha/gw-02/data/telemetry"), "v2 envelope's gateway_id gw-01 is not its topic's gw-02");
  assert.equal(refused(codec2, plain, "eport/v1/cnshb/gw-01/data/telemetry"), "v2 envelope's site_id cnsha is not its topic's cnshb");
  assert.equal(refused(codec2, plain, "telemetry"), "v2 envelope on a topic that names no site and gateway: telemetry");
  assert.equal(refused(codec2, plain), null);
  const one = readV2("one_position.ept2"); // no ids: the topic's, or empty without a topic
  assert.deepEqual([codec2.decodePayload(one).header.site, codec2.decodePayload(one).header.gateway], ["", ""]);
  assert.deepEqual([codec2.decodePayload(one, TOPIC).header.site, codec2.decodePayload(one, TOPIC).header.gateway], ["cnsha", "gw-01"]);
  const other = codec2.decodePayload(one, "eport/v1/sh/gw-09/data/telemetry").header;
  assert.deepEqual([other.site, other.gateway], ["sh", "gw-09"]);

  const zst = readV2("every_kind.ept2.zst").slice();
  const at = zst[4] & 0x20 ? 5 : 6; // the dictionary id, after the window byte if any
  zst[at] += 1;
  assert.equal(refused(codec2, zst), "zstd payload: compressed with dictionary 32770, which this decoder does not have (it knows 32769)");

  // test_python_v2.py's list (codec_v2_test.cpp's columns): the same messages.
  const head = [0x07, 0x64, 0x01, 0x01, 0x05, ...Buffer.from("tcu-1"), 0x00, 0x01, 0x05, 0x00];
  const cases = [
    [[], "envelope_seq: columns end inside reading 0"],
    [[0x07, 0x64, 0x04, 0x00], "priority 4 unknown"],
    [[0x07, 0x64, 0x01, 0x01, 0x00, 0x00], "group 0: empty source_id"],
    [[0x07, 0x64, 0x01, 0x01, 41, ...new Array(41).fill(0x78)], "group 0: source_id of 41 bytes > 40"],
    [[0x07, 0x64, 0x01, 0x01, 0x01, 0x61, 0x00, 0x7f, 0x01, 0x00], "group 0: count 127 but only 2 bytes of columns left"],
    [[...head, 0x03, 0x00, 0x02, 0x01, 0x02, 0x10], "group 0: reading 0: tag of unknown kind 3"],
    [[...head, 0x00, 0x08, 0x02, 0x01, 0x02, 0x10], "group 0: reading 0: presence has reserved bits set"],
    [[...head, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x10, 0x01, 0x02, 0x10], "group 0: reading 0: lat_e7 2147483648 out of range -2147483648..2147483647"],
    [[...head, 0x00, 0x00, 0x02, 0x01, 0x02], "group 0: satellites: columns end inside reading 0"],
    [[...head, 0x00, 0x00, 0x02, 0x01, 0x02, 0x10, 0x00], "1 bytes after the last group"],
    [[...head, 0x02], "group 0: 1 readings of kind v1 but only 0 v1 tables left"],
    // and a few more of the spec's table (docs/schema.md, "Limits and errors")
    [[0x07, 0x64, 0x01, 0x01, 0x01, 0x61, 0x00, 0x00], "group 0: count 0"],
    [[0x07, 0x64, 0x01, 0x01, 0x01, 0x61, 12, ...new Array(12).fill(0x41)], "group 0: container_id of 12 bytes > 11"],
    [[0x07, 0x64, 0x01, 0x01, 0x05, 0x61], "group 0: source_id: columns end inside it"],
    [[0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], "sent_utc_ms: varint of reading 0 overflows 64 bits"],
    [[0x07, 0x64, 0x01, 0x01, 0x05, ...Buffer.from("tcu-1"), 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], "group 0: reading 0: seq 0 out of range 1..2^53-1"],
    [[...head, 0x08], "group 0: reading 0: tag has reserved bits set"],
  ];
  for (const [columns, want] of cases) {
    assert.equal(refused(codec2, envelopeV2(columns), TOPIC), want, Buffer.from(columns).toString("hex"));
  }
  assert.equal(refused(new Codec({ maxReadings: 3 }), envelopeV2([0x07, 0x64, 0x01, 0x04]), TOPIC), "envelope holds 4 groups > limit 3");
  const d = codec2.decodePayload(envelopeV2([...head, 0x00, 0x00, 0x02, 0x01, 0x02, 0x10]), TOPIC);
  assert.deepEqual(d.readings, [{ source: "tcu-1", seq: 5, time_utc_ms: 100, kind: "position", lat_e7: 1, lon_e7: -1, fix: 1, satellites: 8 }]);
  assert.deepEqual(d.header, { site: "cnsha", gateway: "gw-01", envelope_seq: 7, sent_utc_ms: 100, priority: "telemetry", schema_version: 2 });
});

test("v2: docs/schema.md's worked example decodes to the readings it describes", () => {
  const b = v2Example();
  assert.equal(b.length, 116);
  const d = codec2.decodePayload(b, TOPIC);
  assert.equal(jsonLine({ ...d.header }), '{"site":"cnsha","gateway":"gw-01","envelope_seq":7,"sent_utc_ms":1795000020050,"priority":"telemetry","schema_version":2}');
  assert.deepEqual(d.readings.map(readingLine), [
    '{"source":"tcu-0001","container":"CSQU3054383","seq":42,"time_utc_ms":1795000000000,"kind":"position","lat_e7":306187233,"lon_e7":1220670000,"speed_cm_s":1234,"heading_cdeg":9000,"fix":1,"satellites":9,"hdop_centi":87}',
    '{"source":"tcu-0001","container":"CSQU3054383","seq":43,"time_utc_ms":1795000010000,"kind":"sensor","temperature_centi_c":-1850,"humidity_centi_pct":8412,"battery_mv":3700,"battery_pct":42,"reefer_setpoint_centi_c":-1800}',
    '{"source":"tcu-0001","container":"CSQU3054383","seq":45,"time_utc_ms":1795000020000,"kind":"position","lat_e7":306187300,"lon_e7":1220669900,"speed_cm_s":1240,"heading_cdeg":9010,"fix":1,"satellites":9,"hdop_centi":90}',
  ]);
  assert.deepEqual([codec2.decodePayload(b).header.site, codec2.decodePayload(b).header.gateway], ["", ""]);
});

test("v2: zstd frames of the v2 dictionary are bounded as v1 frames are, refused before allocating", async () => {
  // FHD 0xe2: 8-byte content size, single segment, 2-byte dictionary id 32769; claims 64 GiB.
  const claim = Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0xe2, 0x01, 0x80, 0, 0, 0, 0, 16, 0, 0, 0, ...new Array(16).fill(0)]);
  assert.equal(refused(codec2, claim), "zstd payload: decompresses to 68719476736 bytes > 4194304");
  const noSize = Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, 0x02, 0x50, 0x01, 0x80, 0, 0, 0]); // window byte, dictionary, no size
  assert.equal(refused(codec2, noSize), "zstd payload: frame without content size");
  const zst = readV2("every_kind.ept2.zst");
  const size = decompressBounded(zst, 1 << 20).length;
  assert.equal(refused(new Codec({ maxBytes: size - 1 }), zst), `zstd payload: decompresses to ${size} bytes > ${size - 1}`);
  assert.equal(refused(new Codec({ maxBytes: size }), zst, TOPIC), null);
  // A header declaring less or more than the frame holds: zstd refuses it, nothing is written past the size.
  assert.equal(zst[4], 0x62); // 2-byte content size (+256) at 7..8
  for (const delta of [-8, 8]) {
    const b = zst.slice();
    new DataView(b.buffer).setUint16(7, size - 256 + delta, true);
    assert.match(refused(codec2, b), /^zstd payload: /, `declared ${size + delta}`);
  }
  assert.match(refused(codec2, zst.subarray(0, 40)), /^zstd payload: /);
  // In a process that never loaded the dictionary (no Codec.create, no ready()): the header checks
  // refuse the frame before the decompressor is reached; a valid frame needs ready().
  const { spawnSync } = await import("node:child_process");
  const script = `
    import { Codec, DecodeError } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
    const codec = new Codec();
    const out = [];
    for (const hex of process.argv.slice(1)) {
      try { codec.decodePayload(Uint8Array.from(Buffer.from(hex, "hex"))); out.push("decoded"); }
      catch (e) { out.push((e instanceof DecodeError ? "DecodeError: " : "Error: ") + e.message); }
    }
    console.log(JSON.stringify(out));`;
  const p = spawnSync(process.execPath, ["--input-type=module", "-e", script, Buffer.from(claim).toString("hex"),
    Buffer.from(zst).toString("hex"), Buffer.from(readV2("every_kind.ept2")).toString("hex")], { encoding: "utf8" });
  assert.equal(p.status, 0, p.stderr);
  const [big, valid, plain] = JSON.parse(p.stdout);
  assert.equal(big, "DecodeError: zstd payload: decompresses to 68719476736 bytes > 4194304");
  assert.match(valid, /^Error: a zstd frame of the v2 dictionary, but the dictionary is not loaded: await ready\(\)/);
  assert.equal(plain, "decoded");
});

test("v2: truncations and mutants of each seed decode or throw DecodeError, nothing else", () => {
  let x = 16;
  const rng = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8;
  const seeds = fs.readdirSync(CORPUS_V2).sort().map(readV2);
  seeds.push(decompressBounded(readV2("mix_50.ept2.zst"), 1 << 20), v2Example());
  const outcomes = { decoded: 0, refused: 0 };
  const t0 = Date.now();
  const check = (data, what) => {
    try {
      codec2.decodePayload(data, TOPIC);
      outcomes.decoded++;
    } catch (e) {
      assert.ok(e instanceof DecodeError, `${what}: ${e && e.stack}`);
      assert.ok(!e.message.includes("could not be decoded"), `${what}: the verifier missed it: ${e.message} ${Buffer.from(data).toString("hex")}`);
      outcomes.refused++;
    }
  };
  for (const seed of seeds) for (let n = 0; n < seed.length; n++) check(seed.subarray(0, n), `truncated to ${n}`);
  for (const seed of seeds) for (const m of mutants(seed, rng, 600)) check(m, "mutant");
  // Mutants of the columns only (the outer table intact): every check of the column reader.
  const plain = readV2("every_kind.ept2");
  for (let k = 0; k < 3000; k++) {
    const b = plain.slice();
    for (let j = 1 + (rng() % 4); j > 0; j--) b[rng() % b.length] = rng() & 0xff;
    check(b, "mutant of every_kind.ept2");
  }
  assert.ok(outcomes.decoded > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
  assert.ok(Date.now() - t0 < 60000, `${Date.now() - t0} ms`);
  console.log(`# v2 fuzz outcomes ${JSON.stringify(outcomes)} in ${Date.now() - t0} ms`);
});

test("class counts (schema 1.5): classCompleteness finds holes, starts and restarts as the Python kit does", async () => {
  const { classCompleteness } = await import(path.join(PKG, "dist", "index.js"));
  const r = (seq, cs, cls = "alarm", source = "TU-1") => ({ source, seq, class: cls, class_seq: cs, kind: "door", state: "open" });
  assert.deepEqual(classCompleteness([r(9, 3), r(5, 1), r(7, 2), r(7, 2)]),
    { "TU-1\talarm": { received: 3, first: [5, 1], missing: [], restarts: [] } });
  const c = classCompleteness([r(5, 1), r(20, 4), r(30, 5), r(40, 9), r(6, 1, "telemetry"), r(8, 3, "telemetry"),
    r(3, 7, "alarm", "TU-2"), { source: "TU-1", seq: 50, kind: "door", state: "open" }]);
  assert.deepEqual(c["TU-1\talarm"].missing, [[2, 3, 20], [6, 8, 40]]);
  assert.deepEqual(c["TU-1\ttelemetry"].missing, [[2, 2, 8]]);
  assert.equal(Object.keys(c).length, 3);
  assert.deepEqual(classCompleteness([r(20, 4)], { "TU-1\talarm": 1 })["TU-1\talarm"].missing, [[1, 3, 20]]);
  const re = classCompleteness([r(5, 8), r(6, 9), r(70, 1), r(71, 2), r(90, 3), r(95, 2), r(99, 4)])["TU-1\talarm"];
  assert.deepEqual([re.restarts, re.missing], [[70, 95], [[1, 1, 95], [3, 3, 99]]]);
  // The numbered seed: the hole the C++ test put in it (class_seq 48 + 3 at the 8th reading of its source).
  const d = codec2.decodePayload(readV2("numbered_mix.ept2.zst"), TOPIC);
  const holes = Object.values(classCompleteness(d.readings)).flatMap((x) => x.missing);
  assert.equal(holes.length, 1);
  assert.equal(holes[0][1] - holes[0][0], 2);
});
