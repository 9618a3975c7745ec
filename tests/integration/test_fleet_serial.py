"""Serial units (pty pairs standing in for UART lines) through agent crashes
and vanished devices: the agent starts with one configured tty missing, is
SIGKILLed and restarted while units keep sending, and keeps running when the
simulator exits and every pty disappears. Every acknowledged reading reaches
the subscriber (duplicates allowed, identified by source and seq)."""
import time

import harness as h

PTYS = 6


def test_fleet_serial(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)
    pty_list = work.file("ptys.txt")
    acked_log = work.file("acked.jsonl")
    sim = h.sim(["--pty", PTYS, "--pty-list", pty_list, "--rate", 20, "--duration", 10, "--seed", 9,
                  "--ack-timeout", 2000, "--acked-log", acked_log, "--drain-timeout", 60], background=True)
    ptys = h.read_pty_list(pty_list, PTYS)
    missing = work.file("ttyUSB-unplugged")
    agent = h.FleetAgent(work, broker.uri, serial_ports=ptys + [missing], serial_baud=921600)
    agent.start()
    time.sleep(3)
    agent.kill9()
    time.sleep(1)
    agent.start()
    h.log("agent restarted after SIGKILL")
    time.sleep(2)
    assert agent.terminate() == 0
    agent.start()
    h.log("agent restarted after SIGTERM")
    out, err = sim.communicate(timeout=120)
    h.log(out.strip().splitlines()[-1])
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    acked = h.read_jsonl(acked_log)
    assert len({r["source"] for r in acked}) == PTYS
    h.wait_until(lambda: {h.key(r) for r in acked} <= {h.key(r) for r in tail.readings()}, 60,
                 "every acknowledged reading at the subscriber")

    # The simulator is gone and with it every pty: the agent carries on.
    h.wait_until(lambda: agent.read_log().count("lost (unit") >= PTYS, 10, "the agent noticing the lost lines")
    time.sleep(1)
    assert agent.proc.poll() is None, "the agent died when its serial devices vanished"
    assert agent.terminate() == 0
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    log = agent.read_log()
    assert f"open serial {missing}: No such file or directory" in log, "the missing tty was not reported"
    s = h.summary(out)
    h.log(f"{len(acked)} readings from {PTYS} serial units across a SIGKILL, a restart and vanished devices; "
          f"{dups} duplicate deliveries; {s['nacked']} NACKs (NO_HELLO after each restart) answered with a new HELLO")


if __name__ == "__main__":
    h.main(test_fleet_serial)
