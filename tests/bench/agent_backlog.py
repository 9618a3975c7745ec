"""End-to-end backlog benchmark with the real programs: eport-sim pushes N
readings into eport-agent while the broker is down (everything queues in the
outbox), then a broker appears and the backlog drains to eport-tail. Prints
readings/s in and out, the agent's peak RSS while holding the backlog and
while draining, and the store file size. Figures only, no assertions.

Usage: /usr/bin/python3 tests/bench/agent_backlog.py [N]   (default 1,000,000)
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness as h  # noqa: E402


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    units = 100
    work = h.Workdir("backlog")
    broker = h.Broker(work)  # not started yet: the uplink is "down"
    agent = h.Agent(work, broker.uri, store_extra="max_bytes = 4294967296\nmin_free_bytes = 0")
    agent.start()
    pid = agent.proc.pid
    t = time.monotonic()
    p = h.run_sim(agent, units=units, rate=1_000_000, count=n // units, acked_log="/dev/null", timeout=3600)
    t_in = time.monotonic() - t
    print(p.stdout.strip())
    hwm_fill = rss_kib(pid, "VmHWM")
    time.sleep(11)  # one maintenance cycle: the steady state of a gateway holding a backlog
    rss_full = rss_kib(pid, "VmRSS")
    db = os.path.getsize(agent.db) + (os.path.getsize(agent.db + "-wal") if os.path.exists(agent.db + "-wal") else 0)
    print(f"into the outbox: {n} readings from {units} units in {t_in:.1f} s = {n / t_in:,.0f} readings/s "
          f"(acknowledged to units, durability=full)")
    anon, file_ = rss_kib(pid, "RssAnon"), rss_kib(pid, "RssFile")
    print(f"agent RSS with {n:,} readings queued: {rss_full / 1024:.1f} MiB settled ({anon / 1024:.1f} MiB heap/stacks, "
          f"{file_ / 1024:.1f} MiB mapped code of the binary and shared libraries), peak while filling {hwm_fill / 1024:.1f} MiB; "
          f"store {db / 1048576:.1f} MiB on disk")

    tail = None
    broker.start()
    tail = h.Tail(work, broker.uri, name="tail-drain")
    t = time.monotonic()
    peak = 0
    while True:
        peak = max(peak, rss_kib(pid, "VmRSS"))
        st = subprocess.run(["wc", "-l", tail.out], capture_output=True, text=True).stdout.split()[0]
        if int(st) >= n:
            break
        if time.monotonic() - t > 1800:
            print("drain did not finish in 30 min")
            break
        time.sleep(0.2)
    t_out = time.monotonic() - t
    print(f"drain after the broker came up: {n} readings in {t_out:.1f} s = {n / t_out:,.0f} readings/s "
          f"(to a subscriber decoding every envelope); agent RSS peak during drain {peak / 1024:.1f} MiB")
    agent.terminate()
    tail.stop()
    broker.stop()
    work.cleanup()


if __name__ == "__main__":
    main()
