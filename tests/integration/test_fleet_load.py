"""Load: 1,000 simulated units over TCP plus 10 over serial lines (pty pairs)
into one agent for EPORT_FLEET_SECONDS (default 60) at EPORT_FLEET_RATE
readings/s per unit (default 2): every reading the agent acknowledged reaches
the subscriber (eport-tail), field by field. Prints the throughput."""
import os
import time

import harness as h

SECONDS = float(os.environ.get("EPORT_FLEET_SECONDS", "60"))
RATE = float(os.environ.get("EPORT_FLEET_RATE", "2"))
TCP_UNITS = int(os.environ.get("EPORT_FLEET_TCP_UNITS", "1000"))
PTY_UNITS = int(os.environ.get("EPORT_FLEET_PTY_UNITS", "10"))


def test_fleet_load(work):
    t0 = time.monotonic()
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)

    # The serial fleet first: its pty paths go into the agent's config.
    pty_list = work.file("ptys.txt")
    acked_pty = work.file("acked-pty.jsonl")
    serial_sim = h.sim(["--pty", PTY_UNITS, "--pty-list", pty_list, "--prefix", "tty", "--rate", RATE,
                         "--duration", SECONDS, "--seed", 3, "--acked-log", acked_pty, "--drain-timeout", 60],
                        background=True)
    ptys = h.read_pty_list(pty_list, PTY_UNITS)
    agent = h.FleetAgent(work, broker.uri, tcp=True, serial_ports=ptys)
    agent.start()
    acked_tcp = work.file("acked-tcp.jsonl")
    tcp_sim = h.sim(agent.sim_key_args() + ["--connect", agent.tcp_endpoint, "--units", TCP_UNITS, "--prefix", "tcu", "--rate", RATE,
                      "--duration", SECONDS, "--seed", 4, "--acked-log", acked_tcp, "--drain-timeout", 60, "--quiet"],
                     background=True)
    h.log(f"{TCP_UNITS} TCP units and {PTY_UNITS} serial units sending {RATE}/s each for {SECONDS:.0f} s")
    started = time.monotonic()
    results = {}
    for name, p in (("tcp", tcp_sim), ("serial", serial_sim)):
        out, err = p.communicate(timeout=SECONDS + 180)
        h.log(f"{name}: {out.strip().splitlines()[-1]}")
        assert p.returncode == 0, f"eport-sim ({name}) failed: {out} {err}"
        results[name] = h.summary(out)
    sending = time.monotonic() - started

    acked = h.read_jsonl(acked_tcp) + h.read_jsonl(acked_pty)
    want = {h.key(r) for r in acked}
    assert len(want) == len(acked), "a reading was acknowledged twice to the sim"
    h.wait_until(lambda: want <= {h.key(r) for r in tail.readings()}, 120, f"{len(acked)} readings at the subscriber")
    delivered = time.monotonic() - started
    assert agent.terminate() == 0
    tail.stop()
    received = tail.readings()
    dups = h.check_all_arrived(acked, received)

    sources = {r["source"] for r in acked}
    tty_sources = {s for s in sources if s.startswith("tty-")}
    assert len(tty_sources) == PTY_UNITS, f"readings from {len(tty_sources)} of {PTY_UNITS} serial units"
    assert len(sources) - len(tty_sources) == TCP_UNITS, f"readings from {len(sources) - len(tty_sources)} TCP units"
    kinds = {r["kind"] for r in acked}
    assert kinds == {"position", "sensor", "seal", "door"}, kinds
    log = agent.read_log()
    bridge = h.bridge_stopped(log)
    assert bridge["serial opens"] >= PTY_UNITS, bridge
    n_serial = sum(1 for r in acked if r["source"].startswith("tty-"))
    h.log(f"load: {len(acked)} readings acknowledged ({len(acked) - n_serial} over TCP, {n_serial} over serial) "
          f"in {sending:.1f} s = {len(acked) / sending:.0f} readings/s; all at the subscriber after "
          f"{delivered:.1f} s; {dups} duplicate deliveries; resent by units: "
          f"{results['tcp']['resent'] + results['serial']['resent']}; whole test {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    h.main(test_fleet_load)
