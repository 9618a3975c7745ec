"""Failover across two real brokers: the preferred one is down, so the agent
publishes to the second; when the preferred one comes back the agent
returns to it after mqtt.failover_return_s; then the second goes away. Every
acknowledged reading reaches a subscriber on one broker or the other."""
import time

import harness as h


def test_failover(work):
    a_work, b_work = h.Workdir("broker-a"), h.Workdir("broker-b")
    a, b = h.Broker(a_work), h.Broker(b_work)
    b.start()
    tail_b = h.Tail(work, b.uri, name="tail-b")
    agent = h.Agent(work, f"{a.uri},{b.uri}")
    with open(agent.config) as f:
        text = f.read()
    with open(agent.config, "w") as f:
        f.write(text.replace("[mqtt]\n", "[mqtt]\nfailover_return_s = 10\nconnect_timeout_s = 2\n"))
    agent.start()
    sim = h.run_sim(agent, units=10, rate=50, count=1000, acked_log=work.file("acked.jsonl"), background=True)
    h.wait_until(lambda: "not the preferred broker" in agent.read_log(), 20, "failover to the second broker")
    time.sleep(2)
    a.start()
    tail_a = h.Tail(work, a.uri, name="tail-a")
    h.wait_until(lambda: f"connected to {a.uri}" in agent.read_log(), 30, "return to the preferred broker")
    h.log("back on the preferred broker")
    time.sleep(1)
    b.stop()
    out, err = sim.communicate(timeout=120)
    assert sim.returncode == 0, out + err
    acked = h.read_jsonl(work.file("acked.jsonl"))
    both = lambda: tail_a.readings() + tail_b.readings()  # noqa: E731
    h.wait_until(lambda: len({h.key(r) for r in both()}) >= len(acked), 30, "every acked reading on A or B")
    assert agent.terminate() == 0
    tail_a.stop()
    tail_b.stop()
    dups = h.check_all_arrived(acked, both())
    on_b, on_a = len(tail_b.readings()), len(tail_a.readings())
    assert on_b > 0 and on_a > 0, (on_a, on_b)
    a.stop()
    a_work.cleanup()
    b_work.cleanup()
    h.log(f"{len(acked)} readings: {on_b} via the second broker, {on_a} via the preferred one after returning; "
          f"{dups} duplicates")


if __name__ == "__main__":
    h.main(test_failover)
