// zstd.ts: bounded zstd decompression of a payload (docs/schema.md, "Compression"). The frame
// header is parsed here first: a frame without its content size, or declaring more than
// Limits.maxBytes, or with a window larger than that, is refused before anything is allocated;
// fzstd (pure JS) then decompresses block by block and the bytes it yields are counted, so a
// frame producing more than it declared is refused too. One frame per payload, no dictionary.

import { Decompress } from "fzstd";
import { DecodeError } from "./limits.js";

export const ZSTD_MAGIC = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd);

export function isZstd(payload: Uint8Array): boolean {
  return payload.byteLength >= 4 && ZSTD_MAGIC.every((b, i) => payload[i] === b);
}

interface FrameHeader {
  contentSize: number | undefined;
  /** Where the content size field is, and its width in bytes (0: absent). */
  fcsAt: number;
  fcsBytes: number;
  windowSize: number;
  dictionaryId: number;
}

function frameHeader(p: Uint8Array): FrameHeader {
  if (p.byteLength < 6) throw new DecodeError("zstd payload: not a valid zstd frame (truncated header)");
  const fhd = p[4];
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const dictFlag = fhd & 3;
  if (fhd & 8) throw new DecodeError("zstd payload: not a valid zstd frame (reserved bit set)");
  let at = 5;
  let windowSize = 0;
  if (!singleSegment) {
    const wd = p[at++];
    const base = 2 ** (10 + (wd >> 3));
    windowSize = base + (base / 8) * (wd & 7);
  }
  const dictBytes = [0, 1, 2, 4][dictFlag];
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag];
  if (p.byteLength < at + dictBytes + fcsBytes) throw new DecodeError("zstd payload: not a valid zstd frame (truncated header)");
  let dictionaryId = 0;
  for (let i = 0; i < dictBytes; i++) dictionaryId += p[at + i] * 2 ** (8 * i);
  at += dictBytes;
  let contentSize: number | undefined;
  const fcsAt = at;
  if (fcsBytes > 0) {
    let v = 0;
    for (let i = 0; i < fcsBytes; i++) v += p[at + i] * 2 ** (8 * i); // inexact above 2^53, but only compared
    contentSize = fcsBytes === 2 ? v + 256 : v;
  }
  if (singleSegment) windowSize = contentSize ?? 0;
  return { contentSize, fcsAt, fcsBytes, windowSize, dictionaryId };
}

/** The frame's content, at most maxBytes bytes; throws DecodeError (Python consumer's messages). */
export function decompressBounded(payload: Uint8Array, maxBytes: number): Uint8Array {
  const h = frameHeader(payload);
  if (h.contentSize === undefined) throw new DecodeError("zstd payload: frame without content size");
  if (h.contentSize > maxBytes) throw new DecodeError(`zstd payload: decompresses to ${h.contentSize} bytes > ${maxBytes}`);
  if (h.windowSize > maxBytes) throw new DecodeError(`zstd payload: window of ${h.windowSize} bytes > ${maxBytes}`);
  if (h.dictionaryId !== 0) throw new DecodeError(`zstd payload: needs dictionary ${h.dictionaryId} (eport uses none)`);
  const size = h.contentSize;
  // fzstd writes at most the declared size (it silently drops what a frame produces beyond it),
  // so it is handed a copy whose header declares one byte more, as a 4-byte content size (fzstd
  // reads at most 31 bits of it): a frame that produces more than it declared then yields
  // size + 1 bytes and is refused below. Flags, window, dictionary id and blocks are unchanged.
  let input = payload;
  if (size + 1 < 2 ** 31) {
    const fhd = (2 << 6) | (payload[4] & 0x3f);
    const head = payload.subarray(5, h.fcsAt); // window descriptor and dictionary id, if any
    const rest = payload.subarray(h.fcsAt + h.fcsBytes);
    input = new Uint8Array(5 + head.byteLength + 4 + rest.byteLength);
    input.set(payload.subarray(0, 4));
    input[4] = fhd;
    input.set(head, 5);
    new DataView(input.buffer).setUint32(5 + head.byteLength, size + 1, true);
    input.set(rest, 5 + head.byteLength + 4);
  }
  const out = new Uint8Array(size);
  let got = 0;
  let ended = false;
  try {
    const d = new Decompress((chunk: Uint8Array, final?: boolean) => {
      if (got + chunk.byteLength > size) throw new DecodeError(`zstd payload: more than the ${size} bytes its frame declares`);
      out.set(chunk, got);
      got += chunk.byteLength;
      if (final) ended = true;
    });
    d.push(input, true);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(`zstd payload: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (got !== size || !ended) throw new DecodeError("zstd payload: size mismatch");
  return out;
}
