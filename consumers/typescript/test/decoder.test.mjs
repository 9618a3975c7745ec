// The TypeScript decoder against the shared test vectors (node --test, after tsc): the seed
// corpus of fuzz_envelope (agent/codec/fuzz/corpus/envelope) refused with the messages of
// gen_corpus.py's EXPECTED table (the C++ codec's and the Python consumer's), the worked
// example of docs/consuming.md decoded to exactly the lines shown there, zstd and decoded-size
// bounds, 64-bit values over 2^53-1 refused, and truncations, mutants and random bytes refused
// with DecodeError and nothing else.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";
import { fileURLToPath } from "node:url";

import { Codec, DecodeError, decompressBounded, envelopeLine, jsonLine, readingLine, completeness } from "../dist/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = process.env.EPORT_SOURCE_DIR ?? path.join(HERE, "..", "..", "..");
const CORPUS = path.join(SRC, "agent", "codec", "fuzz", "corpus", "envelope");
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

function refused(codec, data) {
  try {
    codec.decodePayload(data);
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
    else if (op === 2 && b.length >= 4) new DataView(b.buffer).setUint32(at & ~3 & 0xfffffff, [0, 1, 4, 0xffff, 0x7fffffff, 0xffffffff, b.length][rng() % 7] >>> 0, true);
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
  const run = (bytes) => {
    const p = spawnSync(process.execPath, [script], { input: Buffer.from(bytes).toString("hex"), encoding: "utf8" });
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
