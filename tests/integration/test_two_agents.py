"""Two agents on one configuration (a unit file and a hand-started copy, a
second container on the same volume): the second exits non-zero naming the
store and the pid that holds it, and touches neither the store nor the
socket; a third with its own store but the same UNIX socket exits non-zero
too ("another agent serves ..."). The first keeps serving throughout: its
socket is still there and every reading a unit sends afterwards arrives."""
import os
import subprocess

import harness as h


def test_two_agents(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri, client_id="two-agents-tail")
    first = h.Agent(work, broker.uri)
    first.start()
    inode = os.stat(first.socket).st_ino

    # The same configuration again.
    p = subprocess.run([h.AGENT, "--config", first.config], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, f"a second agent on the same store started: {p.stdout} {p.stderr}"
    expected = f"in use by another agent (pid {first.proc.pid})"
    assert first.db in p.stderr and expected in p.stderr, p.stderr
    h.log(f"second agent exited {p.returncode}: {p.stderr.strip().splitlines()[-1]}")

    # Its own store, the same socket.
    other = work.file("other.toml")
    with open(first.config) as f:
        text = f.read().replace(first.db, work.file("other.db"))
    with open(other, "w") as f:
        f.write(text)
    p = subprocess.run([h.AGENT, "--config", other], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, f"a third agent took over the socket: {p.stdout} {p.stderr}"
    assert f"another agent serves unix:{first.socket}" in p.stderr, p.stderr
    h.log(f"third agent exited {p.returncode}: {p.stderr.strip().splitlines()[-1]}")

    assert first.proc.poll() is None, "the first agent stopped"
    assert os.stat(first.socket).st_ino == inode, "the first agent's socket file was replaced or removed"
    acked_log = work.file("acked.jsonl")
    sim = h.run_sim(first, units=5, rate=50, count=40, acked_log=acked_log)
    assert sim.returncode == 0, sim.stdout + sim.stderr
    acked = h.read_jsonl(acked_log)
    assert len(acked) == 200, f"{len(acked)} acks, expected 200"
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= 200, 30, "every reading at the subscriber")
    assert first.terminate() == 0
    tail.stop()
    h.check_all_arrived(acked, tail.readings())
    assert not os.path.exists(first.socket), "the first agent left its socket behind"
    h.log("second and third agents refused; the first served 200 readings after them")


if __name__ == "__main__":
    h.main(test_two_agents)
