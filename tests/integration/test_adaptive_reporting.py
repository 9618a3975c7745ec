"""Adaptive reporting end to end (docs/custody-events.md "Adaptive
reporting"): simulated units on journeys around Yangshan (a simulated clock:
30 s between samples) talk to an agent with custody and adaptive reporting
on and the sample zones file. Each unit gets the `land` profile at its
first reading; a unit whose ENTRY into a Yangshan terminal zone the agent
derived receives a SETTINGS with the `terminal` profile's intervals and,
since eport-sim announces FEATURES, its deadbands (the 15-byte form, firmware-
bridge 6.4), and answers it; the sim then reports by exception (samples
within their deadband and interval are not sent). A unit started with
--no-features gets the same intervals in the 8-byte form."""
import collections
import os
import re

import harness as h

UNITS, COUNT = 8, 240
SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
ZONES = os.path.join(SOURCE, "docs", "zones", "shanghai-terminals.geojson")
CUSTODY = f"""[custody]
enabled = true
zones_file = "{ZONES}"
adaptive_reporting = true
terminal_zones = ["yangshan-*", "waigaoqiao-*"]
"""
SETTINGS = re.compile(r"eport-sim: (\S+): SETTINGS position_interval_s=(\d+) sensor_interval_s=(\d+)(.*)$")


def settings_lines(stderr):
    """{unit: [(position_s, sensor_s, rest of the line)]} from eport-sim's log."""
    out = collections.defaultdict(list)
    for line in stderr.splitlines():
        m = SETTINGS.match(line.strip())
        if m:
            out[m.group(1)].append((int(m.group(2)), int(m.group(3)), m.group(4).strip()))
    return out


def run(work, broker, name, extra_args):
    agent = h.FleetAgent(work, broker.uri, name=name, gateway=f"gw-{name}", extra=CUSTODY, log_level="info")
    agent.start()
    p = h.sim(["--units", UNITS, "--connect", "unix:" + agent.socket, "--rate", 40, "--count", COUNT,
               "--seed", 11, "--time-step", 30000, "--drain-timeout", 60, *extra_args], timeout=240)
    assert agent.terminate() == 0
    return agent, p


def test_adaptive_reporting(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)

    agent, p = run(work, broker, "adaptive", [])
    assert p.returncode == 0, f"eport-sim: {p.stdout} {p.stderr}"
    got = settings_lines(p.stderr)
    log = agent.read_log()
    # Every unit got its first profile (land: 900 s) with deadbands.
    assert len(got) == UNITS, got
    for unit, lines in got.items():
        assert (900, 900) in [(a, b) for a, b, _ in lines], f"{unit}: {lines}"
        assert all("deadbands=" in rest for _, _, rest in lines), f"{unit}: the 15-byte form expected: {lines}"
    # The units the agent saw enter a Yangshan terminal got the terminal profile.
    terminal = {u for u, lines in got.items()
                if ("300", "300") in [(str(a), str(b)) for a, b, _ in lines]}
    assert terminal, f"no unit got the terminal profile: {dict(got)}\n{log[-3000:]}"
    for unit in terminal:
        rest = [r for a, b, r in got[unit] if (a, b) == (300, 300)]
        # The built-in terminal profile: a 25 m position deadband, no temperature one (off).
        assert "deadbands=2 temperature_deadband_centi_c=0 position_deadband_m=25" in rest[0], rest
        assert f"unit {unit}: reporting profile terminal" in log, f"{unit}: not in the agent's log"
    s = h.summary(p.stdout)
    assert s["suppressed"] > 0, s  # report by exception: samples within their deadband stayed on the unit
    assert s["unacked"] == 0, s

    # The custody events show why: an ENTRY into a Yangshan terminal zone.
    h.wait_until(lambda: any(r["source"] == "gw-adaptive:custody" and r.get("event") == "geofence_entry"
                             for r in tail.readings()), 30, "a geofence entry at the subscriber")
    entries = {r["subject"] for r in tail.readings()
               if r["source"] == "gw-adaptive:custody" and r.get("event") == "geofence_entry"
               and re.match(r"(yangshan|waigaoqiao)-\d", r.get("zone", ""))}
    assert terminal <= entries, f"terminal profile without a terminal ENTRY: {terminal - entries}"

    # Older units (no FEATURES): the same profiles, 8-byte SETTINGS, every sample sent.
    agent2, p2 = run(work, broker, "plain", ["--no-features", "--prefix", "old"])
    assert p2.returncode == 0, f"eport-sim --no-features: {p2.stdout} {p2.stderr}"
    got2 = settings_lines(p2.stderr)
    assert len(got2) == UNITS, got2
    assert all(rest == "" for lines in got2.values() for _, _, rest in lines), got2
    assert any((300, 300) in [(a, b) for a, b, _ in lines] for lines in got2.values()), got2
    s2 = h.summary(p2.stdout)
    assert s2["suppressed"] == 0 and s2["acked"] == UNITS * COUNT, s2
    tail.stop()
    h.log(f"terminal profile to {sorted(terminal)}; {s['suppressed']} samples not sent by exception")


if __name__ == "__main__":
    h.main(test_adaptive_reporting)
