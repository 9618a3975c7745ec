"""CPU per reading end to end (issue 16): eport-sim units send N readings live
to the real eport-agent (broker up the whole time), so each reading goes unit
frame -> store -> envelope -> PUBACK; the agent's utime+stime (/proc/PID/stat,
and per thread /proc/PID/task/*/stat) over the run, minus an idle run of the
same agent for the same time with no units, divided by N. v1 and v2
(publish.envelope_format) alternate in one invocation, --reps times.

With --arch-cmd "qemu-aarch64 -L /" and --agent build-arm64/agent/app/eport-agent
only the agent runs under that prefix (mosquitto and eport-sim stay native);
for a qemu-* prefix, the instruction-counting TCG plugin qemu_insn_count.c
is built with the host's gcc into a temp dir and loaded, the agent is
stopped with SIGTERM so the plugin writes its total, and the table gives guest
instructions per reading (minus the idle run's total: start-up and idle time
cancel out). Figures only, no assertions.

When is a reading done: the agent publishes a health message every second here
(health.interval_s = 1, in the idle run too); a run ends at the first one, after
eport-sim has exited (every reading acknowledged to its unit), whose store has
taken all N and whose queue is empty (every envelope acknowledged by PUBACK).

Usage: EPORT_BIN_DIR=build/agent /usr/bin/python3 tests/bench/cpu_per_reading.py [N] [--reps R]
          [--units U] [--rate R_PER_S_PER_UNIT] [--arch-cmd "PREFIX ..."] [--agent PATH] [--no-insns]
       (default N = 20,000 from 100 units at 5 readings/s each = 500 readings/s; 3 reps)
"""
import argparse
import collections
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt  # Debian's python3-paho-mqtt (/usr/bin/python3)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness as h  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PLUGIN_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "qemu_insn_count.c")


def stat_cpu_s(path):
    """utime + stime in seconds of a /proc/.../stat file (fields 14 and 15)."""
    with open(path) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def process_cpu_s(pid):
    return stat_cpu_s(f"/proc/{pid}/stat")


