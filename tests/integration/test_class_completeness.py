"""Completeness per class (docs/consuming.md, "Completeness per class"; schema 1.5), end to end
with a real mosquitto and real SIGKILLs: units send the standard mix while the agent is killed
twice mid-run. Sensor samples go to the alarm class here ([priority] sensor = "alarm"), so that
the alarm class is busy and interleaved with telemetry. Three subscribers: one of every class
from the start, one of the alarm class only, one of telemetry only that subscribes late. Each
finds, per source and class, the gateway's class counts without a hole
(eport.completeness.class_completeness); the two from the start see every count from 1, across
both kills; the alarm-only subscriber's seq check shows the holes that are other classes'
readings (which is why the class count exists); every acknowledged reading arrived."""
import os
import sys
import time

import harness as h

sys.path.insert(0, os.path.join(h.SOURCE_DIR, "consumers", "python"))
from eport.completeness import class_completeness, completeness  # noqa: E402

UNITS, COUNT = 10, 300


def test_class_completeness(work):
    broker = h.Broker(work, persistent=True)
    broker.start()
    everything = h.Tail(work, broker.uri, client_id="cc-all", name="all")
    alarms = h.Tail(work, broker.uri, client_id="cc-alarm", name="alarm", extra_args=["--topic", "eport/v1/+/+/data/alarm"])
    agent = h.Agent(work, broker.uri, extra='[priority]\nsensor = "alarm"\n')
    agent.start()
    acked_log = work.file("acked.jsonl")
    sim = h.run_sim(agent, units=UNITS, rate=50, count=COUNT, acked_log=acked_log, background=True)
    time.sleep(1.5)
    agent.kill9()
    time.sleep(0.3)
    agent.start()
    late = h.Tail(work, broker.uri, client_id="cc-late", name="late",
                  extra_args=["--topic", "eport/v1/+/+/data/telemetry"])
    time.sleep(1.5)
    agent.kill9()
    time.sleep(0.3)
    agent.start()
    out, err = sim.communicate(timeout=180)
    h.log(out.strip())
    assert sim.returncode == 0, f"eport-sim: {out} {err}"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == UNITS * COUNT, f"sim got {len(acked)} acks"
    want = {h.key(r) for r in acked}
    h.wait_until(lambda: want <= {h.key(r) for r in everything.readings()}, 90, "every acked reading")
    all_readings = everything.readings()
    h.check_all_arrived(acked, all_readings)
    by_key = {h.key(r): r for r in all_readings}
    alarm_keys = {k for k, r in by_key.items() if r["class"] == "alarm"}
    assert len({k[0] for k in alarm_keys}) >= UNITS, "the alarm class should hold readings of every unit"
    h.wait_until(lambda: alarm_keys <= {h.key(r) for r in alarms.readings()}, 60, "every alarm at the alarm subscriber")
    last_telemetry = {}  # source -> its last telemetry seq: published after the late subscriber joined
    for r in by_key.values():
        if r["class"] == "telemetry":
            last_telemetry[r["source"]] = max(last_telemetry.get(r["source"], 0), r["seq"])
    h.wait_until(lambda: set(last_telemetry.items()) <= {h.key(r) for r in late.readings()}, 60,
                 "the late subscriber catches up")
    assert agent.terminate() == 0
    for t in (everything, alarms, late):
        t.stop()

    # From the start, every class: each source's counts are 1..N without a hole or restart, and
    # N is the number of its readings in that class (nothing counted twice across the kills).
    full = class_completeness(all_readings)
    per_class = {}
    for r in by_key.values():
        per_class[(r["source"], r["class"])] = per_class.get((r["source"], r["class"]), 0) + 1
    assert set(full) == set(per_class), (sorted(full), sorted(per_class))
    for k, c in full.items():
        assert c["missing"] == [] and c["restarts"] == [], (k, c)
        assert c["first"][1] == 1 and c["received"] == per_class[k], (k, c, per_class[k])
        counts = sorted(r["class_seq"] for r in by_key.values() if (r["source"], r["class"]) == k)
        assert counts == list(range(1, per_class[k] + 1)), (k, counts[:20])
    classes = sorted({k[1] for k in full})
    h.log(f"all classes: {len(full)} (source, class) counts from 1 without a hole: {classes}")

    # Alarms only: the same counts, no hole; the seq check over them shows other classes' readings as holes.
    alarm_readings = alarms.readings()
    assert {r["class"] for r in alarm_readings} == {"alarm"}
    only = class_completeness(alarm_readings)
    assert set(only) == {k for k in full if k[1] == "alarm"}
    for k, c in only.items():
        assert c["missing"] == [] and c["first"][1] == 1 and c["received"] == per_class[k], (k, c)
    seq_holes = sum(len(c["undeclared_gaps"]) for c in completeness(alarm_readings).values())
    assert seq_holes > 0, "the alarm-only subscriber's seq check should see the other classes as holes"
    h.log(f"alarm only: {len(only)} sources, no hole in their class counts; {seq_holes} seq holes that are other classes")

    # Late, telemetry only: its first counts are above 1, and from there nothing is missing.
    late_readings = late.readings()
    lc = class_completeness(late_readings)
    assert lc, "the late subscriber received nothing"
    for k, c in lc.items():
        assert k[1] == "telemetry" and c["missing"] == [] and c["restarts"] == [], (k, c)
    joined_late = [k for k, c in lc.items() if c["first"][1] > 1]
    assert joined_late, "the late subscriber should have missed the first telemetry of some unit"
    h.log(f"late subscriber: {len(lc)} sources, {len(joined_late)} joined after their first reading, no hole after")


if __name__ == "__main__":
    h.main(test_class_completeness)
