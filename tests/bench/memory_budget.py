"""Memory budget of the agent, per component, with the real programs: the
scenario of agent_backlog.py (eport-sim fills the outbox from 100 units at
full speed with the broker down, then the broker comes up and the backlog
drains to eport-tail), run twice:

1. natively: peak RSS (VmHWM) while filling and while draining, and what the
   resident memory is made of at the end of the fill (mapped code and data of
   the binary and shared libraries, heap, thread stacks), from smaps;
2. under valgrind's massif: the heap at its peak, by the component whose
   code allocated it (the first eport:: frame on the stack that is not a
   helper library: eport::codec, model, log, json allocate for their caller).

Each component is printed next to its budget (BUDGET_KIB below: the one
place the budget is stated; docs/benchmarks.md quotes it) and the total next
to the goal of issue 16 (peak RSS <= 16 MiB). Figures only, no assertions.

Usage: EPORT_BIN_DIR=build/agent /usr/bin/python3 tests/bench/memory_budget.py [N] [--no-massif]
       (default N = 1,000,000 natively; massif runs N/5, it is ~30x slower)
"""
import collections
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness as h  # noqa: E402
from agent_backlog import rss_kib as status_kib  # noqa: E402  (/proc/PID/status fields, KiB)

UNITS = 100
GOAL_KIB = 16 * 1024

# zstd's compression context and the digested v2 dictionary: whoever calls
# codec::compress_v2, told apart by zstd's own frames.
COMPRESSION = "compression: zstd context, digested v2 dictionary (zstd)"

# The budget, KiB, per component of the heap at its peak, and of what is
# resident besides the heap. "mapped code" is what the kernel maps of the
# binary and its shared libraries (shared with other processes, and charged
# to RSS whole 64 KiB fault-around blocks at a time).
BUDGET_KIB = collections.OrderedDict([
    ("mapped code and data of the binary and shared libraries", 11_264),
    ("ingest: readings waiting for a commit", 768),
    ("unit links (eport::units)", 512),
    ("store: SQLite page cache, statements (eport::store)", 1_280),
    ("publisher and MQTT client (eport::uplink, Paho)", 512),
    (COMPRESSION, 640),
    ("custody events, geofences, evidence", 256),
    ("start-up, config, logging, the rest of the heap", 512),
    ("malloc overhead and thread stacks", 640),
])
COMPONENT_OF_NAMESPACE = {
    "ingest": "ingest: readings waiting for a commit",
    "units": "unit links (eport::units)",
    "store": "store: SQLite page cache, statements (eport::store)",
    "uplink": "publisher and MQTT client (eport::uplink, Paho)",
    "events": "custody events, geofences, evidence",
    "custody": "custody events, geofences, evidence",
    "geofence": "custody events, geofences, evidence",
    "evidence": "custody events, geofences, evidence",
}
HELPER_NAMESPACES = {"codec", "model", "log", "json"}
REST = "start-up, config, logging, the rest of the heap"


def smaps_split(pid):
    """Resident KiB: file-backed mappings (binary, libraries), [heap], [stack], other anonymous."""
    out = collections.Counter()
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", parts[0]):
                name = parts[5] if len(parts) > 5 else ""
            elif parts[0] == "Rss:":
                kib = int(parts[1])
                if name.startswith("/"):
                    out["file"] += kib
                    out["file:" + os.path.basename(name)] += kib
                elif name == "[heap]":
                    out["heap"] += kib
                elif name == "[stack]":
                    out["stack"] += kib
                else:
                    out["anon"] += kib  # glibc's second arena, thread stacks, SQLite's mmap of -shm is a file
    return out


