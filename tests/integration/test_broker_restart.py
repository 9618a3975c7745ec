"""The broker is stopped for 10 s and restarted while units keep sending:
the agent buffers in its outbox, reconnects, and nothing is lost."""
import time

import harness as h


def test_broker_restart(work):
    broker = h.Broker(work, persistent=True)
    broker.start()
    tail = h.Tail(work, broker.uri, client_id="restart-tail")
    agent = h.Agent(work, broker.uri)
    agent.start()
    acked_log = work.file("acked.jsonl")
    sim = h.run_sim(agent, units=10, rate=40, count=600, acked_log=acked_log, background=True)
    time.sleep(2)
    broker.stop()
    h.log("broker stopped for 10 s")
    time.sleep(10)
    broker.start()
    out, err = sim.communicate(timeout=120)
    h.log(out.strip())
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == 6000
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= 6000, 60, "every acked reading")
    assert agent.terminate() == 0
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    log = agent.read_log()
    assert "connection lost" in log or "connect to" in log, "the agent never noticed the outage"
    h.log(f"all 6000 readings arrived across a 10 s broker outage; {dups} duplicates")


if __name__ == "__main__":
    h.main(test_broker_restart)
