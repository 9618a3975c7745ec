"""Noisy links (issue: an ACK that covered a reading never stored): units
whose first transmission of every 10th READING has a bad CRC, on serial
lines (pty pairs) and over TCP, plus UNIX units that drop and reorder frames
and declare blocks of readings discarded (DISCARD, as a unit whose flash
filled up would). Every reading the units generated reaches a real
subscriber (eport-tail) field by field, none is lost, and every declared
discard arrives as a gap record naming exactly the seqs that are missing,
so that per source the received readings plus the declared gaps cover every
seq with no hole."""
import os
import time

import harness as h

SECONDS = float(os.environ.get("EPORT_NOISY_SECONDS", "15"))
RATE = 10
UNITS = 5


def covered(rows):
    """Per source: the seqs covered by readings and by declared gaps."""
    out = {}
    for r in rows:
        seqs = out.setdefault(r["source"], set())
        if r["kind"] == "gap":
            seqs.update(range(r["first_seq"], r["seq"] + 1))
        else:
            seqs.add(r["seq"])
    return out


def test_noisy_links(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)
    pty_list = work.file("ptys.txt")
    runs = {}
    common = ["--rate", RATE, "--duration", SECONDS, "--ack-timeout", 2000, "--drain-timeout", 60]
    runs["pty"] = h.sim(["--pty", UNITS, "--pty-list", pty_list, "--prefix", "tty", "--seed", 11,
                          "--corrupt-every", 10, "--acked-log", work.file("acked-pty.jsonl")] + common,
                         background=True)
    ptys = h.read_pty_list(pty_list, UNITS)
    agent = h.FleetAgent(work, broker.uri, tcp=True, serial_ports=ptys, serial_baud=115200)
    agent.start()
    runs["tcp"] = h.sim(agent.sim_key_args() + ["--connect", agent.tcp_endpoint, "--units", UNITS, "--prefix", "tcu", "--seed", 12,
                          "--corrupt-every", 10, "--acked-log", work.file("acked-tcp.jsonl")] + common,
                         background=True)
    runs["unix"] = h.sim(["--connect", "unix:" + agent.socket, "--units", UNITS, "--prefix", "ux", "--seed", 13,
                           "--drop-every", 13, "--reorder-every", 7, "--discard-every", 20, "--discard-count", 4,
                           "--acked-log", work.file("acked-unix.jsonl")] + common,
                          background=True)
    results = {}
    for name, p in runs.items():
        out, err = p.communicate(timeout=SECONDS + 180)
        h.log(f"{name}: {out.strip().splitlines()[-1]}")
        assert p.returncode == 0, f"eport-sim ({name}) ended with readings not acknowledged: {out} {err}"
        results[name] = h.summary(out)

    s = results
    assert s["pty"]["faults_corrupted"] > 0 and s["tcp"]["faults_corrupted"] > 0, s
    assert s["unix"]["faults_dropped"] > 0 and s["unix"]["faults_reordered"] > 0, s
    assert s["unix"]["declared_discarded"] > 0, s
    for name, r in s.items():
        assert r["generated"] == r["acked"] + r["declared_discarded"], f"{name}: {r}"

    acked = []
    for name in runs:
        acked += h.read_jsonl(work.file(f"acked-{name}.jsonl"))
    generated = sum(r["generated"] for r in s.values())
    discarded = sum(r["declared_discarded"] for r in s.values())
    assert len({h.key(r) for r in acked}) == len(acked) == generated - discarded
    want = {h.key(r) for r in acked}
    h.wait_until(lambda: want <= {h.key(r) for r in tail.readings()}, 60, f"{len(acked)} readings at the subscriber")
    # The gap records travel as events: wait until every declared seq is covered.
    def complete():
        cov = covered(tail.readings())
        return all(cov.get(src, set()) >= set(range(1, max(cov.get(src, {0})) + 1)) for src in cov) and \
            sum(len(v) for v in cov.values()) >= generated
    h.wait_until(complete, 60, "every seq of every unit covered by a reading or a declared gap")
    assert agent.terminate() == 0
    tail.stop()
    received = tail.readings()
    dups = h.check_all_arrived(acked, received)

    gaps = [r for r in received if r["kind"] == "gap"]
    declared = sum(r["seq"] - r["first_seq"] + 1 for r in {h.key(g): g for g in gaps}.values())
    assert declared == discarded, f"{declared} seqs in gap records, the units declared {discarded}"
    assert {g["reason"] for g in gaps} == {"flash_full"}
    assert all(g["source"].startswith("ux-") for g in gaps), "only the discarding units declared gaps"
    # Per source: readings and declared gaps cover 1..last with no hole, and
    # no seq is both a reading and inside a gap.
    for src, seqs in covered(received).items():
        assert seqs == set(range(1, max(seqs) + 1)), f"{src}: holes at {sorted(set(range(1, max(seqs) + 1)) - seqs)[:10]}"
        reading_seqs = {r["seq"] for r in received if r["source"] == src and r["kind"] != "gap"}
        gap_seqs = set()
        for g in gaps:
            if g["source"] == src:
                gap_seqs.update(range(g["first_seq"], g["seq"] + 1))
        assert not reading_seqs & gap_seqs, f"{src}: seqs both delivered and declared discarded"

    bridge = h.bridge_stopped(agent.read_log())
    corrupted = s["pty"]["faults_corrupted"] + s["tcp"]["faults_corrupted"]
    assert bridge["frame errors"] >= corrupted, bridge
    h.log(f"noisy links: {generated} readings generated by {3 * UNITS} units, {corrupted} frames corrupted, "
          f"{s['unix']['faults_dropped']} dropped, {s['unix']['faults_reordered']} reordered, {discarded} seqs "
          f"declared discarded in {len(gaps)} gap records; {len(acked)} readings at the subscriber, 0 lost, "
          f"{dups} duplicate deliveries; agent: {bridge}")


if __name__ == "__main__":
    h.main(test_noisy_links)
