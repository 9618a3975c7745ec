// zstd.ts: bounded zstd decompression of a payload (docs/schema.md, "Compression" and "Envelope
// v2 / Compression and the dictionary"). The frame header is parsed here first: a frame without
// its content size, or declaring more than Limits.maxBytes, or with a window larger than that, or
// naming a dictionary other than the v2 dictionary (id 32769), is refused before anything is
// allocated. A frame without a dictionary is decompressed by fzstd (pure JS) block by block, the
// bytes it yields counted, so a frame producing more than it declared is refused too. A frame of
// the v2 dictionary is decompressed by the real zstd library (@bokuweb/zstd-wasm, WebAssembly)
// into a buffer of exactly the declared size, and its result's length checked against it; that
// library and the dictionary (eport_v2_dict_1.zdict, shipped in this package next to dist/) are
// loaded once by ready(), which must have been awaited before such a frame is decoded.

import { Decompress } from "fzstd";
import { DecodeError } from "./limits.js";
import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";

/** The v2 dictionary's id (eport::codec::kV2DictionaryId), in the frame header of every v2 frame. */
export const V2_DICTIONARY_ID = 32769;
/** Where the package keeps the v2 dictionary: a copy of schema/eport_v2_dict_1.zdict, made at build time. */
export const V2_DICTIONARY_URL = new URL("../eport_v2_dict_1.zdict", import.meta.url);

/** The few functions of @bokuweb/zstd-wasm (its CommonJS build) used here. */
interface ZstdWasm {
  init(): Promise<void>;
  createDCtx(): number;
  decompressUsingDict(dctx: number, buf: Uint8Array, dict: Uint8Array): Uint8Array;
}

interface V2Dictionary {
  zstd: ZstdWasm;
  dctx: number;
  dict: Uint8Array;
}

let v2: V2Dictionary | undefined;
let loading: Promise<void> | undefined;

/** Loads the zstd WebAssembly module and the v2 dictionary, once (later calls return the same
 * promise). Await it before decoding v2 frames (Codec.create() does). Rejects, with an Error that
 * is not a DecodeError, if the module or the dictionary cannot be loaded, or the dictionary's id is
 * not 32769; a later call then tries again. */
export function ready(): Promise<void> {
  loading ??= (async () => {
    const zstd = createRequire(import.meta.url)("@bokuweb/zstd-wasm") as ZstdWasm;
    let dict: Uint8Array;
    try {
      dict = new Uint8Array(await readFile(V2_DICTIONARY_URL));
    } catch (e) {
      throw new Error(`the v2 zstd dictionary ${V2_DICTIONARY_URL.pathname} cannot be read: ${e instanceof Error ? e.message : e}`);
    }
    const magic = dict.byteLength >= 8 ? new DataView(dict.buffer, dict.byteOffset, 8) : undefined;
    const id = magic && magic.getUint32(0, true) === 0xec30a437 ? magic.getUint32(4, true) : undefined;
    if (id !== V2_DICTIONARY_ID) {
      throw new Error(`${V2_DICTIONARY_URL.pathname} has dictionary id ${id ?? "(not a zstd dictionary)"}, not ${V2_DICTIONARY_ID}`);
    }
    await zstd.init();
    v2 = { zstd, dctx: zstd.createDCtx(), dict };
  })().catch((e) => {
    loading = undefined;
    throw e;
  });
  return loading;
}

/** True once ready() has loaded the v2 dictionary. */
export function isReady(): boolean {
  return v2 !== undefined;
}

// zstd's error names (ZSTD_getErrorName, as the C++ codec prints them) of the codes a hostile
// frame can cause, by code (zstd_errors.h; the library returns them negated).
const ZSTD_ERRORS: Record<number, string> = {
  1: "Error (generic)", 10: "Unknown frame descriptor", 12: "Version not supported",
  14: "Unsupported frame parameter", 16: "Frame requires too much memory for decoding",
  20: "Data corruption detected", 22: "Restored data doesn't match checksum",
  24: "Header of Literals' block doesn't respect format specification", 30: "Dictionary is corrupted",
  32: "Dictionary mismatch", 64: "Allocation error : not enough memory", 70: "Destination buffer is too small",
  72: "Src size is incorrect",
};

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
  if (h.dictionaryId !== 0 && h.dictionaryId !== V2_DICTIONARY_ID) {
    throw new DecodeError(`zstd payload: compressed with dictionary ${h.dictionaryId}, which this decoder does not ` +
      `have (it knows ${V2_DICTIONARY_ID})`);
  }
  const size = h.contentSize;
  if (h.dictionaryId === V2_DICTIONARY_ID) return decompressV2(payload, size);
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

/** A frame of the v2 dictionary, whose header declared `size` (checked against the limit): the
 * real zstd library decompresses it into a buffer of exactly that size (the capacity it takes
 * from the same header), so it cannot write more; a result of another length is refused. */
function decompressV2(payload: Uint8Array, size: number): Uint8Array {
  if (v2 === undefined) {
    // A setup error, not bad bytes: the program did not await ready() (or Codec.create()).
    throw new Error("a zstd frame of the v2 dictionary, but the dictionary is not loaded: await ready() " +
      "(or create the Codec with await Codec.create()) before decoding");
  }
  let out: Uint8Array;
  try {
    out = v2.zstd.decompressUsingDict(v2.dctx, payload, v2.dict);
  } catch (e) {
    const m = /code (-?\d+)/.exec(e instanceof Error ? e.message : String(e));
    const code = m ? -Number(m[1]) : 0;
    throw new DecodeError(`zstd payload: ${ZSTD_ERRORS[code] ?? `zstd error ${m ? m[1] : String(e)}`}`);
  }
  if (out.byteLength !== size) throw new DecodeError("zstd payload: size mismatch");
  return out;
}