def run_scenario(n, label):
    """The backlog scenario against h.AGENT; returns (pid figures dict)."""
    work = h.Workdir("memory-" + label)
    broker = h.Broker(work)
    agent = h.Agent(work, broker.uri, store_extra="max_bytes = 4294967296\nmin_free_bytes = 0")
    agent.start()
    pid = agent.proc.pid
    peak = {"fill": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak["fill"] = max(peak["fill"], status_kib(pid, "VmRSS"))
            except OSError:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    h.run_sim(agent, units=UNITS, rate=1_000_000, count=n // UNITS, acked_log="/dev/null", timeout=3600)
    stop.set()
    sampler.join()
    figures = {"hwm_fill": status_kib(pid, "VmHWM"), "split_fill": smaps_split(pid)}
    broker.start()
    tail = h.Tail(work, broker.uri, name="tail-drain")
    t = time.monotonic()
    # The drain's peak and what was resident then (smaps, read whenever RSS
    # passes its highest value so far).
    drain_peak, drain_split = 0, None
    checked = 0.0
    while True:
        rss = status_kib(pid, "VmRSS")
        if rss > drain_peak:
            drain_peak, drain_split = rss, smaps_split(pid)
        if time.monotonic() - checked > 0.2:
            checked = time.monotonic()
            lines = int(subprocess.run(["wc", "-l", tail.out], capture_output=True, text=True).stdout.split()[0])
            if lines >= n or time.monotonic() - t > 1800:
                break
        time.sleep(0.02)
    figures["split_drain"] = drain_split
    figures["hwm_all"] = status_kib(pid, "VmHWM")
    agent.terminate(timeout=300)
    tail.stop()
    broker.stop()
    work.cleanup()
    return figures


def parse_massif_peak(path):
    """(useful heap B, extra heap B, {component: B}) at massif's peak snapshot."""
    with open(path) as f:
        text = f.read()
    best = None
    for snap in text.split("#-----------\nsnapshot=")[1:]:
        if "heap_tree=peak" not in snap:
            continue
        best = snap
    if best is None:  # no peak marked: the largest detailed one
        snaps = [s for s in text.split("#-----------\nsnapshot=")[1:] if "heap_tree=detailed" in s]
        best = max(snaps, key=lambda s: int(re.search(r"mem_heap_B=(\d+)", s).group(1)))
    useful = int(re.search(r"mem_heap_B=(\d+)", best).group(1))
    extra = int(re.search(r"mem_heap_extra_B=(\d+)", best).group(1))
    tree = best.split("heap_tree=", 1)[1].split("\n", 1)[1]
    by = collections.Counter()
    stack = []  # frames from the allocation site outwards
    for line in tree.splitlines():
        m = re.match(r"^( *)n(\d+): (\d+) (.*)$", line)
        if not m:
            continue
        depth, children, size, frame = len(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
        del stack[depth:]
        stack.append(frame)
        if children == 0 and depth > 0:
            by[classify(stack[1:])] += size
    return useful, extra, by


def classify(frames):
    if any("ZSTD_" in fr for fr in frames):
        return COMPRESSION
    first_eport = None
    for fr in frames:
        m = re.search(r"eport::(\w+)::", fr)
        if not m:
            continue
        ns = m.group(1)
        first_eport = first_eport or ns
        if ns not in HELPER_NAMESPACES:
            return COMPONENT_OF_NAMESPACE.get(ns, REST)
    if first_eport:
        return REST
    if any("libpaho" in fr for fr in frames):
        return "publisher and MQTT client (eport::uplink, Paho)"
    return REST


def massif_run(n):
    work_dir = h.Workdir("massif-wrapper")
    out = os.path.join(work_dir.path, "massif.out")
    wrapper = os.path.join(work_dir.path, "eport-agent")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=massif --threshold=0.2 --max-snapshots=400 "
                f"--massif-out-file={out} {h.AGENT} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    real = h.AGENT
    h.AGENT = wrapper
    try:
        run_scenario(n, "massif")
    finally:
        h.AGENT = real
    result = parse_massif_peak(out)
    work_dir.cleanup()
    return result


def kib(b):
    return b / 1024


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    native = run_scenario(n, "native")
    split = native["split_fill"]
    print(f"eport-agent, {n:,} readings from {UNITS} units at full speed, broker down, then the drain:")
    print(f"  peak RSS (VmHWM) while filling: {kib(native['hwm_fill'] * 1024):,.0f} KiB "
          f"({native['hwm_fill'] / 1024:.1f} MiB); over fill and drain: {native['hwm_all'] / 1024:.1f} MiB; "
          f"goal <= {GOAL_KIB / 1024:.0f} MiB")
    print(f"  resident at the end of the fill: mapped code and data {split['file']:,} KiB, [heap] {split['heap']:,} KiB, "
          f"other anonymous (second malloc arena, thread stacks) {split['anon']:,} KiB, main stack {split['stack']:,} KiB")
    d = native["split_drain"]
    if d:
        print(f"  resident at the drain's highest RSS: mapped code and data {d['file']:,} KiB, [heap] {d['heap']:,} KiB, "
              f"other anonymous {d['anon']:,} KiB, main stack {d['stack']:,} KiB")
        grew = {k[5:]: d[k] - split.get(k, 0) for k in d if k.startswith("file:") and d[k] - split.get(k, 0) >= 64}
        if grew:
            print("    mapped code that the drain brought in (KiB): " +
                  ", ".join(f"{k} +{v:,}" for k, v in sorted(grew.items(), key=lambda kv: -kv[1])))
    if "--no-massif" in sys.argv or not shutil.which("valgrind"):
        print("  (heap per component: needs valgrind; skipped)")
        return
    m = max(n // 5, UNITS * 10)
    useful, extra, by = massif_run(m)
    print(f"heap at its peak under massif ({m:,} readings): {kib(useful):,.0f} KiB useful + {kib(extra):,.0f} KiB "
          "malloc overhead")
    print(f"  {'component':<58} {'KiB':>8} {'budget':>8}")
    total_budget = 0
    for name, budget in BUDGET_KIB.items():
        total_budget += budget
        if name.startswith("mapped code"):
            have = split["file"]
        elif name.startswith("malloc overhead"):
            have = kib(extra) + split["stack"]
        else:
            have = kib(by.get(name, 0))
        mark = "" if have <= budget else "  over"
        print(f"  {name:<58} {have:>8,.0f} {budget:>8,}{mark}")
    print(f"  {'total budget':<58} {'':>8} {total_budget:>8,} (goal {GOAL_KIB:,})")


if __name__ == "__main__":
    main()
