"""A full store and a full disk. With the broker unreachable, units keep
sending telemetry into (1) a store with a small byte quota and (2) a store on
a real 6 MiB tmpfs that is nearly full: the agent keeps running, evicts the
oldest telemetry (counted), keeps every alarm it acknowledged, and its store
stays intact."""
import json
import os
import subprocess

import harness as h

ALARM = {("seal", "opened"), ("seal", "tampered"), ("door", "open")}


def is_alarm(r):
    return (r["kind"], r.get("state")) in ALARM


def store_stats(agent):
    stats = h.store_stats(agent)
    return stats["classes"], json.dumps(stats, indent=1)


def stored_readings(agent):
    p = subprocess.run([h.AGENT, "store", "dump", "--config", agent.config], capture_output=True, text=True,
                       timeout=60, check=True)
    return [json.loads(line)["reading"] for line in p.stdout.splitlines() if line.strip()]


def fill_and_check(work, agent, units, count, max_bytes=None):
    acked_log = work.file(f"acked-{os.path.basename(agent.work.path)}.jsonl")
    p = h.run_sim(agent, units=units, rate=2000, count=count, acked_log=acked_log, timeout=300, drain_timeout=30)
    h.log(p.stdout.strip())
    assert agent.proc.poll() is None, "the agent died while the store was full:\n" + agent.read_log()[-3000:]
    assert agent.terminate() == 0
    acked = h.read_jsonl(acked_log)
    stats, text = store_stats(agent)
    h.log("store after filling:\n" + text)
    assert stats["telemetry"]["evicted"] > 0, "nothing was evicted: the test did not fill the store"
    assert stats["alarm"]["evicted"] == 0
    if max_bytes:
        total = sum(c["bytes"] for c in stats.values())
        assert total <= max_bytes, f"{total} bytes stored, limit {max_bytes}"
    kept = {h.key(r) for r in stored_readings(agent)}
    alarms = [r for r in acked if is_alarm(r)]
    lost = [h.key(r) for r in alarms if h.key(r) not in kept]
    assert alarms, "the simulated mix had no alarms"
    assert not lost, f"{len(lost)} acknowledged alarms missing from the store: {lost[:5]}"
    v = subprocess.run([h.AGENT, "store", "verify", "--config", agent.config], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    return len(acked), len(alarms), stats


def test_disk_full(work):
    nobody = f"tcp://127.0.0.1:{h.free_port()}"  # no broker: nothing drains

    quota = 1 << 20
    agent = h.Agent(work, nobody, store_extra=f"max_bytes = {quota}\nmin_free_bytes = 0\nwhen_full = \"evict\"")
    agent.start()
    n, alarms, stats = fill_and_check(work, agent, units=20, count=1500, max_bytes=quota)
    h.log(f"quota: {n} readings acknowledged into a {quota}-byte store; {int(stats['telemetry']['evicted'])} "
          f"telemetry evicted; all {alarms} alarms kept")

    mnt = work.file("fs")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt]).returncode != 0:
        h.log("SKIPPED the tmpfs part: cannot mount a tmpfs here (needs root)")
        return
    try:
        # Someone else has already used most of the disk.
        with open(os.path.join(mnt, "filler"), "wb") as f:
            f.write(b"\0" * (3 << 20))
        fs_work = h.Workdir("fs")
        fs_work.path = mnt
        agent2 = h.Agent(fs_work, nobody, store_extra="min_free_bytes = 1572864\nwhen_full = \"evict\"")
        agent2.start()
        n, alarms, stats = fill_and_check(work, agent2, units=20, count=1500)
        st = os.statvfs(mnt)
        h.log(f"tmpfs: {n} readings acknowledged on a nearly full 6 MiB filesystem; "
              f"{int(stats['telemetry']['evicted'])} telemetry evicted; all {alarms} alarms kept; "
              f"{st.f_bavail * st.f_frsize} bytes still free")
    finally:
        subprocess.run(["umount", "-l", mnt])


if __name__ == "__main__":
    h.main(test_disk_full)
