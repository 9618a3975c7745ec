#!/usr/bin/env node
// cli.ts: eport-ts-decode, the package's command line. Reads MQTT messages as mosquitto_sub
// prints them with -F '%t %x' (topic, a space, the payload in hex; one message a line) and
// prints what the Python consumer and eport-tail print: one JSON line per reading (duplicates
// dropped), {"envelope":...} lines with --envelopes, {"error":...} lines for refused payloads,
// status/health/reply messages tagged. A summary goes to stderr at the end. Envelopes v1 (EPT1)
// and v2 (EPT2, decoded with each message's topic: the site and gateway ids come from it).
//
//   mosquitto_sub -h 127.0.0.1 -p 1883 -q 1 -F '%t %x' -t 'eport/v1/+/+/data/#' | eport-ts-decode --envelopes

import { createInterface } from "node:readline";
import { Codec, DecodeError, DedupWindow, envelopeLine, isZstd, jsonLine, parseTopic, RawJson, readingLine } from "./index.js";

const PROG = "eport-ts-decode";
const USAGE = `usage: ${PROG} [--envelopes] [--quiet] [--dedup-window N] [--max-bytes N] [--max-readings N]
       [--max-decoded-bytes N]   < lines "TOPIC HEXPAYLOAD" (mosquitto_sub -F '%t %x')`;

function die(msg: string, code = 64): never {
  process.stderr.write(`${PROG}: ${msg}\n`);
  return process.exit(code);
}

function parseArgs(argv: string[]) {
  const opts = { envelopes: false, quiet: false, dedupWindow: 100000, maxBytes: 4 << 20, maxReadings: 100000,
    maxDecodedBytes: 32 << 20 };
  const num = (i: number): number => {
    const v = Number(argv[i]);
    if (argv[i] === undefined || !Number.isSafeInteger(v) || v < 0) die(`${argv[i - 1]} needs a non-negative integer\n${USAGE}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case "--envelopes": opts.envelopes = true; break;
      case "--quiet": opts.quiet = true; break;
      case "--dedup-window": opts.dedupWindow = num(++i); break;
      case "--max-bytes": opts.maxBytes = num(++i); break;
      case "--max-readings": opts.maxReadings = num(++i); break;
      case "--max-decoded-bytes": opts.maxDecodedBytes = num(++i); break;
      case "-h":
      case "--help":
        process.stdout.write(USAGE + "\n");
        return process.exit(0);
      default: die(`unknown option ${argv[i]}\n${USAGE}`);
    }
  }
  return opts;
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const codec = await Codec.create({ maxPayloadBytes: opts.maxBytes, maxBytes: opts.maxBytes, maxReadings: opts.maxReadings,
    maxDecodedBytes: opts.maxDecodedBytes });
  const dedup = new DedupWindow(opts.dedupWindow);
  const counts: Record<string, number> = { readings: 0, envelopes: 0, zstd: 0, errors: 0, duplicates: 0, status: 0, health: 0 };
  const out: string[] = [];
  const emit = (line: string) => { if (!opts.quiet) out.push(line); };
  const error = (msg: string, topic: string, size: number) => {
    counts.errors++;
    emit(jsonLine({ error: msg, topic, bytes: size }));
  };

  const handle = (topic: string, payload: Uint8Array) => {
    const t = parseTopic(topic);
    if (t && (t.kind === "status" || t.kind === "health" || t.kind === "reply")) {
      if (t.kind !== "reply") counts[t.kind]++;
      const text = new TextDecoder().decode(payload).trim();
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return error(`${t.kind} message is not JSON`, topic, payload.byteLength);
      }
      return emit(jsonLine({ [t.kind]: new RawJson(text.includes("\n") ? JSON.stringify(value) : text), topic }));
    }
    if (!t || (t.kind !== "data" && t.kind !== "evidence")) {
      return error("not an eport/v1 topic this consumer knows", topic, payload.byteLength);
    }
    let d;
    try {
      d = codec.decodePayload(payload, topic); // v2: site and gateway from the topic
    } catch (e) {
      if (e instanceof DecodeError) return error(e.message, topic, payload.byteLength);
      throw e;
    }
    const h = d.header;
    // The broker's ACLs bind a gateway to its own topics; the payload's claims are not authenticated.
    const cls = t.kind === "data" ? t.cls : "alarm"; // evidence: always Alarm class
    if (h.site !== t.site || h.gateway !== t.gateway || h.priority !== cls) {
      return error(`envelope of ${h.site}/${h.gateway}/${h.priority} on another gateway's or class's topic`, topic,
        payload.byteLength);
    }
    counts.envelopes++;
    if (isZstd(payload)) counts.zstd++;
    if (opts.envelopes) emit(envelopeLine(d, payload.byteLength));
    for (const p of d.problems) error(p, topic, payload.byteLength);
    for (const r of d.readings) {
      if (dedup.has(r.source, r.seq)) {
        counts.duplicates++;
        continue;
      }
      emit(readingLine(r)); // replace with your store's upsert keyed on (source_id, seq)
      dedup.add(r.source, r.seq);
      counts.readings++;
    }
  };

  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const raw of rl) {
    const line = raw.trimEnd();
    if (!line) continue;
    const space = line.lastIndexOf(" ");
    const topic = space < 0 ? line : line.slice(0, space);
    const hex = space < 0 ? "" : line.slice(space + 1);
    if (!HEX.test(hex)) {
      error("input line is not \"TOPIC HEXPAYLOAD\" (mosquitto_sub -F '%t %x')", topic, 0);
    } else {
      try {
        handle(topic, Uint8Array.from(Buffer.from(hex, "hex")));
      } catch (e) { // never let one message stop the consumer
        error(`internal error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, topic, hex.length / 2);
      }
    }
    if (out.length) {
      process.stdout.write(out.join("\n") + "\n");
      out.length = 0;
    }
  }
  const c = counts;
  process.stderr.write(`${PROG}: readings=${c.readings} envelopes=${c.envelopes} zstd=${c.zstd} errors=${c.errors} ` +
    `duplicates=${c.duplicates} status=${c.status} health=${c.health}\n`);
  return 0;
}

main().then((code) => { process.exitCode = code; }, (e) => die(`fatal: ${e instanceof Error ? e.stack : e}`, 70));
