"""Units whose ACKs get lost resend, and every reading is still stored once.
eport-sim ignores every 3rd ACK frame (--drop-acks-every 3), so its units
time out (--ack-timeout 150 ms) and go back to their oldest unacknowledged
reading, over a UNIX socket and over serial lines (pty pairs). The broker is
down, so everything stays in the outbox: `eport-agent store dump` shows each
(source, seq) exactly once, and the agent counted the duplicates."""
import collections

import harness as h


def test_resend(work):
    nobody = f"tcp://127.0.0.1:{h.free_port()}"  # no broker: nothing drains
    pty_list = work.file("ptys.txt")
    acked_log = work.file("acked.jsonl")
    # Rate 4/s per unit: a lost ACK is not covered by the next one before the
    # 150 ms timeout, so the unit really resends.
    sim = h.sim(["--pty", 2, "--units", 4, "--connect", "unix:" + work.file("agent-bridge.sock"),
                  "--pty-list", pty_list, "--rate", 4, "--count", 40, "--ack-timeout", 150,
                  "--drop-acks-every", 3, "--acked-log", acked_log, "--drain-timeout", 30, "--seed", 11],
                 background=True)
    ptys = h.read_pty_list(pty_list, 2)
    agent = h.FleetAgent(work, nobody, serial_ports=ptys)
    agent.start()
    out, err = sim.communicate(timeout=120)
    h.log(out.strip().splitlines()[-1])
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    s = h.summary(out)
    assert s["acks_dropped"] > 0 and s["ack_timeouts"] > 0 and s["resent"] > 0, s
    assert agent.terminate() == 0
    log = agent.read_log()

    acked = h.read_jsonl(acked_log)
    assert len(acked) == 6 * 40, f"sim got {len(acked)} acks, expected 240"
    stored = h.store_dump(agent)
    counts = collections.Counter(h.key(r) for r in stored)
    twice = [k for k, n in counts.items() if n > 1]
    assert not twice, f"stored more than once: {twice[:5]}"
    assert set(counts) == {h.key(r) for r in acked}, "the store and the acknowledged readings differ"
    by_key = {h.key(r): r for r in stored}
    for r in acked:
        assert by_key[h.key(r)] == r, f"{h.key(r)} stored as {by_key[h.key(r)]}, sent as {r}"
    serial_units = {r["source"] for r in acked if r["source"] in ("tcu-0004", "tcu-0005")}
    assert serial_units == {"tcu-0004", "tcu-0005"}, "the pty units' readings are missing"

    bridge = h.bridge_stopped(log)
    agent_line = h.agent_stopped(log)
    assert bridge["duplicates"] > 0, f"the bridge counted no duplicates: {bridge}"
    assert agent_line["readings stored"] == 240, agent_line
    h.log(f"{s['acks_dropped']} ACKs lost, {s['resent']} readings resent after {s['ack_timeouts']} timeouts; "
          f"240 readings stored once each; the agent counted {bridge['duplicates']} duplicates "
          f"(agent line: {agent_line['duplicates']})")


if __name__ == "__main__":
    h.main(test_resend)
