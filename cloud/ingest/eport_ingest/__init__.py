"""eport_ingest: the reference ingest service of eport-edge (docs/cloud.md): identical
workers that share one JetStream durable consumer on the NATS cluster's $MQTT_msgs stream
and write to PostgreSQL/PostGIS before acknowledging.

Decoding and the DCSA/EPCIS mappings are the consumer kit's (the package eport,
consumers/python/eport, installed by python3-eport): from a source tree the repository's
copy comes first on sys.path."""
import os as _os
import sys as _sys

_KIT = _os.path.normpath(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "..", "..", "..",
                                       "consumers", "python"))
if _os.path.isdir(_os.path.join(_KIT, "eport")) and _KIT not in _sys.path:
    _sys.path.insert(0, _KIT)
