"""10,000 readings from 50 simulated units reach a subscriber exactly as sent,
field by field, none missing: sim -> agent -> SQLite -> mosquitto -> eport-tail."""
import subprocess

import harness as h


def test_delivery(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)
    # A foreign payload on a data topic: tail prints an error line, carries on.
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", "eport/v1/cnsha/gw-rogue/data/alarm",
                    "-m", "this is not a flatbuffer"], check=True, timeout=10)
    h.wait_until(lambda: len(tail.errors()) == 1, 10, "tail's error line for the foreign payload")
    assert "not an EPT1 envelope" in tail.errors()[0], tail.errors()
    agent = h.Agent(work, broker.uri)
    agent.start()
    acked_log = work.file("acked.jsonl")
    p = h.run_sim(agent, units=50, rate=100, count=200, acked_log=acked_log)
    h.log(p.stdout.strip())
    assert p.returncode == 0, f"eport-sim failed: {p.stdout} {p.stderr}"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == 10000, f"sim got {len(acked)} acks, expected 10000"
    h.wait_until(lambda: len(tail.readings()) >= 10000, 30, "10000 readings at the subscriber")
    assert agent.terminate() == 0
    tail.stop()
    received = tail.readings()
    dups = h.check_all_arrived(acked, received)
    assert dups == 0, f"{dups} duplicates on a clean run"
    assert len(received) == 10000
    assert len(tail.errors()) == 1, "only the foreign payload may fail to decode"
    kinds = {r["kind"] for r in received}
    assert kinds == {"position", "sensor", "seal", "door"}, kinds
    h.log(f"10000 readings from 50 units delivered field by field; kinds {sorted(kinds)}")
    agent_log = agent.read_log()
    assert "0 waiting in the outbox" in agent_log, agent_log


if __name__ == "__main__":
    h.main(test_delivery)
