"""The agent is killed with SIGKILL mid-run and restarted: every reading it
had acknowledged still reaches the subscriber (duplicates allowed, counted)."""
import time

import harness as h


def test_kill9(work):
    broker = h.Broker(work, persistent=True)
    broker.start()
    tail = h.Tail(work, broker.uri, client_id="kill9-tail")
    agent = h.Agent(work, broker.uri)
    agent.start()
    acked_log = work.file("acked.jsonl")
    sim = h.run_sim(agent, units=20, rate=50, count=250, acked_log=acked_log, background=True)
    for round_ in range(3):
        time.sleep(1.2)
        agent.kill9()
        time.sleep(0.3)
        agent.start()
        h.log(f"agent restarted (round {round_ + 1})")
    out, err = sim.communicate(timeout=120)
    h.log(out.strip())
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == 5000, f"sim got {len(acked)} acks, expected 5000"
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= 5000, 60, "every acked reading")
    assert agent.terminate() == 0
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    h.log(f"all 5000 acknowledged readings arrived across 3 SIGKILLs; {dups} duplicates")


if __name__ == "__main__":
    h.main(test_kill9)
