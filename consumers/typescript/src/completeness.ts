// completeness.ts: per source, which seqs arrived, which were declared lost at the source (gap
// records, "kind":"gap") and which are missing with nobody saying why (lost in transit, not yet
// arrived, or before this consumer subscribed). The Python consumer's completeness(), same output.

import type { Reading } from "./decode.js";

export type Range = [first: number, last: number];
export type DeclaredGap = [first: number, last: number, reason: string];

export interface SourceCompleteness {
  received: Range[];
  declared_gaps: DeclaredGap[];
  undeclared_gaps: Range[];
}

function merge(ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (const [first, last] of [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1])) {
    const top = out[out.length - 1];
    if (top && first <= top[1] + 1) {
      if (last > top[1]) top[1] = last;
    } else {
      out.push([first, last]);
    }
  }
  return out;
}

/** From decoded readings (duplicates allowed). Holes are looked for from `start` (a number, or
 * per source; 1 unless this consumer joined late) up to the highest seq seen of that source. */
export function completeness(readings: Iterable<Reading>, start: number | Record<string, number> = 1):
    Record<string, SourceCompleteness> {
  const per = new Map<string, { received: Range[]; declared: Map<string, DeclaredGap> }>();
  for (const r of readings) {
    let s = per.get(r.source);
    if (!s) per.set(r.source, (s = { received: [], declared: new Map() }));
    if (r.kind === "gap") {
      const g: DeclaredGap = [r.first_seq as number, r.seq, r.reason as string];
      s.declared.set(JSON.stringify(g), g);
    } else {
      s.received.push([r.seq, r.seq]);
    }
  }
  const result: Record<string, SourceCompleteness> = {};
  for (const source of [...per.keys()].sort()) {
    const s = per.get(source)!;
    const received = merge(s.received);
    const declared = [...s.declared.values()].sort((a, b) => a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0));
    const covered = merge([...received, ...declared.filter(([f, l]) => f <= l).map(([f, l]): Range => [f, l])]);
    let next = typeof start === "number" ? start : start[source] ?? 1;
    const holes: Range[] = [];
    for (const [first, last] of covered) {
      if (last < next) continue;
      if (first > next) holes.push([next, first - 1]);
      next = last + 1;
    }
    result[source] = { received, declared_gaps: declared, undeclared_gaps: holes };
  }
  return result;
}

/** Per source and class: the gateway's class counts received (schema 1.5; the Python consumer's
 * class_completeness(), same output, keyed "source\tclass"). */
export interface ClassCompleteness {
  /** Distinct readings counted. */
  received: number;
  /** [seq, class_seq] of the earliest received. */
  first: [seq: number, classSeq: number];
  /** [first, last, nextSeq]: class_seqs first..last not received; nextSeq: the seq received after them. */
  missing: [first: number, last: number, nextSeq: number][];
  /** Seqs where the count started again (the gateway forgot the source, or its store was replaced). */
  restarts: number[];
}

/** From decoded readings of ONE gateway (duplicates allowed; readings without class_seq are not
 * counted). Holes are looked for from the earliest reading received, or from
 * start["source\tclass"] (the first class_seq expected) when given; a class_seq not above the
 * one before, on a later seq, is a restart, and holes are looked for from 1 there. */
export function classCompleteness(readings: Iterable<Reading>, start: Record<string, number> = {}):
    Record<string, ClassCompleteness> {
  const per = new Map<string, Map<number, number>>();
  for (const r of readings) {
    if (!r.class_seq || r.class === undefined) continue;
    const key = `${r.source}\t${r.class}`;
    let bySeq = per.get(key);
    if (!bySeq) per.set(key, (bySeq = new Map()));
    bySeq.set(r.seq, r.class_seq);
  }
  const result: Record<string, ClassCompleteness> = {};
  for (const key of [...per.keys()].sort()) {
    const items = [...per.get(key)!.entries()].sort((a, b) => a[0] - b[0]);
    let expected: number | undefined = start[key];
    const missing: ClassCompleteness["missing"] = [];
    const restarts: number[] = [];
    let prev: number | undefined;
    for (const [seq, cs] of items) {
      if (prev !== undefined && cs <= prev) {
        restarts.push(seq);
        expected = 1;
      } else if (prev !== undefined) {
        expected = prev + 1;
      }
      if (expected !== undefined && cs > expected) missing.push([expected, cs - 1, seq]);
      prev = cs;
    }
    result[key] = { received: items.length, first: [items[0][0], items[0][1]], missing, restarts };
  }
  return result;
}
