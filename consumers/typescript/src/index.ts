// index.ts: the package's API. `await Codec.create()` (or `await ready()` once, then `new Codec()`)
// loads the zstd WebAssembly module and the v2 dictionary; codec.decodePayload(bytes, topic)
// verifies (bounded zstd, bounded verifier) and decodes one MQTT payload, envelope v1 (EPT1) or v2
// (EPT2); readingLine/envelopeLine print eport-tail's JSON lines.

import type { Decoded, EnvelopeHeader, Reading } from "./decode.js";
import { jsonLine } from "./json.js";

export { Codec, PRIORITY_NAMES, SCHEMA_MAJOR } from "./decode.js";
export type { Decoded, EnvelopeHeader, Reading } from "./decode.js";
export * from "./limits.js";
export { verifyEnvelope, FILE_IDENTIFIER, FILE_IDENTIFIER_V2 } from "./verify.js";
export { SCHEMA_VERSION_V2 } from "./envelope_v2.js";
export { decompressBounded, isReady, isZstd, ready, V2_DICTIONARY_ID, V2_DICTIONARY_URL, ZSTD_MAGIC } from "./zstd.js";
export { jsonLine, quote, RawJson } from "./json.js";
export type { JsonObject, JsonValue } from "./json.js";
export { classCompleteness, completeness } from "./completeness.js";
export type { ClassCompleteness, DeclaredGap, Range, SourceCompleteness } from "./completeness.js";
export { parseTopic } from "./topic.js";
export type { Topic } from "./topic.js";
export { DedupWindow } from "./dedup.js";

/** A reading as eport-tail prints it. */
export function readingLine(r: Reading): string {
  return jsonLine(r);
}

/** eport-tail --envelopes' line for an envelope: header, reading count, payload bytes. */
export function envelopeLine(d: Decoded | { header: EnvelopeHeader; readings: Reading[]; problems: string[] },
  payloadBytes: number): string {
  return jsonLine({ envelope: { ...d.header }, readings: d.readings.length + d.problems.length, bytes: payloadBytes });
}
