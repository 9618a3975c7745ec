#!/usr/bin/env bash
# The e-port cloud side in one command (docs/cloud.md): a 3-node NATS JetStream
# cluster with its MQTT gateway, PostgreSQL 15 + PostGIS, two eport-ingest
# workers, the agent and simulated units on this machine; prints the live map's
# URL and a completeness summary from the database.
# Usage: scripts/cloud-demo.sh [--duration S] [--units N] [--rate R] [--port P] [--stay]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --cloud
exec /usr/bin/python3 scripts/cloud_demo.py "$@"
