"""Connections cut in the middle of an MQTT packet, over and over: the proxy
forwards only the first bytes of a chunk and closes, alternately on the way
to the broker (a PUBLISH cut short) and on the way back (a PUBACK or CONNACK
cut short). Every acknowledged reading must arrive, none altered."""
import time

import harness as h
from faultproxy import DOWN, UP, FaultProxy

CUTS = 8


def test_fault_cut(work):
    broker = h.Broker(work)
    broker.start()
    proxy = FaultProxy(broker.port).start()
    tail = h.Tail(work, broker.uri, client_id="cut-tail")
    agent = h.Agent(work, proxy.uri)
    agent.start()
    acked_log = work.file("acked.jsonl")
    units, count = 10, 600
    sim = h.run_sim(agent, units=units, rate=30, count=count, acked_log=acked_log, background=True)
    done = 0
    for i in range(CUTS):
        time.sleep(1.5)
        # Upstream: 7 bytes is inside the fixed header + topic of a PUBLISH,
        # 1000 bytes inside its payload (an envelope). Downstream: 2 bytes of
        # a 4-byte PUBACK (or of a CONNACK).
        direction, keep = [(UP, 7), (DOWN, 2), (UP, 1000), (DOWN, 2)][i % 4]
        proxy.cut(keep, direction)
        if proxy.wait_cuts(done + 1, 10):
            done += 1
            h.log(f"cut {done}: {direction} after {keep} bytes")
        else:
            h.log(f"cut {i + 1} ({direction}) did not happen within 10 s")
            proxy.passthrough()  # disarm
    proxy.passthrough()
    out, err = sim.communicate(timeout=120)
    h.log(out.strip())
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    assert done >= CUTS - 1, f"only {done} of {CUTS} cuts happened"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == units * count
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= len(acked), 60, "every acked reading")
    assert agent.terminate() == 0
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    assert not tail.errors(), f"the subscriber saw broken envelopes: {tail.errors()[:3]}"
    assert proxy.connections >= done, "the agent did not reconnect after every cut"
    proxy.stop()
    broker.stop()
    h.log(f"{done} cuts mid-packet; all {len(acked)} readings arrived intact; {dups} duplicates")


if __name__ == "__main__":
    h.main(test_fault_cut)
