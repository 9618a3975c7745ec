"""Seen command ids survive a restart (issue 11), end to end with the real agent, broker and
simulated units: a SetIntervals command runs once (its units get SETTINGS once), the agent is
killed with SIGKILL and restarted, and the same command id, sent again within
commands.max_age_s (the very same bytes, and rebuilt with a new issued time), is answered with
the recorded reply and not executed again: the units see no second SETTINGS. The same after a
SIGTERM restart. A command id recorded as received whose outcome was never recorded (the window
of a kill between recording and replying, written into the store by hand here) is answered
"outcome unknown" and not executed. Before the ids were persisted, the repeat after a restart ran
the command again."""
import json
import os
import sqlite3
import subprocess
import time

import harness as h
from test_command_hardening import Replies, command, health, publish

CMD = h.AGENT.replace("app/eport-agent", "tools/eport-cmd")


def eport_cmd(broker, *args, cid):
    argv = [CMD, "--broker", broker.uri, "--site", "cnsha", "--gateway", "gw-test-01", "--timeout", "10",
            "--id", cid]
    p = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr


def settings_lines(sim_err_path, position_s):
    with open(sim_err_path) as f:
        return f.read().count(f"SETTINGS position_interval_s={position_s} ")


def test_command_ids(work):
    broker = h.Broker(work)
    broker.start()
    agent = h.Agent(work, broker.uri, extra="[health]\ninterval_s = 1\n")
    agent.start()
    replies = Replies(work, broker)
    sim_err = work.file("sim.err")
    args = [h.SIM, "--connect", "unix:" + agent.socket, "--units", "3", "--rate", "2", "--count", str(10**6),
            "--seed", "7", "--acked-log", work.file("acked.jsonl"), "--drain-timeout", "5"]
    sim = h.spawn(args, stdout=subprocess.DEVNULL, stderr=open(sim_err, "w"))
    time.sleep(2.0)  # the units' HELLOs and the agent's subscription to cmd

    # 1. Executed once: three units told (SetIntervals position 30 s, every unit).
    first = command("ci-1", "SetIntervals")
    publish(work, broker, first, name="ci-1.bin")
    r1 = replies.wait_for("ci-1")
    assert r1 == {"command_id": "ci-1", "ok": True, "result": {"units": 3}}, r1
    h.wait_until(lambda: settings_lines(sim_err, 30) == 3, 10, "SETTINGS at the three units")
    # A repeat while it runs: answered, not executed (as before this change).
    publish(work, broker, first, name="ci-1.bin")
    h.wait_until(lambda: len([x for x in replies.all() if x.get("command_id") == "ci-1"]) == 2, 10, "second reply")

    # 2. kill -9, restart, same id again (same bytes; then rebuilt with a new issued time).
    agent.kill9()
    agent.start()
    time.sleep(2.0)  # units reconnect, the agent subscribes
    # Control: a new id runs after the restart and reaches all three units again.
    rc, ctl, err = eport_cmd(broker, "intervals", "--position", "45", cid="ci-2")
    assert rc == 0 and ctl["ok"] and ctl["result"]["units"] == 3, (rc, ctl, err)
    publish(work, broker, first, name="ci-1.bin")
    publish(work, broker, command("ci-1", "SetIntervals"), name="ci-1b.bin")
    h.wait_until(lambda: len([x for x in replies.all() if x.get("command_id") == "ci-1"]) == 4, 10,
                 "the replies to ci-1 after the restart")
    for r in [x for x in replies.all() if x.get("command_id") == "ci-1"]:
        assert r == r1, f"a repeat after kill -9 must get the recorded reply: {r} vs {r1}"
    time.sleep(1.0)  # any SETTINGS a second execution would have sent
    assert settings_lines(sim_err, 30) == 3, "ci-1 ran again after kill -9: " + open(sim_err).read()[-2000:]

    # 3. SIGTERM restart: the same.
    assert agent.terminate() == 0
    agent.start()
    time.sleep(2.0)
    publish(work, broker, first, name="ci-1.bin")
    h.wait_until(lambda: len([x for x in replies.all() if x.get("command_id") == "ci-1"]) == 5, 10,
                 "the reply to ci-1 after a SIGTERM restart")
    assert [x for x in replies.all() if x.get("command_id") == "ci-1"][-1] == r1
    time.sleep(1.0)
    assert settings_lines(sim_err, 30) == 3, "ci-1 ran again after SIGTERM: " + open(sim_err).read()[-2000:]

    # 4. The remaining window: recorded as received, no outcome recorded (a kill between the two
    # commits). Written by hand while the agent is stopped; the agent must not run it.
    assert agent.terminate() == 0
    now = int(time.time() * 1000)
    db = sqlite3.connect(agent.db)
    db.execute("INSERT INTO commands(command_id, issued_ms, received_ms, reply, cost) VALUES (?, ?, ?, NULL, ?)",
               ("ci-3", now, now, 64 + 4))
    db.commit()
    db.close()
    agent.start()
    time.sleep(2.0)
    publish(work, broker, command("ci-3", "SetIntervals"), name="ci-3.bin")
    r3 = replies.wait_for("ci-3")
    assert r3["ok"] is False and "stopped before its outcome was recorded" in r3["error"], r3
    hl = health(broker)
    assert hl["uplink"]["commands_repeated"] >= 1, hl["uplink"]
    assert hl["store"]["commands"] >= 3, hl["store"]

    time.sleep(1.0)  # any SETTINGS a wrong execution would have sent
    sim.send_signal(2)
    sim.wait(timeout=60)
    # The side effect: SETTINGS 30 s reached the three units once (ci-1 the first time), never for
    # a repeat after a restart nor for ci-3; the control's 45 s reached all three.
    assert settings_lines(sim_err, 30) == 3, open(sim_err).read()[-3000:]
    assert settings_lines(sim_err, 45) == 3, open(sim_err).read()[-3000:]
    assert agent.proc.poll() is None
    assert agent.terminate() == 0
    log = agent.read_log()
    assert log.count("command ci-1 done") == 1, "ci-1 must run exactly once"
    assert log.count("command ci-1 repeated") == 4
    assert "command ci-3 done" not in log
    out = subprocess.run([h.AGENT, "store", "verify", "--config", agent.config], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    h.log("command ids persisted: repeats after kill -9 and SIGTERM answered with the recorded reply, run once")


if __name__ == "__main__":
    h.main(test_command_ids)
