// decode.ts: payload bytes -> envelope header and readings, after unwrap (bounded zstd) and
// verifyEnvelope(). Values and names are those eport-tail prints (agent/codec/src/codec.cpp):
// optional scalars absent stay absent (never 0), 64-bit fields are numbers and a value above
// 2^53-1 is refused rather than rounded, unknown enum values read as "unknown". An EPT2 buffer
// (envelope v2) is handed to envelope_v2.ts, which reads its v1 Reading tables with this decoder.

import {
  DECODED_READING_BYTES, DecodeError, InexactNumberError, Limits, MAX_COMMAND_ID_BYTES, MAX_CONTAINER_ID_BYTES, MAX_EVIDENCE_BYTES,
  MAX_SAFE_U64, MAX_SEAL_ID_BYTES, MAX_SOURCE_ID_BYTES, MAX_SUBJECT_ID_BYTES, MAX_ZONE_ID_BYTES, withDefaults,
} from "./limits.js";
import { LAYOUT, PAYLOAD_MEMBERS, slotOf } from "./layout.js";
import { FILE_IDENTIFIER_V2, verifyEnvelope } from "./verify.js";
import { decompressBounded, isZstd, ready } from "./zstd.js";
import { decodeEnvelopeV2 } from "./envelope_v2.js";

export const SCHEMA_MAJOR = 1;

export const PRIORITY_NAMES = ["bulk", "telemetry", "event", "alarm"] as const;
const SEAL_STATE_NAMES: Record<number, string> = { 1: "sealed", 2: "opened", 3: "tampered" };
const DOOR_STATE_NAMES: Record<number, string> = { 1: "closed", 2: "open" };
const GAP_REASON_NAMES: Record<number, string> = { 1: "flash_full", 2: "unit_reset", 3: "expired", 4: "rejected_malformed" };
const EVENT_CODE_NAMES: Record<number, string> = {
  1: "pairing", 2: "unpairing", 3: "geofence_entry", 4: "geofence_exit", 5: "motion_start", 6: "motion_stop",
  7: "excursion_start", 8: "excursion_end", 9: "seal_mismatch", 10: "seal_opened_outside_zone", 11: "seal_tampered",
};
const EVENT_DCSA_CODES: Record<number, string> = {
  1: "PAIRING", 2: "UNPAIRING", 3: "GEOFENCE_ENTRY", 4: "GEOFENCE_EXIT", 5: "MOTION_START", 6: "MOTION_STOP",
  7: "MEASURED", 8: "MEASURED",
}; // none for the seal events
const SEAL_CLASS_NAMES: Record<number, string> = { 1: "indicative", 2: "security", 3: "high_security" };
const EVIDENCE_CHECK_NAMES: Record<number, string> = {
  0: "unchecked", 1: "verified", 2: "bad_signature", 3: "broken_chain", 4: "malformed", 5: "wrong_key",
  6: "other_source", 7: "replayed", 8: "seq_mismatch", 9: "readings_mismatch",
};
const TIME_SOURCE_GATEWAY_RECEIVE = 1; // any other value reads as Source, as in the C++ codec

export interface EnvelopeHeader {
  site: string;
  gateway: string;
  envelope_seq: number;
  sent_utc_ms: number;
  priority: string; // "bulk" | "telemetry" | "event" | "alarm" | "unknown"
  schema_version: number;
}

/** One reading, keys in eport-tail's order; optional keys absent when the wire has no value. */
export interface Reading {
  source: string;
  container?: string;
  seq: number;
  /** Schema 1.5: the envelope's class, and the gateway's count of this source's readings in it. */
  class?: string;
  class_seq?: number;
  time_utc_ms: number;
  time_source?: "gateway_receive";
  kind: "position" | "seal" | "door" | "sensor" | "gap" | "event" | "evidence";
  [key: string]: string | number | boolean | undefined;
}

export interface Decoded {
  header: EnvelopeHeader;
  readings: Reading[];
  /** Readings skipped, each "reading I: why" (a payload kind of a newer schema, a 64-bit value over 2^53-1). */
  problems: string[];
  /** The payload was a zstd frame. */
  compressed: boolean;
}

