#!/usr/bin/python3
"""Why the generated ACL uses explicit per-gateway lines: on the generated
broker with a hand-written ACL of `pattern` lines,
- mosquitto.conf(5) says %u must be the whole topic level; 2.0.11 in fact
  also substitutes it inside a level (status-%u matched). That is
  undocumented behaviour, recorded here so that a version change shows up;
- a site wildcard in a pattern (eport/v1/+/%u/...) lets a gateway publish
  under any site id;
- ACL refusals are logged ("Denied PUBLISH") only with log_type debug."""

import time

from harness import QUIET_S, Client, Site, eb, main

PATTERN_ACL = """\
pattern write status/%u
pattern write status-%u
pattern write eport/v1/+/%u/data/#
user reader-1
topic read #
"""


def test(workdir, t):
    site = Site(workdir)
    (site.out / "broker" / "acl").write_text(PATTERN_ACL)
    broker, copy = eb.start_copy(site.conf, workdir / "broker", stay_root=True,
                                  overrides={"log_type": "debug"})
    port = next(iter(copy.ports.values()))
    clients = []
    try:
        reader = Client(port, site.ca, *site.cert("reader-1"), client_id="reader-1")
        gw = Client(port, site.ca, *site.cert("gw-a"), client_id="gw-a")
        clients += [reader, gw]
        t.check(reader.connect() and gw.connect(), "reader and gw-a connect")
        reader.subscribe("#")
        gw.publish("status/gw-a", "whole-level")
        gw.publish("status-gw-a", "part-of-level")
        gw.publish("eport/v1/s1/gw-a/data/event", "own-site")
        gw.publish("eport/v1/another-site/gw-a/data/event", "other-site")
        gw.publish("eport/v1/s1/gw-b/data/event", "as-gw-b")
        time.sleep(QUIET_S)
        got = reader.received()
        t.check(b"whole-level" in got, "pattern status/%u: gw-a may publish status/gw-a")
        t.check(b"part-of-level" in got, "pattern status-%u: mosquitto 2.0.11 substitutes %u inside a level too "
                "(undocumented: the man page requires a whole level)")
        t.check(b"own-site" in got, "pattern eport/v1/+/%u/data/#: gw-a publishes under its own site")
        t.check(b"other-site" in got,
                "...and ALSO under another site id: a site wildcard cannot bind a gateway to its site")
        t.check(b"as-gw-b" not in got, "gw-a cannot publish as gw-b")
        t.check("Denied PUBLISH from gw-a" in broker.log() and "eport/v1/s1/gw-b/data/event" in broker.log(),
                "with log_type debug the broker logs 'Denied PUBLISH from gw-a' with the topic")
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        broker.stop()


if __name__ == "__main__":
    main(test)
