"""A slow link: 300 ms added each way (600 ms round trip, a satellite-like
path) between agent and broker. Everything acknowledged arrives, and the
agent keeps up: the in-flight window hides the latency."""
import time

import harness as h
from faultproxy import FaultProxy

DELAY_MS = 300


def test_fault_delay(work):
    broker = h.Broker(work)
    broker.start()
    proxy = FaultProxy(broker.port).start()
    proxy.delay(DELAY_MS)
    tail = h.Tail(work, broker.uri, client_id="delay-tail")
    agent = h.Agent(work, proxy.uri)
    agent.start()
    acked_log = work.file("acked.jsonl")
    units, count, rate = 10, 400, 40
    t0 = time.monotonic()
    sim = h.run_sim(agent, units=units, rate=rate, count=count, acked_log=acked_log, timeout=120)
    h.log(sim.stdout.strip())
    assert sim.returncode == 0, f"eport-sim: {sim.stdout} {sim.stderr}"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == units * count
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= len(acked), 60, "every acked reading")
    elapsed = time.monotonic() - t0
    assert agent.terminate() == 0
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    send_s = count / rate
    # 400 readings/s offered; with 16 envelopes in flight a 600 ms round trip
    # costs the agent far less than that: it should finish soon after the units.
    assert elapsed < send_s + 10, f"took {elapsed:.1f} s for {send_s:.0f} s of readings: the agent fell behind"
    assert proxy.stats()["connections"] == 1, "the connection did not survive the delay"
    proxy.stop()
    broker.stop()
    h.log(f"all {len(acked)} readings arrived through {DELAY_MS} ms each way in {elapsed:.1f} s "
          f"({send_s:.0f} s of sending); {dups} duplicates")


if __name__ == "__main__":
    h.main(test_fault_delay)
