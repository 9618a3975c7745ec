"""sites: what a site id may be, for the `site` parameter and the sites of a token
(docs/cloud.md section 15). The rule is the project's topic-safe id rule (docs/topics.md),
owned on the Python side by broker-config's eport_broker.inventory: a site id is a whole
topic level of every reading, so a value that breaks it names no site. From the source tree
that module is broker-config/lib's; the eport-ingest package installs it beside eport_ingest."""

from __future__ import annotations

import os
import sys

_LIB = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                     "broker-config", "lib"))
if os.path.isdir(os.path.join(_LIB, "eport_broker")) and _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from eport_broker.inventory import topic_id_problem  # noqa: E402


def site_problem(site: str) -> str:
    """'' when site can be a site id, else why not ("contains ' ' at byte 3 (...)")."""
    return topic_id_problem(site)