def process_sys_s(pid):
    """stime alone in seconds: the kernel's share (syscalls, fsync, sockets)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[12]) / TICK


def thread_cpu_s(pid):
    """{thread name: CPU s} of the live threads (exited ones are only in the process figure)."""
    out = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            out[name] += stat_cpu_s(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            pass
    return out


class HealthWatch:
    """The agents' health messages, newest per gateway id, from a Paho subscriber."""

    def __init__(self, port):
        self.cond = threading.Condition()
        self.latest = {}
        self.c = mqtt.Client(client_id=f"cpu-bench-{os.getpid()}")
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.subscribe("eport/v1/+/+/health", qos=0)
        self.c.loop_start()
        time.sleep(0.3)

    def _on_message(self, client, userdata, msg):
        gw = msg.topic.split("/")[3]
        with self.cond:
            self.latest[gw] = (time.monotonic(), json.loads(msg.payload))
            self.cond.notify_all()

    def wait(self, gw, predicate, timeout, after=0.0):
        """The first health message of gw received after `after` (monotonic) that satisfies predicate."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = self.latest.get(gw)
                if got and got[0] > after and predicate(got[1]):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching health message from {gw} in {timeout} s (last: {got})")
                self.cond.wait(left)

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


def queue_rows(health):
    return sum(c["rows"] for c in health["queue"].values())


class Bench:
    def __init__(self, args, broker, watch, work):
        self.a, self.broker, self.watch, self.work = args, broker, watch, work
        self.runs = 0
        self.real_agent = h.AGENT
        self.plugin = None
        prefix = shlex.split(args.arch_cmd) if args.arch_cmd else []
        if prefix and os.path.basename(prefix[0]).startswith("qemu-") and not args.no_insns:
            self.plugin = os.path.join(work.path, "libinsn.so")
            subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-o", self.plugin, PLUGIN_SRC],
                           check=True)
        self.prefix = prefix

    def _agent_cmd(self, insn_file):
        """A wrapper script standing for eport-agent: the prefix (and the plugin) in front of the real one."""
        cmd = list(self.prefix)
        if self.plugin:
            cmd += ["-plugin", f"{self.plugin},outfile={insn_file}"]
        wrapper = self.work.file(f"agent-wrapper-{self.runs}")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec " + " ".join(shlex.quote(c) for c in cmd + [self.real_agent]) + ' "$@"\n')
        os.chmod(wrapper, 0o755)
        return wrapper

    def run(self, fmt, idle_s=None):
        """One agent life. fmt: "v1"/"v2" with N readings, or None: idle for idle_s."""
        self.runs += 1
        gw = f"gw-cpu-{self.runs}"
        d = h.Workdir(f"cpu-{self.runs}")
        insn_file = d.file("insns.txt")
        h.AGENT = self._agent_cmd(insn_file) if self.prefix else self.real_agent
        extra = f'[publish]\nenvelope_format = "{fmt or "v2"}"\n[health]\ninterval_s = 1\n'
        agent = h.Agent(d, self.broker.uri, gateway=gw, extra=extra)
        t_start = time.monotonic()
        try:
            agent.start()
        finally:
            h.AGENT = self.real_agent
        pid = agent.proc.pid
        self.watch.wait(gw, lambda m: True, 120)  # connected: its first health message
        t0, cpu0, thr0, sys0 = time.monotonic(), process_cpu_s(pid), thread_cpu_s(pid), process_sys_s(pid)
        r = {"format": fmt or "idle", "readings": 0, "derived": 0}
        if fmt:
            n = self.a.units * (self.a.n // self.a.units)
            sim = h.run_sim(agent, units=self.a.units, rate=self.a.rate, count=n // self.a.units,
                            acked_log="/dev/null", background=True, drain_timeout=600)
            sim.communicate(timeout=3600)
            t_sim = time.monotonic()
            _, m = self.watch.wait(gw, lambda m: m["ingest"]["stored"] >= n and queue_rows(m) == 0, 1200, after=t_sim)
            r["readings"] = n
            r["derived"] = m["uplink"]["readings_acked"] - n  # the gateway's own readings (custody events)
        else:
            time.sleep(idle_s)
        t1, cpu1, thr1, sys1 = time.monotonic(), process_cpu_s(pid), thread_cpu_s(pid), process_sys_s(pid)
        r.update(wall_s=t1 - t0, cpu_s=cpu1 - cpu0, sys_s=sys1 - sys0, threads={k: thr1[k] - thr0.get(k, 0.0) for k in thr1})
        agent.terminate(timeout=120)
        r["life_s"] = time.monotonic() - t_start
        if self.plugin:
            with open(insn_file) as f:
                r["insns"] = int(f.read().split()[1])
        d.cleanup()
        return r


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", nargs="?", type=int, default=20_000, help="readings per run (default 20,000)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--units", type=int, default=100)
    p.add_argument("--rate", type=float, default=5.0, help="readings/s of each unit (default 5)")
    p.add_argument("--arch-cmd", default="", help='prefix for the agent only, e.g. "qemu-aarch64 -L /"')
    p.add_argument("--agent", help="the eport-agent binary (default: EPORT_BIN_DIR's), e.g. the cross build's")
    p.add_argument("--no-insns", action="store_true", help="with a qemu prefix: do not count instructions")
    a = p.parse_args()
    if a.agent:
        h.AGENT = os.path.abspath(a.agent)
    work = h.Workdir("cpu-bench")
    broker = h.Broker(work)
    broker.start()
    watch = HealthWatch(broker.port)
    bench = Bench(a, broker, watch, work)
    rows = collections.defaultdict(list)
    try:
        for rep in range(a.reps):
            for fmt in ("v1", "v2") if rep % 2 == 0 else ("v2", "v1"):
                rows[fmt].append(bench.run(fmt))
                h.log(f"rep {rep + 1} {fmt}: {rows[fmt][-1]['cpu_s']:.2f} s CPU in {rows[fmt][-1]['wall_s']:.1f} s")
            idle_s = statistics.mean(rows[f][-1]["wall_s"] for f in ("v1", "v2"))
            rows["idle"].append(bench.run(None, idle_s=idle_s))
            h.log(f"rep {rep + 1} idle: {rows['idle'][-1]['cpu_s']:.2f} s CPU in {idle_s:.1f} s")
    finally:
        watch.stop()
        broker.stop()
        work.cleanup()
    report(a, bench, rows)


def report(a, bench, rows):
    idle = rows["idle"]
    idle_rate = [r["cpu_s"] / r["wall_s"] for r in idle]  # CPU s per s, rep by rep
    where = f"under `{a.arch_cmd}`" if a.arch_cmd else "native"
    print(f"\neport-agent {where}, {a.units} units x {a.rate:g} readings/s = {a.units * a.rate:g} readings/s, "
          f"{a.reps} reps, CPU from /proc/PID/stat ({TICK} ticks/s); idle baseline scaled to each run's time")
    print(f"| format | readings | gateway's own | wall s | agent CPU s | idle CPU s (same time) | "
          f"µs/reading median | min | of which kernel (stime) µs/reading |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    per = {}
    for fmt in ("v1", "v2"):
        us = [(r["cpu_s"] - idle_rate[i] * r["wall_s"]) / r["readings"] * 1e6 for i, r in enumerate(rows[fmt])]
        per[fmt] = us
        rs = rows[fmt]
        print(f"| {fmt} | {rs[0]['readings']:,} | {statistics.median(r['derived'] for r in rs):,.0f} | "
              f"{statistics.median(r['wall_s'] for r in rs):.1f} | {statistics.median(r['cpu_s'] for r in rs):.2f} | "
              f"{statistics.median(idle_rate[i] * r['wall_s'] for i, r in enumerate(rs)):.2f} | "
              f"{statistics.median(us):.1f} | {min(us):.1f} | "
              f"{statistics.median(r['sys_s'] / r['readings'] * 1e6 for r in rs):.1f} |")
    print(f"| idle | 0 | | {statistics.median(r['wall_s'] for r in idle):.1f} | "
          f"{statistics.median(r['cpu_s'] for r in idle):.2f} | = {statistics.median(idle_rate) * 1000:.1f} ms CPU/s | | | |")
    print("\nper thread (live threads at the end; CPU µs per reading, summed over reps; idle: ms CPU per s):")
    names = sorted({k for fmt in rows for r in rows[fmt] for k in r["threads"]})
    print("| thread | v1 µs/reading | v2 µs/reading | idle ms/s |")
    print("|---|---:|---:|---:|")
    for name in names:
        cells = []
        for fmt in ("v1", "v2"):
            cells.append(sum(r["threads"].get(name, 0) for r in rows[fmt]) / sum(r["readings"] for r in rows[fmt]) * 1e6)
        il = sum(r["threads"].get(name, 0) for r in idle) / sum(r["wall_s"] for r in idle) * 1000
        print(f"| {name} | {cells[0]:.1f} | {cells[1]:.1f} | {il:.2f} |")
    if bench.plugin:
        print("\nguest instructions (qemu_insn_count plugin, all threads, whole life of the agent; "
              "idle: the same agent, no units, the same time):")
        print("| format | readings | insns (median) | idle insns (median) | insns/reading median | min |")
        print("|---|---:|---:|---:|---:|---:|")
        for fmt in ("v1", "v2"):
            ipr = [(r["insns"] - idle[i]["insns"]) / r["readings"] for i, r in enumerate(rows[fmt])]
            print(f"| {fmt} | {rows[fmt][0]['readings']:,} | {statistics.median(r['insns'] for r in rows[fmt]):,.0f} | "
                  f"{statistics.median(r['insns'] for r in idle):,.0f} | {statistics.median(ipr):,.0f} | {min(ipr):,.0f} |")
        print("life of each agent (s): " + ", ".join(f"{f} {r['life_s']:.1f}" for f in rows for r in rows[f]))


if __name__ == "__main__":
    main()
