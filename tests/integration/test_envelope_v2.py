"""publish.envelope_format = "v2": 2,000 readings from 20 simulated units reach
eport-tail through a real mosquitto exactly as sent, field by field, none
missing; every envelope is a v2 one (EPT2, zstd with the v2 dictionary) whose
site and gateway come from its topic. sim -> agent -> SQLite -> mosquitto -> eport-tail."""
import json

import harness as h


def test_envelope_v2(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)
    env_out, env_err = work.file("etail.jsonl"), work.file("etail.err")
    etail = h.spawn([h.TAIL, "--broker", broker.uri, "--envelopes"], stdout=open(env_out, "w"),
                    stderr=open(env_err, "w"))
    h.wait_until(lambda: "subscribed" in open(env_err).read(), 10, "eport-tail --envelopes")
    agent = h.Agent(work, broker.uri, extra='[publish]\nenvelope_format = "v2"\n')
    agent.start()
    acked_log = work.file("acked.jsonl")
    p = h.run_sim(agent, units=20, rate=100, count=100, acked_log=acked_log)
    h.log(p.stdout.strip())
    assert p.returncode == 0, f"eport-sim failed: {p.stdout} {p.stderr}"
    acked = h.read_jsonl(acked_log)
    assert len(acked) == 2000, f"sim got {len(acked)} acks, expected 2000"
    h.wait_until(lambda: len(tail.readings()) >= 2000, 30, "2000 readings at the subscriber")
    assert agent.terminate() == 0
    tail.stop()
    etail.send_signal(2)
    etail.wait(timeout=10)
    received = tail.readings()
    assert h.check_all_arrived(acked, received) == 0, "duplicates on a clean run"
    assert len(received) == 2000
    assert not tail.errors(), tail.errors()
    kinds = {r["kind"] for r in received}
    assert {"position", "sensor"} <= kinds, kinds
    envelopes = [json.loads(line) for line in open(env_out) if line.startswith('{"envelope"')]
    assert envelopes, "no envelope lines"
    for e in envelopes:
        hdr = e["envelope"]
        assert hdr["schema_version"] == 2, e
        assert (hdr["site"], hdr["gateway"]) == ("cnsha", "gw-test-01"), e
    n = sum(e["readings"] for e in envelopes)
    assert n == 2000, n
    payload = sum(e["bytes"] for e in envelopes)
    h.log(f"2000 readings in {len(envelopes)} v2 envelopes, {payload / n:.1f} payload bytes per reading; "
          f"kinds {sorted(kinds)}")


if __name__ == "__main__":
    h.main(test_envelope_v2)
