"""The data budget: once the day's bytes are used up, alarms still go out and
everything else waits in the outbox (and is counted there)."""
import time

import harness as h

ALARM = {("seal", "opened"), ("seal", "tampered"), ("door", "open")}


def test_budget(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)
    agent = h.Agent(work, broker.uri, extra="[budget]\nbytes_per_day = 20000\n[publish]\nmax_readings = 50\n")
    agent.start()
    p = h.run_sim(agent, units=20, rate=200, count=250, acked_log=work.file("acked.jsonl"))
    assert p.returncode == 0, p.stdout + p.stderr
    acked = h.read_jsonl(work.file("acked.jsonl"))
    alarms = [r for r in acked if (r["kind"], r.get("state")) in ALARM]
    assert alarms
    h.wait_until(lambda: {h.key(r) for r in alarms} <= {h.key(r) for r in tail.readings()}, 30, "every alarm")
    time.sleep(2)
    assert agent.terminate() == 0
    tail.stop()
    got = tail.readings()
    routine = [r for r in got if (r["kind"], r.get("state")) not in ALARM]
    assert len(routine) < len(acked) - len(alarms), "the budget held nothing back"
    stats = h.store_stats(agent)
    waiting = stats["total"]["rows"]
    assert waiting == len(acked) - len({h.key(r) for r in got}), (waiting, stats)
    assert "data budget used up" in agent.read_log()
    # The use is kept with the store: a restart does not open the budget again.
    agent.start()
    time.sleep(3)
    assert agent.terminate() == 0
    still = h.store_stats(agent)["total"]["rows"]
    assert still == waiting, f"after a restart {waiting - still} held readings went out over the budget"
    h.log(f"budget 20000 B/day: all {len(alarms)} alarms sent, {len(routine)} routine readings sent, "
          f"{waiting} waiting in the outbox")


if __name__ == "__main__":
    h.main(test_budget)
