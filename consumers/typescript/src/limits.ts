// limits.ts: what one payload may cost, and the schema's bounds on ids (docs/schema.md).
// The same numbers and meanings as eport::codec::DecodeLimits and the Python consumer's
// Limits and MAX_* constants (examples/python/eport_consumer.py), so the three refuse alike.

/** Refusal of a payload; the message says what failed (the C++ and Python decoders' words). */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/** A 64-bit value above 2^53-1, which a JS number cannot hold exactly: the reading holding it is
 * skipped (one entry in `problems`), the envelope kept; in the header it refuses the envelope. */
export class InexactNumberError extends DecodeError {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/** Fixed cost of one decoded reading in the max_decoded_bytes bound (kDecodedReadingBytes). */
export const DECODED_READING_BYTES = 384;
export const MAX_SOURCE_ID_BYTES = 40; // units 32, "<gateway>:custody" 40
export const MAX_CONTAINER_ID_BYTES = 11; // ISO 6346
export const MAX_SEAL_ID_BYTES = 32;
export const MAX_SUBJECT_ID_BYTES = 32; // CustodyEvent.subject_id: a unit id
export const MAX_ZONE_ID_BYTES = 64; // CustodyEvent.zone_id
export const MAX_COMMAND_ID_BYTES = 64; // CustodyEvent.command_id
export const MAX_EVIDENCE_BYTES = 336; // EvidenceCheckpoint.cose: EPB_EV_CHECKPOINT_MAX
/** Largest integer a JS number holds exactly; seqs are 1 .. this (model::kMaxSeq). */
export const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;

/** What a payload may cost. Every field is a count of bytes or of items. */
export interface Limits {
  /** As received from MQTT, compressed or not. */
  maxPayloadBytes: number;
  /** The envelope after decompression (also the largest zstd frame content size accepted). */
  maxBytes: number;
  maxReadings: number;
  /** Table nesting depth. */
  maxDepth: number;
  /** What decoding copies: DECODED_READING_BYTES per reading plus its strings and bytes. */
  maxDecodedBytes: number;
}

/** eport::codec::DecodeLimits' defaults. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxPayloadBytes: 4 << 20,
  maxBytes: 4 << 20,
  maxReadings: 100000,
  maxDepth: 16,
  maxDecodedBytes: 32 << 20,
});

export function withDefaults(limits?: Partial<Limits>): Limits {
  const out: Limits = { ...DEFAULT_LIMITS, ...(limits ?? {}) };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`limit ${k} must be a non-negative integer, not ${v}`);
  }
  return out;
}
