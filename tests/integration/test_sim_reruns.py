"""eport-sim run again and again against one agent (issue 17): every reading the simulator
reports acknowledged (its --acked-log) reached the agent and a subscriber, field by field,
in every run, not only the first. A unit numbers nothing before WELCOME (docs/firmware-bridge.md
7.1): a run that starts with seq 1 and generates before its WELCOME must not give that reading
seq 1, because WELCOME's last_stored_seq (the previous run's last seq) covers it and the unit
would free it unsent and report it acked. The runs: two with the agent up (readings generated
within milliseconds of the connect), one started while the agent is down, so that for seconds
every reading is generated before any WELCOME."""
import os
import time

import harness as h

UNITS, COUNT = 2, 60


def test_sim_reruns(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)
    agent = h.Agent(work, broker.uri)
    agent.start()
    acked_all, last_seq = [], {}

    def check_run(run, acked):
        assert len(acked) == UNITS * COUNT, f"run {run}: {len(acked)} acked, expected {UNITS * COUNT}"
        for unit in sorted({r["source"] for r in acked}):
            seqs = [r["seq"] for r in acked if r["source"] == unit]
            # Numbered after WELCOME: the run continues where the agent's custody ends.
            assert seqs == list(range(last_seq.get(unit, 0) + 1, last_seq.get(unit, 0) + 1 + COUNT)), \
                f"run {run}, {unit}: acked seqs {seqs[:5]}..{seqs[-3:]}, the agent had up to {last_seq.get(unit, 0)}"
            last_seq[unit] = seqs[-1]

    for run in (1, 2):
        p = h.run_sim(agent, units=UNITS, rate=200, count=COUNT, acked_log=work.file(f"acked-{run}.jsonl"), seed=run)
        assert p.returncode == 0, f"run {run}: {p.stdout} {p.stderr}"
        acked = h.read_jsonl(work.file(f"acked-{run}.jsonl"))
        check_run(run, acked)
        acked_all += acked

    # Run 3 starts with the agent down: it generates for 2 s before any WELCOME.
    assert agent.terminate() == 0
    if os.path.exists(agent.socket):
        os.unlink(agent.socket)  # so that agent.start() waits for the new one
    sim = h.run_sim(agent, units=UNITS, rate=20, count=COUNT, acked_log=work.file("acked-3.jsonl"), seed=3,
                    background=True)
    time.sleep(2.0)
    agent.start()
    out, err = sim.communicate(timeout=120)
    assert sim.returncode == 0, f"run 3: {out} {err}"
    acked = h.read_jsonl(work.file("acked-3.jsonl"))
    check_run(3, acked)
    acked_all += acked

    h.wait_until(lambda: len({h.key(r) for r in tail.readings()}) >= len(acked_all), 30,
                 f"{len(acked_all)} readings at the subscriber")
    assert agent.terminate() == 0
    tail.stop()
    h.check_all_arrived(acked_all, tail.readings())
    h.log(f"3 eport-sim runs against one agent: all {len(acked_all)} readings reported acked arrived, "
          f"seqs continuing from the agent's custody ({last_seq})")


if __name__ == "__main__":
    h.main(test_sim_reruns)
