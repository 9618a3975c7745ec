"""eport.completeness: which of a source's seqs arrived, which were declared lost at the source
(gap records), and which are missing with nobody saying why (lost in transit, or not arrived
yet): the checker of docs/consuming.md section 11, over the readings eport.decode gives."""


def _merge(ranges):
    """Sorted, merged inclusive (first, last) ranges; adjacent ranges join."""
    out = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            if last > out[-1][1]:
                out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def completeness(readings, start=1):
    """Per source, from decoded readings (the dicts of Codec.decode_payload, duplicates allowed):

        {source: {"received":        [(first, last), ...],          seqs of readings that arrived
                  "declared_gaps":   [(first, last, reason), ...],  gap records: first_seq .. seq, reason
                  "undeclared_gaps": [(first, last), ...]}}         holes covered by neither

    All ranges are inclusive and sorted. Holes are looked for from `start` (an int, or a dict
    source -> int; seqs start at 1, so 1 unless this consumer joined late) up to the highest seq
    seen of that source, received or declared; seqs above it are not known yet. A gap record
    with first_seq > seq covers nothing. Memory and time grow with the number of readings, not
    with the width of the seq ranges."""
    per_source = {}
    for r in readings:
        s = per_source.setdefault(r["source"], {"received": [], "declared": set()})
        if r["kind"] == "gap":
            s["declared"].add((r["first_seq"], r["seq"], r["reason"]))
        else:
            s["received"].append((r["seq"], r["seq"]))
    result = {}
    for source in sorted(per_source):
        s = per_source[source]
        received = _merge(s["received"])
        declared = sorted(s["declared"])
        covered = _merge(received + [(f, l) for f, l, _ in declared if f <= l])
        lo = start.get(source, 1) if isinstance(start, dict) else start
        holes, nxt = [], lo
        for first, last in covered:
            if last < nxt:
                continue
            if first > nxt:
                holes.append((nxt, first - 1))
            nxt = last + 1
        result[source] = {"received": received, "declared_gaps": declared, "undeclared_gaps": holes}
    return result
