#!/usr/bin/env python3
# Generates the NMEA test logs in tests/data/: a truck crossing the southern end
# of the Donghai Bridge into Yangshan Deep-Water Port and driving along the quay,
# 1 Hz, u-blox-style NMEA 4.10 (GN talker plus GP/GL/GA/BD satellites in view).
# Deterministic (fixed seed, no dependencies): rerun after changing it with
#   python3 agent/gnss/tools/gen_yangshan_nmea.py tests/data
# and update the expected values in agent/gnss/tests/log_replay_test.cpp.
import math
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

START = datetime(2024, 5, 14, 23, 58, 20, tzinfo=timezone.utc)  # crosses UTC midnight
EPOCHS = 260
NO_FIX = set(range(0, 2)) | set(range(225, 230))  # cold start; under a quay crane at the berth

# (lat, lon, cruise speed m/s on the leg that ends here, stop seconds here)
WAYPOINTS = [
    (30.63500, 122.04300, 0.0, 0),    # on the Donghai Bridge, heading south-east
    (30.63300, 122.04500, 20.0, 0),   # bridge end, Xiaoyangshan
    (30.63050, 122.04800, 12.0, 8),   # port gate: stop for the check
    (30.62800, 122.05150, 11.0, 0),   # inner port road
    (30.62500, 122.05400, 9.0, 0),    # turn onto the quay road
    (30.62300, 122.05800, 7.0, 30),   # berth, under a crane: wait
    (30.62200, 122.06050, 5.0, 0),    # creep along the quay
]
EARTH_R = 6371000.0
ACCEL = 1.5  # m/s^2, both ways


def checksum(body):
    c = 0
    for ch in body:
        c ^= ord(ch)
    return "%02X" % c


def sentence(body):
    return "$%s*%s" % (body, checksum(body))


def dm(value, deg_digits, hemis):
    hemi = hemis[0] if value >= 0 else hemis[1]
    value = abs(value)
    deg = int(value)
    minutes = round((value - deg) * 60.0, 5)
    if minutes >= 60.0:
        deg, minutes = deg + 1, 0.0
    return "%0*d%08.5f" % (deg_digits, deg, minutes), hemi


