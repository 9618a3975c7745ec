"""The gateway's own GNSS receiver on a serial port: an NMEA log written into a
pty reaches the subscriber as position readings under the gateway's id, with
sequence numbers that keep increasing across an agent restart."""
import os
import threading
import time

import harness as h

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
LOG = os.path.join(SOURCE, "tests", "data", "yangshan_truck.nmea")


def feed(master, lines, pace_s):
    for line in lines:
        os.write(master, line.encode() + b"\r\n")
        time.sleep(pace_s)


def run_once(work, broker, tail, master, slave_path, lines):
    agent = h.Agent(work, broker.uri, gateway="gw-gnss-01",
                    extra=f'[gnss]\nsource = "serial"\ndevice = "{slave_path}"\nbaud = 9600\nmin_interval_ms = 0\n')
    agent.start()
    t = threading.Thread(target=feed, args=(master, lines, 0.0005))
    t.start()
    t.join()
    time.sleep(1.5)  # last epochs through group commit and the publisher
    assert agent.terminate() == 0
    return agent


def test_gnss_agent(work):
    with open(LOG) as f:
        lines = [line.rstrip("\r\n") for line in f if line.strip()]
    master, slave = os.openpty()
    slave_path = os.ttyname(slave)
    broker = h.Broker(work)
    broker.start()
    tail = h.Tail(work, broker.uri)

    run_once(work, broker, tail, master, slave_path, lines)
    h.wait_until(lambda: len([r for r in tail.readings() if r["source"] == "gw-gnss-01"]) >= 200, 20,
                 "gateway positions")
    first = [r for r in tail.readings() if r["source"] == "gw-gnss-01"]
    assert all(r["kind"] == "position" and "container" not in r for r in first)
    seqs = [r["seq"] for r in first]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "gateway seqs must strictly increase"
    lat = [r["lat_e7"] for r in first]
    assert all(300_000_000 < v < 312_000_000 for v in lat), "positions around Yangshan (30.6N)"

    run_once(work, broker, tail, master, slave_path, lines[:400])
    h.wait_until(lambda: len([r for r in tail.readings() if r["source"] == "gw-gnss-01"]) > len(first), 20,
                 "positions after the restart")
    second = [r for r in tail.readings() if r["source"] == "gw-gnss-01"][len(first):]
    assert min(r["seq"] for r in second) > max(seqs), "sequence numbers restarted after an agent restart"
    tail.stop()
    h.log(f"{len(first)} gateway positions from {len(lines)} NMEA lines over a pty; "
          f"{len(second)} more after a restart, seq continuing at {min(r['seq'] for r in second)}")


if __name__ == "__main__":
    h.main(test_gnss_agent)