/** The largest class_seq (schema 1.5), as seq: 2^53-1. */
const MAX_CLASS_SEQ = 2n ** 53n - 1n;

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Reads fields of verified tables. */
export class Reader {
  private readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  /** Byte position of a field, or 0 if absent. */
  field(pos: number, table: string, name: string): number {
    const vt = pos - this.view.getInt32(pos, true);
    const slot = slotOf(table, name);
    if (slot + 2 > this.view.getUint16(vt, true)) return 0;
    const fo = this.view.getUint16(vt + slot, true);
    return fo ? pos + fo : 0;
  }
  deref(at: number): number {
    return at + this.view.getUint32(at, true);
  }
  u8(pos: number, t: string, n: string): number | undefined {
    const at = this.field(pos, t, n);
    return at ? this.buf[at] : undefined;
  }
  u16(pos: number, t: string, n: string): number | undefined {
    const at = this.field(pos, t, n);
    return at ? this.view.getUint16(at, true) : undefined;
  }
  i16(pos: number, t: string, n: string): number | undefined {
    const at = this.field(pos, t, n);
    return at ? this.view.getInt16(at, true) : undefined;
  }
  i32(pos: number, t: string, n: string): number | undefined {
    const at = this.field(pos, t, n);
    return at ? this.view.getInt32(at, true) : undefined;
  }
  /** A u64 as a bigint (0n if absent). */
  u64big(pos: number, t: string, n: string): bigint {
    const at = this.field(pos, t, n);
    return at ? this.view.getBigUint64(at, true) : 0n;
  }
  /** A u64 as a number; throws DecodeError above 2^53-1. */
  u64(pos: number, t: string, n: string, what: string): number | undefined {
    const at = this.field(pos, t, n);
    if (!at) return undefined;
    const lo = this.view.getUint32(at, true);
    const hi = this.view.getUint32(at + 4, true);
    if (hi > 0x1fffff) {
      const v = (BigInt(hi) << 32n) | BigInt(lo);
      throw new InexactNumberError(`${what} ${v} > ${MAX_SAFE_U64}, not exact in a JavaScript number`);
    }
    return hi * 2 ** 32 + lo;
  }
  /** The byte length of a string or vector field, undefined if absent. */
  length(pos: number, t: string, n: string): number | undefined {
    const at = this.field(pos, t, n);
    return at ? this.view.getUint32(this.deref(at), true) : undefined;
  }
  bytes(pos: number, t: string, n: string): Uint8Array | undefined {
    const at = this.field(pos, t, n);
    if (!at) return undefined;
    const v = this.deref(at);
    return this.buf.subarray(v + 4, v + 4 + this.view.getUint32(v, true));
  }
  string(pos: number, t: string, n: string): string {
    const b = this.bytes(pos, t, n);
    return b && b.byteLength ? utf8.decode(b) : "";
  }
  table(pos: number, t: string, n: string): number {
    const at = this.field(pos, t, n);
    return at ? this.deref(at) : 0;
  }
  readings(env: number): number[] {
    const v = this.table(env, "Envelope", "readings");
    if (!v) return [];
    const count = this.view.getUint32(v, true);
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = this.deref(v + 4 + 4 * i);
    return out;
  }
}

/** A decoder with its limits; reusable, stateless between payloads. */
export class Codec {
  readonly limits: Limits;

  /** A decoder for v1 and for v2 envelopes without compression or compressed without a dictionary;
   * a zstd frame of the v2 dictionary also needs ready() to have been awaited (Codec.create does). */
  constructor(limits?: Partial<Limits>) {
    this.limits = withDefaults(limits);
  }

  /** A decoder for every payload the agent sends, v1 and v2, once the zstd WebAssembly module and
   * the v2 dictionary are loaded (ready(), awaited once per process; later calls return at once). */
  static async create(limits?: Partial<Limits>): Promise<Codec> {
    const codec = new Codec(limits); // limits checked before anything is loaded
    await ready();
    return codec;
  }