def bearing(a, b):
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    y = math.sin(lo2 - lo1) * math.cos(la2)
    x = math.cos(la1) * math.sin(la2) - math.sin(la1) * math.cos(la2) * math.cos(lo2 - lo1)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def distance(a, b):
    la1, la2 = math.radians(a[0]), math.radians(b[0])
    dla, dlo = la2 - la1, math.radians(b[1] - a[1])
    h = math.sin(dla / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(dlo / 2) ** 2
    return 2 * EARTH_R * math.asin(math.sqrt(h))


def move(p, brg, d):
    la, lo, t = math.radians(p[0]), math.radians(p[1]), math.radians(brg)
    dr = d / EARTH_R
    la2 = math.asin(math.sin(la) * math.cos(dr) + math.cos(la) * math.sin(dr) * math.cos(t))
    lo2 = lo + math.atan2(math.sin(t) * math.sin(dr) * math.cos(la),
                          math.cos(dr) - math.sin(la) * math.sin(la2))
    return (math.degrees(la2), math.degrees(lo2))


def trajectory():
    """Yields (lat, lon, speed m/s, course deg) once per second."""
    pos = WAYPOINTS[0][:2]
    speed = 20.0
    course = bearing(WAYPOINTS[0], WAYPOINTS[1])
    leg = 1
    wait = 0
    while True:
        yield pos[0], pos[1], speed, course
        if wait > 0:
            wait -= 1
            continue
        if leg >= len(WAYPOINTS):
            speed = max(0.0, speed - ACCEL)
            continue
        target = WAYPOINTS[leg]
        remaining = distance(pos, target)
        # brake to stop at a stop point, otherwise to the next leg's speed
        next_speed = 0.0 if target[3] or leg + 1 >= len(WAYPOINTS) else WAYPOINTS[leg + 1][2]
        brake = math.sqrt(max(0.0, next_speed ** 2 + 2 * ACCEL * remaining))
        speed = min(target[2], speed + ACCEL, brake)
        step = speed
        course = bearing(pos, target)
        if step >= remaining:
            pos = target[:2]
            leg += 1
            if target[3]:
                speed = 0.0
                wait = target[3]
        else:
            pos = move(pos, course, step)


def sky(rng, epoch):
    """Satellites in view per constellation and which are used."""
    systems = [
        ("GP", 1, [2, 5, 12, 13, 15, 18, 24, 29]),
        ("GL", 2, [65, 66, 75, 81, 82]),
        ("GA", 3, [4, 11, 19, 36]),
        ("BD", 4, [6, 9, 16, 21, 26, 39]),
    ]
    out = []
    for talker, sysid, prns in systems:
        sats = []
        for i, prn in enumerate(prns):
            elev = 10 + (prn * 7 + i * 11) % 75
            azim = (prn * 37 + epoch // 30) % 360
            snr = 22 + (prn * 5 + epoch // 7) % 25
            sats.append((prn, elev, azim, snr))
        used = [s[0] for s in sats if s[1] > 20][:6]
        out.append((talker, sysid, sats, used))
    return out


def epoch_lines(rng, i, now, state):
    lat, lon, speed, course = state
    fix = i not in NO_FIX
    hhmmss = now.strftime("%H%M%S") + ".00"
    ddmmyy = now.strftime("%d%m%y")
    systems = sky(rng, i)
    lines = []
    if fix:
        jlat = lat + rng.uniform(-1.5e-6, 1.5e-6)
        jlon = lon + rng.uniform(-1.5e-6, 1.5e-6)
        la, ns = dm(jlat, 2, "NS")
        lo, ew = dm(jlon, 3, "EW")
        knots = speed * 3600.0 / 1852.0
        kmh = speed * 3.6
        crs = "%.2f" % course if speed >= 0.5 else ""
        used_total = sum(len(s[3]) for s in systems)
        hdop = 0.7 + 0.4 * abs(math.sin(i / 9.0))
        pdop, vdop = hdop * 1.6, hdop * 1.25
        alt = (14.0 if i < 40 else 6.5) + rng.uniform(-0.4, 0.4)
        lines.append(sentence("GNRMC,%s,A,%s,%s,%s,%s,%.3f,%s,%s,,,A,V" %
                              (hhmmss, la, ns, lo, ew, knots, crs, ddmmyy)))
        lines.append(sentence("GNVTG,%s,T,,M,%.3f,N,%.3f,K,A" % (crs, knots, kmh)))
        lines.append(sentence("GNGGA,%s,%s,%s,%s,%s,1,%02d,%.2f,%.1f,M,9.4,M,," %
                              (hhmmss, la, ns, lo, ew, used_total, hdop, alt)))
        for talker, sysid, sats, used in systems:
            prns = [str(p) for p in used] + [""] * (12 - len(used))
            lines.append(sentence("GNGSA,A,3,%s,%.2f,%.2f,%.2f,%d" %
                                  (",".join("%02d" % int(p) if p else "" for p in prns),
                                   pdop, hdop, vdop, sysid)))
    else:
        lines.append(sentence("GNRMC,%s,V,,,,,,,%s,,,N,V" % (hhmmss, ddmmyy)))
        lines.append(sentence("GNVTG,,T,,M,,N,,K,N"))
        lines.append(sentence("GNGGA,%s,,,,,0,00,99.99,,,,,," % hhmmss))
        for talker, sysid, sats, used in systems:
            lines.append(sentence("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,%d" % sysid))
    for talker, sysid, sats, used in systems:
        total = (len(sats) + 3) // 4
        for m in range(total):
            chunk = sats[m * 4:(m + 1) * 4]
            blocks = ",".join("%02d,%02d,%03d,%s" % (p, e, a, "%02d" % s if fix else "")
                              for p, e, a, s in chunk)
            lines.append(sentence("%sGSV,%d,%d,%02d,%s,1" % (talker, total, m + 1, len(sats), blocks)))
    return lines


def malformed_lines(good):
    """A short stream with deliberate faults between good epochs."""
    epoch = [l for l in good[5 * 18:5 * 18 + 40]]  # good lines to mix in
    bad = []
    rmc = next(l for l in epoch if l.startswith("$GNRMC"))
    gga = next(l for l in epoch if l.startswith("$GNGGA"))
    bad.append(rmc[:-2] + ("00" if rmc[-2:] != "00" else "01"))            # bad checksum
    bad.append(gga.split("*")[0])                                           # no checksum
    bad.append(gga[:30])                                                    # truncated (cut mid-line)
    bad.append(sentence("GNGGA,000000.00,3037.12340,N,12203.60000,E,1,08,1.0,5.0,M,9.4,M,,,EXTRA,FIELDS,0000"))  # too long
    bad.append("\x00\x01garbage\xff\xfe")                                   # line noise
    bad.append(sentence("XXGGA,000000.00,3037.12340,N,12203.60000,E,1,08,1.0,5.0,M,9.4,M,,"))  # unknown talker
    bad.append(sentence("GNGLL,3037.12340,N,12203.60000,E,000000.00,A,A"))  # unsupported type
    bad.append(sentence("GNGGA,000000.00,9137.12340,N,12203.60000,E,1,08,1.0,5.0,M,9.4,M,,"))  # lat > 90
    bad.append(sentence("GNGGA,000000.00,3037.12340,N,12203.60000,E,x,08,1.0,5.0,M,9.4,M,,"))  # quality not a number
    out = []
    for i, line in enumerate(good[:120]):
        out.append(line)
        if i % 13 == 12 and bad:
            out.append(bad.pop(0))
    out.extend(bad)
    return out


def main():
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
    rng = random.Random(20240514)
    traj = trajectory()
    good = []
    for i in range(EPOCHS):
        state = next(traj)
        good.extend(epoch_lines(rng, i, START + timedelta(seconds=i), state))
    (outdir / "yangshan_truck.nmea").write_bytes(("\r\n".join(good) + "\r\n").encode("ascii"))
    bad = malformed_lines(good)
    (outdir / "yangshan_malformed.nmea").write_bytes(
        ("\r\n".join(bad) + "\r\n").encode("latin-1"))
    print("wrote %d + %d lines to %s" % (len(good), len(bad), outdir))


if __name__ == "__main__":
    main()
