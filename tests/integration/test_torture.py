"""Torture: SIGKILL the agent at random moments while units send and the
publisher drains. After every kill the store passes PRAGMA integrity_check
(eport-agent store verify), and in the end the subscriber has every reading
the agent acknowledged (duplicates allowed and counted).

Iterations: EPORT_TORTURE_ITERATIONS (default 20; the documented long run is
500: EPORT_TORTURE_ITERATIONS=500 /usr/bin/python3 tests/integration/test_torture.py)."""
import os
import random
import subprocess
import time

import harness as h

ITERATIONS = int(os.environ.get("EPORT_TORTURE_ITERATIONS", "20"))


def test_torture(work):
    rng = random.Random(int(os.environ.get("EPORT_TORTURE_SEED", "6346")))
    broker = h.Broker(work, persistent=True)
    broker.start()
    tail = h.Tail(work, broker.uri, client_id="torture-tail")
    agent = h.Agent(work, broker.uri, extra="[publish]\nmax_age_ms = 20\n")
    agent.start()
    acked_log = work.file("acked.jsonl")
    rate, units = 100, 10
    count = int((ITERATIONS * 0.9 + 3) * rate)
    sim = h.run_sim(agent, units=units, rate=rate, count=count, acked_log=acked_log, background=True,
                    drain_timeout=120)
    for i in range(ITERATIONS):
        time.sleep(rng.uniform(0.05, 1.2))
        agent.kill9()
        v = subprocess.run([h.AGENT, "store", "verify", "--config", agent.config], capture_output=True, text=True,
                           timeout=60)
        assert v.returncode == 0 and ": ok" in v.stdout, f"iteration {i}: integrity check failed: {v.stdout} {v.stderr}"
        agent.start()
    h.log(f"{ITERATIONS} SIGKILLs, integrity ok after each")
    out, err = sim.communicate(timeout=300)
    h.log(out.strip())
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == units * count
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= len(acked), 120, "every acked reading")
    assert agent.terminate() == 0
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    h.log(f"all {len(acked)} acknowledged readings arrived across {ITERATIONS} SIGKILLs; {dups} duplicates")


if __name__ == "__main__":
    h.main(test_torture)
