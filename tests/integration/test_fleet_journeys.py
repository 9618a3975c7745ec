"""The fleet simulator's journeys, and record/replay: a recorded session of 30
units (some on serial ptys) reaches the subscriber; its readings tell the
story they should (sealed at origin, customs inspections with matching door
events, exactly one tampered seal, reefer excursions, battery drain,
positions around Yangshan and over the Donghai Bridge); the generator is
deterministic for a seed; replaying the session into a fresh agent delivers
exactly the recorded readings."""
import collections
import json

import harness as h

UNITS, PTYS, COUNT = 30, 4, 240
# A box around Yangshan, the Donghai Bridge and Luchao (approximate).
LAT, LON = (30.55, 30.90), (121.90, 122.26)


def recorded(path):
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return lines[0], lines[1:]


def check_story(readings):
    by_unit = collections.defaultdict(list)
    for r in readings:
        by_unit[r["source"]].append(r)
    for rows in by_unit.values():
        rows.sort(key=lambda r: r["seq"])
    tampered = [r for r in readings if r["kind"] == "seal" and r["state"] == "tampered"]
    assert len(tampered) == 1, f"{len(tampered)} tampered seals in the fleet, expected exactly one"
    inspections = 0
    for unit, rows in by_unit.items():
        seqs = {r["seq"]: r for r in rows}
        for r in rows:
            if r["kind"] == "seal" and r["state"] == "opened":
                inspections += 1
                nxt = seqs.get(r["seq"] + 1)
                assert nxt and nxt["kind"] == "door" and nxt["state"] == "open", f"{unit}: seal opened, door not {nxt}"
                later = [x for x in rows if x["seq"] > r["seq"] and x["kind"] == "seal"]
                if later:
                    assert later[0]["state"] == "sealed" and later[0]["seal_id"].startswith("CN"), later[0]
            if r["kind"] == "seal" and r["state"] == "sealed":
                assert r["seal_id"][:2] in ("SL", "CN"), r
        mv = [r["battery_mv"] for r in rows if r["kind"] == "sensor"]
        assert mv == sorted(mv, reverse=True), f"{unit}: battery does not drain monotonically"
    assert inspections >= 3, f"only {inspections} customs inspections"
    positions = [r for r in readings if r["kind"] == "position"]
    for p in positions:
        lat, lon = p["lat_e7"] / 1e7, p["lon_e7"] / 1e7
        assert LAT[0] <= lat <= LAT[1] and LON[0] <= lon <= LON[1], f"position outside the port area: {p}"
    assert any(p["lat_e7"] > 30.80e7 for p in positions), "no truck got across the Donghai Bridge towards Luchao"
    assert any(p["lon_e7"] > 122.15e7 for p in positions), "no vessel approaching from the anchorage"
    reefers = [r for r in readings if r["kind"] == "sensor" and "reefer_setpoint_centi_c" in r]
    assert reefers, "no reefer units"
    excursions = [r for r in reefers if r["temperature_centi_c"] > r["reefer_setpoint_centi_c"] + 300]
    assert excursions, "no reefer temperature excursion"
    return len(by_unit), inspections, len(excursions)


def strip_time(entries):
    return [(e["unit"], json.dumps({k: v for k, v in e["reading"].items() if k != "time_utc_ms"})) for e in entries]


def test_fleet_journeys(work):
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)

    # 1. Record a session: 26 units on the UNIX socket, 4 on serial lines.
    session = work.file("session.jsonl")
    pty_list = work.file("ptys-1.txt")
    acked1 = work.file("acked-1.jsonl")
    rec = h.sim(["--units", UNITS - PTYS, "--pty", PTYS, "--pty-list", pty_list,
                  "--connect", "unix:" + work.file("rec-bridge.sock"), "--rate", 200, "--count", COUNT, "--seed", 5,
                  "--record", session, "--acked-log", acked1, "--drain-timeout", 60], background=True)
    agent = h.FleetAgent(work, broker.uri, serial_ports=h.read_pty_list(pty_list, PTYS), name="rec")
    agent.start()
    out, err = rec.communicate(timeout=120)
    assert rec.returncode == 0, f"eport-sim --record: {out} {err}"
    header, entries = recorded(session)
    assert header["eport_sim_session"] == 1 and header["units"] == UNITS and header["seed"] == 5, header
    assert len(entries) == UNITS * COUNT
    acked = h.read_jsonl(acked1)
    assert sorted(map(h.key, acked)) == sorted(h.key(e["reading"]) for e in entries)
    units, inspections, excursions = check_story([e["reading"] for e in entries])
    h.log(f"recorded {len(entries)} readings of {units} units: {inspections} customs inspections, 1 tampered seal, "
          f"{excursions} reefer readings in excursion")
    h.wait_until(lambda: len(tail.readings()) >= len(acked), 30, "the recorded readings at the subscriber")
    assert agent.terminate() == 0

    # 2. Deterministic: the same seed gives the same readings (times aside),
    #    another seed does not. No agent needed: units keep what they made.
    def generate(seed, name):
        path = work.file(name)
        p = h.sim(["--units", UNITS, "--connect", "unix:" + work.file("nobody.sock"), "--rate", 100000, "--count",
                    COUNT, "--seed", seed, "--record", path, "--drain-timeout", 0, "--quiet"], timeout=60)
        assert p.returncode == 3, f"expected 'unacknowledged' exit: {p.stdout} {p.stderr}"
        return strip_time(recorded(path)[1])
    same = generate(5, "again.jsonl")
    assert sorted(same) == sorted(strip_time(entries)), "seed 5 generated different readings the second time"
    assert sorted(generate(6, "other.jsonl")) != sorted(same), "seeds 5 and 6 generated the same readings"

    # 3. Replay into a fresh agent (the last 4 recorded units on ptys again).
    tail2 = h.Tail(work, broker.uri, name="tail-2")
    pty_list2 = work.file("ptys-2.txt")
    acked2 = work.file("acked-2.jsonl")
    rep = h.sim(["--replay", session, "--pty", PTYS, "--pty-list", pty_list2,
                  "--connect", "unix:" + work.file("rep-bridge.sock"), "--acked-log", acked2, "--drain-timeout", 60],
                 background=True)
    agent2 = h.FleetAgent(work, broker.uri, serial_ports=h.read_pty_list(pty_list2, PTYS), name="rep",
                           gateway="gw-fleet-02")
    agent2.start()
    out, err = rep.communicate(timeout=120)
    assert rep.returncode == 0, f"eport-sim --replay: {out} {err}"
    replayed = h.read_jsonl(acked2)
    assert sorted(json.dumps(r) for r in replayed) == sorted(json.dumps(e["reading"]) for e in entries), \
        "the replay acknowledged other readings than the recorded ones"
    h.wait_until(lambda: len(tail2.readings()) >= len(replayed), 30, "the replayed readings at the subscriber")
    assert agent2.terminate() == 0
    tail.stop()
    tail2.stop()
    got = [r for r in tail2.readings()]
    dups = h.check_all_arrived(replayed, got)
    assert dups == 0
    h.log(f"replayed {len(replayed)} recorded readings (times included) into a fresh agent; all at the subscriber")


if __name__ == "__main__":
    h.main(test_fleet_journeys)
