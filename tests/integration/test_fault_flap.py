"""The uplink flaps: every 3 s the proxy between agent and broker drops every
connection (every other time it also refuses reconnects for 1 s) while units
keep sending. Every reading the agent acknowledged to a unit must arrive."""
import time

import harness as h
from faultproxy import FaultProxy

FLAP_EVERY_S = 3.0


def test_fault_flap(work):
    broker = h.Broker(work)
    broker.start()
    proxy = FaultProxy(broker.port).start()
    tail = h.Tail(work, broker.uri, client_id="flap-tail")
    agent = h.Agent(work, proxy.uri)
    agent.start()
    acked_log = work.file("acked.jsonl")
    units, count = 10, 600
    sim = h.run_sim(agent, units=units, rate=30, count=count, acked_log=acked_log, background=True)
    flaps = 0
    next_flap = time.monotonic() + FLAP_EVERY_S
    while sim.poll() is None:
        if time.monotonic() >= next_flap:
            flaps += 1
            dropped = proxy.drop()
            if flaps % 2 == 0:
                proxy.refuse()
                time.sleep(1.0)
                proxy.accept()
            h.log(f"flap {flaps}: dropped {dropped} connection(s){', refused for 1 s' if flaps % 2 == 0 else ''}")
            next_flap += FLAP_EVERY_S
        time.sleep(0.05)
    out, err = sim.communicate()
    h.log(out.strip())
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    assert flaps >= 5, f"only {flaps} flaps: the run was too short to mean anything"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == units * count, f"{len(acked)} of {units * count} readings acknowledged to the units"
    # The link stays up now: everything still in the outbox drains.
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= len(acked), 60, "every acked reading")
    assert agent.terminate() == 0
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    assert proxy.connections > flaps // 2, f"agent reconnected only {proxy.connections} times over {flaps} flaps"
    log = agent.read_log()
    assert log.count("connection lost") + log.count("publish failed") >= 1, "the agent never noticed a flap"
    proxy.stop()
    broker.stop()
    h.log(f"all {len(acked)} readings arrived across {flaps} flaps ({proxy.connections} connections); {dups} duplicates")


if __name__ == "__main__":
    h.main(test_fault_flap)
