// envelope_v2.ts: the decoder of envelope v2 (docs/schema.md, "Envelope v2", identifier EPT2),
// after verifyEnvelope() checked its outer table and its v1 Reading tables: the `columns` byte
// stream (varints, zigzag deltas, groups, tags, presence, 13 columns) read with the checks, in
// the order and with the messages of eport::codec::decode_envelope_v2 (agent/codec/src/
// envelope_v2.cpp) and of the Python kit (consumers/python/eport/decode.py, _V2Decoder); then the
// topic's site and gateway, as eport::codec::decode_payload_on. 64-bit arithmetic is done in
// bigint (mod 2^64, as the C++ codec); values over 2^53-1 are handled as the v1 decoder does.

import type { Decoded, EnvelopeHeader, Reader, Reading } from "./decode.js";
import {
  DECODED_READING_BYTES, DecodeError, InexactNumberError, Limits, MAX_CONTAINER_ID_BYTES, MAX_SAFE_U64,
  MAX_SOURCE_ID_BYTES,
} from "./limits.js";
import { PAYLOAD_MEMBERS } from "./layout.js";

export const SCHEMA_VERSION_V2 = 2;
const MAX_HEADER_ID_BYTES = 64; // site_id, gateway_id (kMaxHeaderIdBytes)
const MAX_VARINT_BYTES = 10;
const PRIORITIES = ["bulk", "telemetry", "event", "alarm"]; // decode.ts' PRIORITY_NAMES
const MAX_SAFE = BigInt(MAX_SAFE_U64);
const KIND_POSITION = 0;
const KIND_SENSOR = 1;
const KIND_V1 = 2;
const TAG_GATEWAY_RECEIVE = 0x04;
const TAG_RESERVED = 0xf8;
const PRESENCE_RESERVED = [0xf8, 0xc0]; // kind 0, kind 1
const TIME_SOURCE_GATEWAY_RECEIVE = 1;

/** name, min, max, reading kind, presence bit (0: always there). The order of the columns. */
const COLUMNS: readonly (readonly [string, bigint, bigint, number, number])[] = [
  ["lat_e7", -(2n ** 31n), 2n ** 31n - 1n, KIND_POSITION, 0],
  ["lon_e7", -(2n ** 31n), 2n ** 31n - 1n, KIND_POSITION, 0],
  ["speed_cm_s", 0n, 65535n, KIND_POSITION, 0x01],
  ["heading_cdeg", 0n, 65535n, KIND_POSITION, 0x02],
  ["fix", 0n, 255n, KIND_POSITION, 0],
  ["satellites", 0n, 255n, KIND_POSITION, 0],
  ["hdop_centi", 0n, 65535n, KIND_POSITION, 0x04],
  ["temperature_centi_c", -32768n, 32767n, KIND_SENSOR, 0x01],
  ["humidity_centi_pct", 0n, 65535n, KIND_SENSOR, 0x02],
  ["shock_milli_g", 0n, 65535n, KIND_SENSOR, 0x04],
  ["battery_mv", 0n, 65535n, KIND_SENSOR, 0x08],
  ["battery_pct", 0n, 255n, KIND_SENSOR, 0x10],
  ["reefer_setpoint_centi_c", -32768n, 32767n, KIND_SENSOR, 0x20],
];

