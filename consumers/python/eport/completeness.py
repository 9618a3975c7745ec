"""eport.completeness: which of a source's seqs arrived, which were declared lost at the source
(gap records), and which are missing with nobody saying why (lost in transit, or not arrived
yet); and, per class, which of the gateway's class counts (class_seq, schema 1.5) are missing:
the checkers of docs/consuming.md section 11, over the readings eport.decode gives."""


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


def class_completeness(readings, start=None):
    """Per (source, class), from the decoded readings of ONE gateway (the dicts of
    Codec.decode_payload or the lines eport-tail prints; duplicates allowed; readings without
    "class_seq", from a gateway before schema 1.5, are not counted):

        {(source, class): {"received": N,                  distinct readings counted
                           "first": (seq, class_seq),       the earliest received
                           "missing": [(first, last, next_seq), ...],
                           "restarts": [seq, ...]}}

    A reading's class_seq is the gateway's count of that source's readings in that class
    (1, 2, 3, ...), so within a class the counts of a source have no holes. "missing" lists
    each hole: the class_seqs first..last (inclusive) were stored by the gateway and not
    received; next_seq is the seq of the first reading received after it. Holes are looked for
    from the earliest reading received (a subscriber that joined late sees no hole before it),
    or from start[(source, class)] (the first class_seq you expect, e.g. 1, or one more than
    the last you stored) when given. A count that starts again (a class_seq not above the one
    before, on a later seq: the gateway's store was replaced, or it forgot the idle source)
    is listed in "restarts" by the seq where it did, and holes are looked for from 1 there.
    Memory and time grow with the number of readings."""
    per_key = {}
    for r in readings:
        cs = r.get("class_seq")
        if not cs:
            continue
        per_key.setdefault((r["source"], r["class"]), {})[r["seq"]] = cs
    start = start or {}
    result = {}
    for k in sorted(per_key):
        items = sorted(per_key[k].items())
        first_seq, first_cs = items[0]
        expected = start.get(k)  # the next class_seq expected; None: from the first received
        missing, restarts = [], []
        prev = None
        for seq, cs in items:
            if prev is not None and cs <= prev:
                restarts.append(seq)
                expected = 1
            elif prev is not None:
                expected = prev + 1
            if expected is not None and cs > expected:
                missing.append((expected, cs - 1, seq))
            prev = cs
        result[k] = {"received": len(items), "first": (first_seq, first_cs), "missing": missing,
                     "restarts": restarts}
    return result
