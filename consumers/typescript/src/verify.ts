// verify.ts: the bounded FlatBuffers verifier (the JS runtime has none). Driven by LAYOUT, it
// checks every offset, vtable, string and vector that the decoder will read lies inside the
// buffer and is aligned, strings are terminated, the reading count and table count are bounded:
// what C++'s VerifyEnvelopeBuffer does, with the Python consumer's messages. Nothing reads a
// buffer before it passed verifyEnvelope(). An EPT2 buffer (envelope v2) is verified as its outer
// table (LAYOUT_V2) and the v1 Reading tables it holds.

import { DecodeError, Limits } from "./limits.js";
import { LAYOUT, LAYOUT_V2, PAYLOAD_MEMBERS, SCALAR_SIZE } from "./layout.js";

export const FILE_IDENTIFIER = "EPT1";
export const FILE_IDENTIFIER_V2 = "EPT2";

class Verifier {
  private readonly view: DataView;
  private readonly n: number;
  private tables = 0;
  private readonly maxTables: number;

  constructor(private readonly buf: Uint8Array, private readonly limits: Limits) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.n = buf.byteLength;
    this.maxTables = limits.maxReadings * 4 + 16;
  }

  private fail(what: string): never {
    throw new DecodeError(`envelope failed verification: ${what}`);
  }

  private span(off: number, size: number, align: number, what: string): void {
    if (off < 0 || size < 0 || off + size > this.n) this.fail(`${what} at ${off}+${size} outside the ${this.n}-byte buffer`);
    if (align > 1 && off % align) this.fail(`${what} at ${off} not aligned to ${align}`);
  }

  /** The target of the uoffset stored at `at` (always forward, never 0). */
  private deref(at: number, what: string): number {
    this.span(at, 4, 4, what);
    const o = this.view.getUint32(at, true);
    if (o === 0 || o >= 2 ** 31) this.fail(`${what}: bad offset ${o} at ${at}`);
    this.span(at + o, 1, 1, what);
    return at + o;
  }

  private string(pos: number, what: string): void {
    this.span(pos, 4, 4, what);
    const length = this.view.getUint32(pos, true);
    this.span(pos + 4, length + 1, 1, what);
    if (this.buf[pos + 4 + length] !== 0) this.fail(`${what}: string at ${pos} not terminated`);
  }

  table(pos: number, name: string, depth: number): void {
    this.tables += 1;
    if (this.tables > this.maxTables || depth > this.limits.maxDepth) {
      this.fail(`too many or too deeply nested tables (${this.tables}, depth ${depth})`);
    }
    this.span(pos, 4, 4, `${name} table`);
    const vt = pos - this.view.getInt32(pos, true);
    this.span(vt, 4, 2, `${name} vtable`);
    const vsize = this.view.getUint16(vt, true);
    const tsize = this.view.getUint16(vt + 2, true);
    if (vsize < 4 || vsize % 2) this.fail(`${name} vtable at ${vt}: bad size ${vsize}`);
    this.span(vt, vsize, 2, `${name} vtable`);
    this.span(pos, Math.max(tsize, 4), 1, `${name} table body`);
    const values: Record<string, number> = {};
    const fields = LAYOUT[name] ?? LAYOUT_V2[name];
    for (let i = 0; i < fields.length; i++) {
      const { name: field, kind, arg } = fields[i];
      const slot = 4 + 2 * i;
      if (slot + 2 > vsize) break; // written by an older schema: the remaining fields are absent
      const fo = this.view.getUint16(vt + slot, true);
      if (fo === 0) continue; // absent: default value or null
      const what = `${name}.${field}`;
      const at = pos + fo;
      const size = SCALAR_SIZE[kind];
      if (size !== undefined) {
        if (fo + size > tsize) this.fail(`${what}: field outside its table`);
        this.span(at, size, size, what);
        if (size === 1) values[field] = this.buf[at];
        continue;
      }
      if (fo + 4 > tsize) this.fail(`${what}: field outside its table`);
      const target = this.deref(at, what);
      if (kind === "string") {
        this.string(target, what);
      } else if (kind === "[u8]") {
        this.span(target, 4, 4, what);
        this.span(target + 4, this.view.getUint32(target, true), 1, what);
      } else if (kind === "[table]") {
        this.span(target, 4, 4, what);
        const count = this.view.getUint32(target, true);
        if (count > this.limits.maxReadings) {
          // the message of eport::codec::decode_envelope
          throw new DecodeError(`envelope holds ${count} readings > limit ${this.limits.maxReadings}`);
        }
        this.span(target + 4, 4 * count, 4, what);
        for (let j = 0; j < count; j++) this.table(this.deref(target + 4 + 4 * j, `${what}[${j}]`), arg as string, depth + 1);
      } else if (kind === "union") {
        const member = PAYLOAD_MEMBERS[values[arg as string] ?? 0];
        // An unknown member (newer schema) is not read: the decoder skips that reading.
        if (member !== undefined && member in LAYOUT) this.table(target, member, depth + 1);
      }
    }
  }

  envelope(): void {
    if (this.n >= 8 && String.fromCharCode(...this.buf.subarray(4, 8)) === FILE_IDENTIFIER_V2) {
      this.table(this.deref(0, "root"), "EnvelopeV2", 1); // its columns are checked as they are decoded
      return;
    }
    if (this.n < 8 || String.fromCharCode(...this.buf.subarray(4, 8)) !== FILE_IDENTIFIER) {
      throw new DecodeError("not an EPT1 envelope (missing file identifier)");
    }
    this.table(this.deref(0, "root"), "Envelope", 1);
  }
}

/** Throws DecodeError unless `envelope` (uncompressed) is safe to read with the decoder. */
export function verifyEnvelope(envelope: Uint8Array, limits: Limits): void {
  if (envelope.byteLength > limits.maxBytes) {
    throw new DecodeError(`envelope too large: ${envelope.byteLength} bytes > ${limits.maxBytes}`);
  }
  new Verifier(envelope, limits).envelope();
}
