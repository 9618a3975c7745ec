"""eport_ingest: the reference ingest service of eport-edge (docs/cloud.md): identical
workers that share one JetStream durable consumer on the NATS cluster's $MQTT_msgs stream
and write to PostgreSQL/PostGIS before acknowledging."""
