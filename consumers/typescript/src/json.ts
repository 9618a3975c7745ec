// json.ts: the JSON lines eport-tail prints (eport::codec::reading_to_json, eport::json): keys in
// order, no spaces, '"' and '\' escaped, control bytes 0x00..0x1f and DEL as \u00xx, everything
// else as is. Strings were decoded with U+FFFD for each ill-formed UTF-8 subpart, written as
// \ufffd as eport::json writes them (a literal U+FFFD sent as valid UTF-8 is also written \ufffd).

export type JsonValue = string | number | boolean | RawJson | JsonObject | undefined;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Text inserted as is (already JSON). */
export class RawJson {
  constructor(readonly text: string) {}
}

export function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c < 0x20 || c === 0x7f) out += "\\u00" + c.toString(16).padStart(2, "0");
    else if (c === 0xfffd) out += "\\ufffd";
    else out += s[i];
  }
  return out + '"';
}

/** One JSON object on one line; undefined values are left out. */
export function jsonLine(obj: JsonObject): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    let text: string;
    if (v instanceof RawJson) text = v.text;
    else if (typeof v === "string") text = quote(v);
    else if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) throw new RangeError(`${k}: ${v} is not an exact integer`);
      text = String(v);
    } else if (typeof v === "boolean") text = v ? "true" : "false";
    else text = jsonLine(v);
    parts.push(`${quote(k)}:${text}`);
  }
  return `{${parts.join(",")}}`;
}