  /** The envelope bytes: decompressed with the size limit if the payload is a zstd frame. */
  unwrap(payload: Uint8Array): { envelope: Uint8Array; compressed: boolean } {
    if (payload.byteLength > this.limits.maxPayloadBytes) {
      throw new DecodeError(`payload too large: ${payload.byteLength} bytes > ${this.limits.maxPayloadBytes}`);
    }
    if (!isZstd(payload)) return { envelope: payload, compressed: false };
    return { envelope: decompressBounded(payload, this.limits.maxBytes), compressed: true };
  }

  /** Decodes one MQTT payload of a data or evidence topic. Throws DecodeError for any bad payload.
   * topic: the topic it arrived on (eport/v1/<site>/<gateway>/...); a v2 envelope without site and
   * gateway ids takes them from it, and one whose ids differ from it is refused. Without a topic a
   * v2 envelope's ids are those it carries (empty, as the agent sends them); a v1 envelope's are
   * always its own. */
  decodePayload(payload: Uint8Array, topic?: string): Decoded {
    if (!(payload instanceof Uint8Array)) throw new DecodeError("payload is not a Uint8Array");
    const { envelope, compressed } = this.unwrap(payload);
    verifyEnvelope(envelope, this.limits);
    try {
      const r = new Reader(envelope);
      if (String.fromCharCode(...envelope.subarray(4, 8)) === FILE_IDENTIFIER_V2) {
        return { ...decodeEnvelopeV2(r, this.limits, topic, this), compressed };
      }
      return { ...this.decode(r), compressed };
    } catch (e) {
      if (e instanceof DecodeError) throw e;
      // The verifier should make this unreachable; a test treats it as a verifier bug.
      throw new DecodeError(`envelope could not be decoded: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
  }

  private decode(r: Reader): Omit<Decoded, "compressed"> {
    const env = r.deref(0);
    const E = "Envelope";
    const version = r.u16(env, E, "schema_version") ?? 1;
    const priority = r.u8(env, E, "priority") ?? 1;
    const header: EnvelopeHeader = {
      site: r.string(env, E, "site_id"),
      gateway: r.string(env, E, "gateway_id"),
      envelope_seq: r.u64(env, E, "envelope_seq", "envelope_seq") ?? 0,
      sent_utc_ms: r.u64(env, E, "sent_utc_ms", "sent_utc_ms") ?? 0,
      priority: PRIORITY_NAMES[priority] ?? "unknown",
      schema_version: version,
    };
    if (version > SCHEMA_MAJOR) throw new DecodeError(`schema_version ${version} is newer than ${SCHEMA_MAJOR}`);
    const positions = r.readings(env);
    this.checkSize(r, env, positions);
    const readings: Reading[] = [];
    const problems: string[] = [];
    positions.forEach((pos, i) => {
      try {
        readings.push(this.reading(r, pos, header.priority));
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        problems.push(`reading ${i}: ${e.message}`);
      }
    });
    return { header, readings, problems };
  }

  /** What decoding will copy, added up and checked before anything is copied (as
   * eport::codec::decode_envelope does): ids over their bounds refuse the envelope, and a small
   * envelope whose readings share one string cannot decode to gigabytes. */
  private checkSize(r: Reader, env: number, positions: number[]): void {
    const limit = this.limits.maxDecodedBytes;
    let decoded = (r.length(env, "Envelope", "site_id") ?? 0) + (r.length(env, "Envelope", "gateway_id") ?? 0);
    positions.forEach((pos, i) => {
      try {
        decoded += this.readingCost(r, pos);
      } catch (e) {
        if (e instanceof DecodeError) throw new DecodeError(`reading ${i}: ${e.message}`);
        throw e;
      }
      if (decoded > limit) throw new DecodeError(`envelope decodes to more than ${limit} bytes (limit reached at reading ${i})`);
    });
  }

  /** What decoding the Reading table at `pos` copies (DECODED_READING_BYTES plus its strings), its
   * ids checked against their bounds; 0 for a payload kind this decoder does not know (skipped).
   * Throws DecodeError, the message without the "reading I: " that the caller adds. */
  readingCost(r: Reader, pos: number): number {
    const bound = (what: string, n: number, max: number) => {
      if (n > max) throw new DecodeError(`${what} of ${n} bytes > ${max}`);
      return n;
    };
    const type = r.u8(pos, "Reading", "payload_type") ?? 0;
    const kind = PAYLOAD_MEMBERS[type];
    if (kind === undefined) return 0; // skipped without copying anything
    let cost = DECODED_READING_BYTES;
    cost += bound("source_id", r.length(pos, "Reading", "source_id") ?? 0, MAX_SOURCE_ID_BYTES);
    cost += bound("container_id", r.length(pos, "Reading", "container_id") ?? 0, MAX_CONTAINER_ID_BYTES);
    const classSeq = r.u64big(pos, "Reading", "class_seq");
    if (classSeq > MAX_CLASS_SEQ) throw new DecodeError(`class_seq ${classSeq} > 2^53-1`);
    const tab = r.table(pos, "Reading", "payload");
    if (!tab) throw new DecodeError(`payload type ${type} (${kind}) without its table`);
    if (kind === "SealEvent") cost += bound("seal_id", r.length(tab, kind, "seal_id") ?? 0, MAX_SEAL_ID_BYTES);
    if (kind === "CustodyEvent") {
      cost += bound("subject_id", r.length(tab, kind, "subject_id") ?? 0, MAX_SUBJECT_ID_BYTES);
      cost += bound("zone_id", r.length(tab, kind, "zone_id") ?? 0, MAX_ZONE_ID_BYTES);
      cost += bound("seal_id", r.length(tab, kind, "seal_id") ?? 0, MAX_SEAL_ID_BYTES);
      cost += bound("expected_seal_id", r.length(tab, kind, "expected_seal_id") ?? 0, MAX_SEAL_ID_BYTES);
      cost += bound("command_id", r.length(tab, kind, "command_id") ?? 0, MAX_COMMAND_ID_BYTES);
    }
    if (kind === "EvidenceCheckpoint") {
      const n = r.length(tab, kind, "cose") ?? 0;
      if (n === 0 || n > MAX_EVIDENCE_BYTES) {
        throw new DecodeError(`evidence checkpoint of ${n} bytes (1..${MAX_EVIDENCE_BYTES})`);
      }
      cost += n;
    }
    return cost;
  }

  /** The Reading table at `pos` (after readingCost); throws DecodeError (InexactNumberError for a
   * 64-bit value over 2^53-1), the message without "reading I: ". */
  reading(r: Reader, pos: number, priority?: string): Reading {
    const R = "Reading";
    const type = r.u8(pos, R, "payload_type") ?? 0;
    const kind = PAYLOAD_MEMBERS[type];
    if (kind === undefined || !(kind in LAYOUT)) throw new DecodeError(`unknown or missing payload type ${type}: skipped`);
    const source = r.string(pos, R, "source_id");
    if (!source) throw new DecodeError("reading without source_id");
    const out: Record<string, string | number | boolean> = { source };
    const container = r.string(pos, R, "container_id");
    if (container) out.container = container;
    out.seq = r.u64(pos, R, "seq", "seq") ?? 0;
    const classSeq = r.u64(pos, R, "class_seq", "class_seq") ?? 0; // at most 2^53-1: readingCost checked it
    if (classSeq > 0 && priority !== undefined) {
      out.class = priority;
      out.class_seq = classSeq;
    } else if (classSeq > 0) {
      out.class_seq = classSeq;
    }
    out.time_utc_ms = r.u64(pos, R, "time_utc_ms", "time_utc_ms") ?? 0;
    if (r.u8(pos, R, "time_source") === TIME_SOURCE_GATEWAY_RECEIVE) out.time_source = "gateway_receive";
    const p = r.table(pos, R, "payload");
    const opt = (key: string, v: number | undefined) => {
      if (v !== undefined) out[key] = v; // optional scalar (= null in the schema): absent stays absent
    };
    switch (kind) {
      case "Position":
        out.kind = "position";
        out.lat_e7 = r.i32(p, kind, "lat_e7") ?? 0;
        out.lon_e7 = r.i32(p, kind, "lon_e7") ?? 0;
        opt("speed_cm_s", r.u16(p, kind, "speed_cm_s"));
        opt("heading_cdeg", r.u16(p, kind, "heading_cdeg"));
        out.fix = r.u8(p, kind, "fix") ?? 0;
        out.satellites = r.u8(p, kind, "satellites") ?? 0;
        opt("hdop_centi", r.u16(p, kind, "hdop_centi"));
        break;
      case "SealEvent":
        out.kind = "seal";
        out.seal_id = r.string(p, kind, "seal_id");
        out.state = SEAL_STATE_NAMES[r.u8(p, kind, "state") ?? 0] ?? "unknown";
        break;
      case "DoorEvent":
        out.kind = "door";
        out.state = DOOR_STATE_NAMES[r.u8(p, kind, "state") ?? 0] ?? "unknown";
        break;
      case "SensorSample":
        out.kind = "sensor";
        opt("temperature_centi_c", r.i16(p, kind, "temperature_centi_c"));
        opt("humidity_centi_pct", r.u16(p, kind, "humidity_centi_pct"));
        opt("shock_milli_g", r.u16(p, kind, "shock_milli_g"));
        opt("battery_mv", r.u16(p, kind, "battery_mv"));
        opt("battery_pct", r.u8(p, kind, "battery_pct"));
        opt("reefer_setpoint_centi_c", r.i16(p, kind, "reefer_setpoint_centi_c"));
        break;
      case "SequenceGap":
        out.kind = "gap"; // seqs first_seq .. seq of this source will never arrive
        out.first_seq = r.u64(p, kind, "first_seq", "first_seq") ?? 0;
        out.reason = GAP_REASON_NAMES[r.u8(p, kind, "reason") ?? 0] ?? "unknown";
        break;
      case "CustodyEvent": {
        out.kind = "event"; // derived by the gateway (docs/custody-events.md)
        const code = r.u8(p, kind, "code") ?? 0;
        out.event = EVENT_CODE_NAMES[code] ?? "unknown";
        if (EVENT_DCSA_CODES[code]) out.dcsa = EVENT_DCSA_CODES[code];
        out.subject = r.string(p, kind, "subject_id");
        out.first_seq = r.u64(p, kind, "first_seq", "first_seq") ?? 0;
        out.caused_by_seq = r.u64(p, kind, "caused_by_seq", "caused_by_seq") ?? 0;
        const zone = r.string(p, kind, "zone_id");
        if (zone) out.zone = zone;
        opt("lat_e7", r.i32(p, kind, "lat_e7"));
        opt("lon_e7", r.i32(p, kind, "lon_e7"));
        if (r.u8(p, kind, "interpolated")) out.interpolated = true;
        if (r.u8(p, kind, "ended_by_gap")) out.ended_by_gap = true;
        opt("temperature_centi_c", r.i16(p, kind, "temperature_centi_c"));
        opt("setpoint_centi_c", r.i16(p, kind, "setpoint_centi_c"));
        opt("band_low_centi_c", r.i16(p, kind, "band_low_centi_c"));
        opt("band_high_centi_c", r.i16(p, kind, "band_high_centi_c"));
        opt("duration_ms", r.u64(p, kind, "duration_ms", "duration_ms"));
        for (const key of ["seal_id", "expected_seal_id"]) {
          const s = r.string(p, kind, key);
          if (s) out[key] = s;
        }
        const cls = SEAL_CLASS_NAMES[r.u8(p, kind, "seal_class") ?? 0];
        if (cls) out.seal_class = cls;
        const command = r.string(p, kind, "command_id");
        if (command) out.command_id = command;
        break;
      }
      case "EvidenceCheckpoint": {
        out.kind = "evidence"; // a unit's signed checkpoint (docs/evidence.md section 13)
        out.n = r.u64(p, kind, "n", "n") ?? 0;
        out.check = EVIDENCE_CHECK_NAMES[r.u8(p, kind, "check") ?? 0] ?? "unknown";
        const cose = r.bytes(p, kind, "cose") ?? new Uint8Array(0);
        let hex = "";
        for (const b of cose) hex += b.toString(16).padStart(2, "0");
        out.cose = hex;
        break;
      }
      default:
        throw new DecodeError(`payload type ${kind} is not decoded by this consumer: skipped`);
    }
    return out as Reading;
  }
}
