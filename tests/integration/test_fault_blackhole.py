"""A half-open link: the proxy keeps the agent's connection but forwards
nothing either way, so only MQTT keep-alive (mqtt.keepalive_s = 5, the
minimum) can tell. The agent must notice within about 1.5 keep-alive
intervals, and once the link is back every acknowledged reading arrives."""
import time

import harness as h
from faultproxy import FaultProxy, set_mqtt_keys

KEEPALIVE_S = 5
# Documented in docs/config.md (mqtt.keepalive_s): "a silent link is declared
# dead after 1.5 times this"; 1 s on top for log polling and scheduling.
DETECT_LIMIT_S = 1.5 * KEEPALIVE_S + 1.0


def lost_lines(agent):
    return agent.read_log().count("connection lost")


def test_fault_blackhole(work):
    broker = h.Broker(work)
    broker.start()
    proxy = FaultProxy(broker.port).start()
    tail = h.Tail(work, broker.uri, client_id="blackhole-tail")
    agent = h.Agent(work, proxy.uri)
    set_mqtt_keys(agent, keepalive_s=KEEPALIVE_S)
    agent.start()
    acked_log = work.file("acked.jsonl")
    units, count = 5, 500
    sim = h.run_sim(agent, units=units, rate=20, count=count, acked_log=acked_log, background=True)
    h.wait_until(lambda: len(tail.readings()) > 100, 20, "readings flowing through the proxy")
    before = lost_lines(agent)
    connections = proxy.connections
    proxy.blackhole()
    t0 = time.monotonic()
    h.log("link blackholed")
    h.wait_until(lambda: lost_lines(agent) > before, 4 * KEEPALIVE_S, "the agent to notice the dead link")
    detected = time.monotonic() - t0
    h.log(f"agent noticed the blackhole after {detected:.1f} s (keep-alive {KEEPALIVE_S} s)")
    # Its reconnection attempts go into the blackhole too (no CONNACK) for a while.
    time.sleep(3)
    proxy.passthrough()
    h.log("link back")
    out, err = sim.communicate(timeout=120)
    h.log(out.strip())
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == units * count
    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= len(acked), 60, "every acked reading")
    assert agent.terminate() == 0
    tail.stop()
    dups = h.check_all_arrived(acked, tail.readings())
    assert proxy.connections > connections, "the agent never reconnected"
    assert detected <= DETECT_LIMIT_S, (
        f"the agent took {detected:.1f} s to notice a dead link with keepalive_s = {KEEPALIVE_S} "
        f"(documented: 1.5 x keep-alive = {1.5 * KEEPALIVE_S:.1f} s)")
    proxy.stop()
    broker.stop()
    h.log(f"blackhole noticed in {detected:.1f} s; all {len(acked)} readings arrived; {dups} duplicates")


if __name__ == "__main__":
    h.main(test_fault_blackhole)