/** What this decoder needs of the v1 decoder (Codec), to read the v1 Reading tables. */
export interface V1Decoder {
  readingCost(r: Reader, pos: number): number;
  reading(r: Reader, pos: number): Reading;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
const EMPTY = new Uint8Array(0);

function unzigzag(u: bigint): bigint {
  return (u >> 1n) ^ -(u & 1n);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Reads the columns, never past their end; every error names the field and the reading. */
class ColumnReader {
  private p = 0;
  constructor(private readonly b: Uint8Array) {}

  left(): number {
    return this.b.byteLength - this.p;
  }

  varint(what: string, reading: number | bigint): bigint {
    let low = 0; // the first 7 bytes (49 bits) in a number: exact, and faster than bigint
    for (let i = 0; i < 7; i++) {
      if (this.p === this.b.byteLength) throw new DecodeError(`${what}: columns end inside reading ${reading}`);
      const byte = this.b[this.p++];
      low += (byte & 0x7f) * 2 ** (7 * i);
      if (!(byte & 0x80)) return BigInt(low);
    }
    let v = BigInt(low);
    for (let i = 7; i < MAX_VARINT_BYTES; i++) {
      if (this.p === this.b.byteLength) throw new DecodeError(`${what}: columns end inside reading ${reading}`);
      const byte = this.b[this.p++];
      if (i === MAX_VARINT_BYTES - 1 && byte > 1) {
        throw new DecodeError(`${what}: varint of reading ${reading} overflows 64 bits`);
      }
      v |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if (!(byte & 0x80)) return v;
    }
    throw new DecodeError(`${what}: varint of reading ${reading} overflows 64 bits`); // not reached
  }

  byte(what: string, reading: number): number {
    if (this.p === this.b.byteLength) throw new DecodeError(`${what}: columns end inside reading ${reading}`);
    return this.b[this.p++];
  }

  /** A length-prefixed string of at most `max` bytes. */
  string(what: string, max: number): Uint8Array {
    const n = this.varint(what, 0);
    if (n > BigInt(max)) throw new DecodeError(`${what} of ${n} bytes > ${max}`);
    if (n > BigInt(this.left())) throw new DecodeError(`${what}: columns end inside it`);
    const s = this.b.subarray(this.p, this.p + Number(n));
    this.p += Number(n);
    return s;
  }
}

/** The budgets of one envelope: readings and bytes the limits still allow. */
interface Budget {
  readings: number;
  bytes: number;
}

/** Decodes a verified EPT2 buffer. Throws DecodeError with the C++ codec's messages. */
export function decodeEnvelopeV2(r: Reader, limits: Limits, topic: string | undefined,
  v1: V1Decoder): Omit<Decoded, "compressed"> {
  const E = "EnvelopeV2";
  const view = new DataView(r.buf.buffer, r.buf.byteOffset, r.buf.byteLength);
  const root = view.getUint32(0, true);
  const siteBytes = r.bytes(root, E, "site_id") ?? EMPTY;
  const gatewayBytes = r.bytes(root, E, "gateway_id") ?? EMPTY;
  if (siteBytes.byteLength > MAX_HEADER_ID_BYTES || gatewayBytes.byteLength > MAX_HEADER_ID_BYTES) {
    throw new DecodeError(`site_id or gateway_id longer than ${MAX_HEADER_ID_BYTES} bytes`);
  }
  const budget: Budget = { readings: limits.maxReadings, bytes: limits.maxDecodedBytes };
  const headerBytes = siteBytes.byteLength + gatewayBytes.byteLength;
  if (headerBytes > budget.bytes) throw new DecodeError("envelope decodes to more than the limit (header)");
  budget.bytes -= headerBytes;
  const tables: number[] = [];
  const vec = r.table(root, E, "v1_readings");
  if (vec) {
    const count = view.getUint32(vec, true);
    for (let j = 0; j < count; j++) tables.push(r.deref(vec + 4 + 4 * j));
  }
  const columns = r.bytes(root, E, "columns");
  if (columns === undefined) throw new DecodeError("v2 envelope without columns");
  const c = new ColumnReader(columns);
  const classSeqBytes = r.bytes(root, E, "class_seqs"); // schema 1.5; absent: nothing numbered
  const cs = classSeqBytes === undefined ? undefined : new ColumnReader(classSeqBytes);
  const envelopeSeq = c.varint("envelope_seq", 0);
  const sent = c.varint("sent_utc_ms", 0);
  const priority = c.byte("priority", 0);
  if (priority >= PRIORITIES.length) throw new DecodeError(`priority ${priority} unknown`);
  const groups = c.varint("group count", 0);
  if (groups > BigInt(limits.maxReadings)) {
    throw new DecodeError(`envelope holds ${groups} groups > limit ${limits.maxReadings}`);
  }
  const readings: Reading[] = [];
  const problems: string[] = [];
  const next = { v1: 0 };
  for (let g = 0; g < Number(groups); g++) {
    try {
      readGroup(c, cs, PRIORITIES[priority], g, sent, r, tables, next, budget, v1, readings, problems);
    } catch (e) {
      if (e instanceof DecodeError) throw new DecodeError(`group ${g}: ${e.message}`);
      throw e;
    }
  }
  if (c.left() !== 0) throw new DecodeError(`${c.left()} bytes after the last group`);
  if (cs !== undefined && cs.left() !== 0) throw new DecodeError(`${cs.left()} bytes of class_seqs after the last group`);
  if (next.v1 !== tables.length) {
    throw new DecodeError(`${tables.length} v1 tables but ${next.v1} readings of kind v1`);
  }
  let site = siteBytes.byteLength ? utf8.decode(siteBytes) : "";
  let gateway = gatewayBytes.byteLength ? utf8.decode(gatewayBytes) : "";
  if (topic !== undefined) {
    // eport::codec::decode_payload_on: the ids the payload leaves out are its topic's.
    const l = topic.split("/");
    if (l.length < 5 || l[0] !== "eport" || l[1] !== "v1" || !l[2] || !l[3]) {
      throw new DecodeError(`v2 envelope on a topic that names no site and gateway: ${topic}`);
    }
    if (site && site !== l[2]) throw new DecodeError(`v2 envelope's site_id ${site} is not its topic's ${l[2]}`);
    if (gateway && gateway !== l[3]) throw new DecodeError(`v2 envelope's gateway_id ${gateway} is not its topic's ${l[3]}`);
    site ||= l[2];
    gateway ||= l[3];
  }
  // A JS number holds 2^53-1 at most: refused, never rounded, as in a v1 header.
  for (const [what, v] of [["envelope_seq", envelopeSeq], ["sent_utc_ms", sent]] as const) {
    if (v > MAX_SAFE) throw new InexactNumberError(`${what} ${v} > ${MAX_SAFE_U64}, not exact in a JavaScript number`);
  }
  const header: EnvelopeHeader = {
    site, gateway, envelope_seq: Number(envelopeSeq), sent_utc_ms: Number(sent), priority: PRIORITIES[priority],
    schema_version: SCHEMA_VERSION_V2,
  };
  return { header, readings, problems };
}

/** Decodes group `g` into `readings` (and `problems`), taking its v1 tables from `tables` at
 * next.v1; decrements the budgets. Throws DecodeError, the message without "group G: ". */
function readGroup(c: ColumnReader, cs: ColumnReader | undefined, priority: string, g: number, sent: bigint,
  r: Reader, tables: number[], next: { v1: number }, budget: Budget, v1: V1Decoder, readings: Reading[],
  problems: string[]): void {
  const sourceBytes = c.string("source_id", MAX_SOURCE_ID_BYTES);
  if (sourceBytes.byteLength === 0) throw new DecodeError("empty source_id");
  const containerBytes = c.string("container_id", MAX_CONTAINER_ID_BYTES);
  const count = c.varint("count", 0);
  if (count === 0n) throw new DecodeError("count 0");
  if (count > BigInt(budget.readings)) {
    throw new DecodeError(`count ${count} exceeds the readings limit (${budget.readings} left)`);
  }
  if (count > BigInt(c.left())) throw new DecodeError(`count ${count} but only ${c.left()} bytes of columns left`);
  // Each reading will cost at least DECODED_READING_BYTES: refused before anything is allocated.
  if (count > BigInt(Math.floor(budget.bytes / DECODED_READING_BYTES))) {
    throw new DecodeError(`count ${count}: envelope decodes to more than the limit`);
  }
  const n = Number(count);
  budget.readings -= n;
  const M64 = 2n ** 64n - 1n;
  const seq: bigint[] = new Array(n);
  const time: bigint[] = new Array(n);
  const tags = new Uint8Array(n);
  const bits = new Uint8Array(n);
  seq[0] = c.varint("seq", 0);
  time[0] = (sent + unzigzag(c.varint("time_utc_ms", 0))) & M64;
  let v1s = 0;
  for (let i = 0; i < n; i++) {
    const t = c.byte("tags", i);
    if (t & TAG_RESERVED) throw new DecodeError(`reading ${i}: tag has reserved bits set`);
    const kind = t & 3;
    if (kind === 3) throw new DecodeError(`reading ${i}: tag of unknown kind 3`);
    if (kind === KIND_V1) v1s++;
    tags[i] = t;
  }
  for (let i = 1; i < n; i++) seq[i] = (seq[i - 1] + 1n + unzigzag(c.varint("seq", i))) & M64;
  for (let i = 1; i < n; i++) time[i] = (time[i - 1] + unzigzag(c.varint("time_utc_ms", i))) & M64;
  for (let i = 0; i < n; i++) {
    if (seq[i] === 0n || seq[i] > MAX_SAFE) throw new DecodeError(`reading ${i}: seq ${seq[i]} out of range 1..2^53-1`);
  }
  // The group's class seqs (schema 1.5), from their own stream; absent: all 0.
  const classSeq: bigint[] = new Array<bigint>(n).fill(0n);
  if (cs !== undefined) {
    for (let i = 0; i < n; i++) {
      const v = cs.varint("class_seqs", i);
      classSeq[i] = i === 0 ? v : (classSeq[i - 1] + 1n + unzigzag(v)) & M64;
      if (classSeq[i] > MAX_SAFE) throw new DecodeError(`reading ${i}: class_seq ${classSeq[i]} out of range 0..2^53-1`);
    }
  }
  for (let i = 0; i < n; i++) {
    const kind = tags[i] & 3;
    if (kind === KIND_V1) continue;
    const b = c.byte("presence", i);
    if (b & PRESENCE_RESERVED[kind]) throw new DecodeError(`reading ${i}: presence has reserved bits set`);
    bits[i] = b;
  }
  const values: (number | undefined)[][] = Array.from({ length: n }, () => new Array<number | undefined>(COLUMNS.length));
  COLUMNS.forEach(([name, min, max, ckind, bit], col) => {
    let prev = 0n;
    for (let i = 0; i < n; i++) {
      if ((tags[i] & 3) !== ckind || (bit !== 0 && !(bits[i] & bit))) continue;
      const v = BigInt.asIntN(64, prev + unzigzag(c.varint(name, i)));
      if (v < min || v > max) throw new DecodeError(`reading ${i}: ${name} ${v} out of range ${min}..${max}`);
      values[i][col] = Number(v);
      prev = v;
    }
  });
  if (v1s > tables.length - next.v1) {
    throw new DecodeError(`${v1s} readings of kind v1 but only ${tables.length - next.v1} v1 tables left`);
  }

  const source = utf8.decode(sourceBytes);
  const container = containerBytes.byteLength ? utf8.decode(containerBytes) : "";
  for (let i = 0; i < n; i++) {
    let cost = DECODED_READING_BYTES + sourceBytes.byteLength + containerBytes.byteLength;
    const kind = tags[i] & 3;
    const gatewayTime = (tags[i] & TAG_GATEWAY_RECEIVE) !== 0;
    let out: Reading | undefined;
    let inexact: string | undefined; // a value a JS number cannot hold: the reading is skipped
    if (kind === KIND_V1) {
      const pos = tables[next.v1++];
      const R = "Reading";
      const type = r.u8(pos, R, "payload_type") ?? 0;
      if (type !== 0 && PAYLOAD_MEMBERS[type] === undefined) { // a newer schema's payload kind
        problems.push(`reading ${i}: unknown or missing payload type ${type}: skipped`);
        continue;
      }
      const fail = (why: string): never => {
        throw new DecodeError(`reading ${i}: v1 table: ${why}`);
      };
      // eport::codec::detail::reading_problem's order: source, its bounds, then the payload.
      const srcLen = r.length(pos, R, "source_id") ?? 0;
      if (srcLen === 0) fail("reading without source_id");
      if (type === 0) {
        const conLen = r.length(pos, R, "container_id") ?? 0;
        if (srcLen > MAX_SOURCE_ID_BYTES) fail(`source_id of ${srcLen} bytes > ${MAX_SOURCE_ID_BYTES}`);
        if (conLen > MAX_CONTAINER_ID_BYTES) fail(`container_id of ${conLen} bytes > ${MAX_CONTAINER_ID_BYTES}`);
        fail("unknown or missing payload type 0");
      }
      try {
        cost = v1.readingCost(r, pos);
        out = v1.reading(r, pos);
      } catch (e) {
        if (e instanceof InexactNumberError) inexact = e.message;
        else if (e instanceof DecodeError) fail(e.message);
        else throw e;
      }
      if (r.u64big(pos, R, "class_seq") !== 0n) {
        throw new DecodeError(`reading ${i}: v1 table has a class_seq (v2 carries it in class_seqs)`);
      }
      // Compared as on the wire (bytes, 64-bit values), before anything is rounded.
      if (!sameBytes(r.bytes(pos, R, "source_id") ?? EMPTY, sourceBytes) ||
        !sameBytes(r.bytes(pos, R, "container_id") ?? EMPTY, containerBytes) ||
        r.u64big(pos, R, "seq") !== seq[i] || r.u64big(pos, R, "time_utc_ms") !== time[i] ||
        (r.u8(pos, R, "time_source") === TIME_SOURCE_GATEWAY_RECEIVE) !== gatewayTime) {
        fail("v1 table's source, container, seq, time or time source differ from the group's");
      }
    } else {
      const o: Record<string, string | number> = { source };
      if (container) o.container = container;
      o.seq = Number(seq[i]);
      if (classSeq[i] > 0n) {
        o.class = priority;
        o.class_seq = Number(classSeq[i]);
      }
      o.time_utc_ms = Number(time[i]);
      if (gatewayTime) o.time_source = "gateway_receive";
      o.kind = kind === KIND_POSITION ? "position" : "sensor";
      COLUMNS.forEach(([name, , , ckind], col) => {
        const v = values[i][col];
        if (ckind === kind && v !== undefined) o[name] = v;
      });
      if (time[i] > MAX_SAFE) inexact = `time_utc_ms ${time[i]} > ${MAX_SAFE_U64}, not exact in a JavaScript number`;
      out = o as Reading;
    }
    if (kind === KIND_V1 && out !== undefined && classSeq[i] > 0n) {
      // eport-tail's key order: the class and its count right after seq.
      const { source: s, container: ct, seq: q, ...rest } = out;
      out = { source: s, ...(ct !== undefined ? { container: ct } : {}), seq: q, class: priority,
        class_seq: Number(classSeq[i]), ...rest } as Reading;
    }
    if (cost > budget.bytes) throw new DecodeError(`reading ${i}: envelope decodes to more than the limit`);
    budget.bytes -= cost;
    if (inexact !== undefined) problems.push(`group ${g}: reading ${i}: ${inexact}`);
    else readings.push(out as Reading);
  }
}
