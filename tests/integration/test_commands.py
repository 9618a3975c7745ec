"""Commands from the cloud, end to end with the real agent and broker:
get-config, flush, position and intervals answered on the reply topic;
a repeated command id answered again but executed once; malformed,
foreign-gateway and unknown commands answered with an error and changing
nothing; health and retained status published."""
import json
import subprocess
import time

import harness as h

CMD = h.AGENT.replace("app/eport-agent", "tools/eport-cmd")


def cmd(broker, *args, gateway="gw-test-01", cid=None):
    argv = [CMD, "--broker", broker.uri, "--site", "cnsha", "--gateway", gateway, "--timeout", "10"]
    if cid:
        argv += ["--id", cid]
    p = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30)
    reply = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, reply, p.stderr


def sub_once(broker, topic, timeout=10):
    """The next message on topic, checked against its JSON schema (schema/json/)."""
    p = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-t", topic, "-C", "1", "-W", str(timeout)],
                       capture_output=True, text=True, timeout=timeout + 5)
    return json.dumps(h.check_json(topic, p.stdout.strip()))


def test_commands(work):
    broker = h.Broker(work)
    broker.start()
    agent = h.Agent(work, broker.uri, extra="[health]\ninterval_s = 1\n",
                    store_extra="")
    agent.start()
    status = json.loads(sub_once(broker, "eport/v1/cnsha/gw-test-01/status"))
    assert status["state"] == "online" and status["schema_version"] == 1 and status["config_hash"], status
    health = json.loads(sub_once(broker, "eport/v1/cnsha/gw-test-01/health"))
    assert set(health["queue"]) == {"alarm", "event", "telemetry", "bulk"}, health
    assert health["process"]["rss_kib"] > 0 and "bridge" in health and "uplink" in health

    rc, reply, err = cmd(broker, "get-config", cid="c-1")
    assert rc == 0 and reply["ok"] and reply["command_id"] == "c-1", (rc, reply, err)
    assert reply["result"]["config"]["gateway.id"] == "gw-test-01"
    assert reply["result"]["config_hash"] == status["config_hash"]

    # Units send; position of a unit is then known.
    p = h.run_sim(agent, units=3, rate=50, count=100, acked_log=work.file("acked.jsonl"))
    assert p.returncode == 0, p.stdout + p.stderr
    rc, reply, _ = cmd(broker, "position", "tcu-0001", cid="c-2")
    assert rc == 0 and reply["result"]["source"] == "tcu-0001" and "lat_e7" in reply["result"], reply
    rc, reply, _ = cmd(broker, "position", "tcu-9999", cid="c-3")
    assert rc == 1 and not reply["ok"] and "no position known" in reply["error"], reply

    rc, reply, _ = cmd(broker, "flush", cid="c-4")
    assert rc == 0 and reply["ok"], reply

    # The same id again: the same reply, not executed again (the recorded reply
    # still says how many readings were waiting the first time).
    rc, again, _ = cmd(broker, "flush", cid="c-4")
    assert again == reply, (again, reply)

    # Addressed to another gateway (published on our topic): refused.
    rc, reply, _ = cmd(broker, "get-config", gateway="gw-other", cid="c-5")
    assert rc == 2, "a command for another gateway must not be answered on its topic"
    # Garbage on the command topic: an error reply, agent alive.
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", "eport/v1/cnsha/gw-test-01/cmd",
                    "-m", "not a command"], check=True)
    err_reply = json.loads(sub_once(broker, "eport/v1/cnsha/gw-test-01/reply"))
    assert not err_reply["ok"] and "EPC1" in err_reply["error"], err_reply
    assert "command_id" not in err_reply, "no id could be read: no command_id member (not \"\")"
    # Intervals reach the connected units over the firmware bridge.
    sim = h.run_sim(agent, units=4, rate=5, count=10**6, acked_log=work.file("acked2.jsonl"), background=True)
    time.sleep(1.5)
    rc, reply, _ = cmd(broker, "intervals", "--position", "30", "--sensor", "120", cid="c-8")
    assert rc == 0 and reply["result"]["units"] == 4, reply
    rc, reply, _ = cmd(broker, "intervals", "--unit", "tcu-0002", "--position", "60", cid="c-9")
    assert rc == 0 and reply["result"]["units"] == 1, reply
    rc, reply, _ = cmd(broker, "intervals", "--unit", "tcu-0042", "--position", "60", cid="c-10")
    assert rc == 1 and "not connected" in reply["error"], reply
    sim.send_signal(2)
    out, err = sim.communicate(timeout=60)
    assert "settings=5" in out, out
    assert err.count("SETTINGS position_interval_s=30 sensor_interval_s=120") == 4, err
    rc, reply, _ = cmd(broker, "intervals", "--position", "0", "--sensor", "0", cid="c-6")
    assert rc == 1 and "changes nothing" in reply["error"], reply
    assert agent.proc.poll() is None
    rc, reply, _ = cmd(broker, "get-config", cid="c-7")
    assert rc == 0
    assert agent.terminate() == 0
    log = agent.read_log()
    assert "command rejected" in log
    h.log("commands answered; repeats idempotent; malformed and foreign commands refused; health and status seen")


if __name__ == "__main__":
    h.main(test_commands)
