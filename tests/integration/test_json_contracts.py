"""The status and health contracts over an agent's restarts (issue 17, docs/topics.md "JSON
messages: schemas and stability"), with the real agent, broker and units; every message is also
checked against schema/json/ (the harness's watcher):
- the first health message comes right after the birth message, not at the interval (60 s here);
- birth and health carry the process's run_id, new at every start; health counters start at 0
  with each run (uplink.readings_acked is 0 in the first health message after a restart);
- the clean-shutdown offline message and the last will (after kill -9) have the same members,
  the same run_id as that run's birth, and differ only in "clean";
- envelope_seq continues at +1 after a clean restart, and jumps (a gap, never a repeat) only
  after a crash;
- health.store carries the documented salvaged counter."""
import json
import time

import harness as h

SITE, GW = "cnsha", "gw-test-01"
STATUS, HEALTH = f"eport/v1/{SITE}/{GW}/status", f"eport/v1/{SITE}/{GW}/health"
PER_RUN = 20


class Messages:
    """Every status and health message, in order, from a background mosquitto_sub -v."""

    def __init__(self, work, broker):
        self.path = work.file("status-health.txt")
        self.proc = h.spawn(["mosquitto_sub", "-p", str(broker.port), "-q", "1", "-v", "-t", STATUS, "-t", HEALTH],
                            stdout=open(self.path, "w"))
        time.sleep(0.3)

    def all(self):
        out = []
        with open(self.path) as f:
            for line in f:
                if line.endswith("\n") and line.strip():
                    topic, _, payload = line.rstrip("\n").partition(" ")
                    out.append((topic.rsplit("/", 1)[1], h.check_json(topic, payload)))
        return out

    def wait(self, what, pred, timeout=15, after=0):
        found = []
        h.wait_until(lambda: found.extend(m for i, (k, m) in enumerate(self.all()) if i >= after and k == what and pred(m))
                     or found, timeout, what)
        return found[0]


def envelopes(path):
    with open(path) as f:
        return [json.loads(line)["envelope"] for line in f if line.startswith('{"envelope"') and line.endswith("\n")]


def test_json_contracts(work):
    broker = h.Broker(work)
    broker.start()
    msgs = Messages(work, broker)
    tail_out = work.file("envelopes.jsonl")
    tail = h.spawn([h.TAIL, "--broker", broker.uri, "--envelopes"], stdout=open(tail_out, "w"),
                   stderr=open(work.file("tail.err"), "w"))
    h.wait_until(lambda: "subscribed" in open(work.file("tail.err")).read(), 10, "eport-tail subscription")
    agent = h.Agent(work, broker.uri, extra="[health]\ninterval_s = 60\n")
    runs, seqs = [], []

    def run(n):
        """Start, birth, first health, PER_RUN readings published; returns (birth, health, envelope seqs)."""
        mark = len(msgs.all())
        agent.start()
        birth = msgs.wait("status", lambda m: m["state"] == "online", after=mark)
        first = msgs.wait("health", lambda m: True, after=mark)
        assert first["run_id"] == birth["run_id"], (birth, first)
        # At once after the birth, not at the 60 s interval (the agent's own clock on both).
        assert first["time_utc_ms"] - birth["time_utc_ms"] < 5000, (birth, first)
        assert first["uplink"]["readings_acked"] == 0 and first["uptime_s"] < 10, first
        assert first["store"]["salvaged"] == 0 and first["store"]["recovered_from"] == "", first["store"]
        before = len(envelopes(tail_out))
        p = h.run_sim(agent, units=1, rate=50, count=PER_RUN, acked_log=work.file(f"acked-{n}.jsonl"), seed=n)
        assert p.returncode == 0, p.stdout + p.stderr
        h.wait_until(lambda: len(envelopes(tail_out)) > before, 15, "the run's envelopes")
        time.sleep(1.5)  # the rest of them (max_age 1 s)
        got = [e["envelope_seq"] for e in envelopes(tail_out)[before:]]
        h.log(f"run {n}: run_id {birth['run_id']}, first health {first['time_utc_ms'] - birth['time_utc_ms']} ms "
              f"after the birth, envelope_seq {got}")
        runs.append(birth["run_id"])
        seqs.append(got)
        return birth

    run(1)
    mark = len(msgs.all())
    assert agent.terminate() == 0
    clean = msgs.wait("status", lambda m: m["state"] == "offline", after=mark)
    assert clean == {"state": "offline", "gateway": GW, "run_id": runs[0], "clean": True}, clean

    run(2)
    assert runs[1] != runs[0], "a new run id at every start"
    assert seqs[1][0] == seqs[0][-1] + 1, f"a clean restart continues envelope_seq at +1: {seqs[0]} then {seqs[1]}"
    mark = len(msgs.all())
    agent.kill9()
    will = msgs.wait("status", lambda m: m["state"] == "offline", after=mark)
    assert will == {"state": "offline", "gateway": GW, "run_id": runs[1], "clean": False}, will
    assert set(will) == set(clean), "the last will and the clean offline message have the same members"

    run(3)
    assert len(set(runs)) == 3
    assert seqs[2][0] > seqs[1][-1], f"after a crash envelope_seq jumps, never repeats: {seqs[1]} then {seqs[2]}"
    every = [s for r in seqs for s in r]
    assert every == sorted(set(every)), f"envelope_seq strictly increasing over the runs: {every}"
    assert agent.terminate() == 0
    tail.send_signal(2)
    h.log(f"first health right after each birth; run ids {runs}; offline messages alike; envelope_seq "
          f"{seqs[0][-1]} -> {seqs[1][0]} after a clean restart, {seqs[1][-1]} -> {seqs[2][0]} after kill -9")


if __name__ == "__main__":
    h.main(test_json_contracts)
