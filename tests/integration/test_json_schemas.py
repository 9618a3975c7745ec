"""The JSON Schemas of schema/json/ on their own, without an agent (ctest contracts.json_schemas):
each is a valid draft 2020-12 schema for Debian 12's python3-jsonschema; messages of the agent's
exact form pass, in the published form and in the strict form the integration tests use
(contracts.py); the examples in docs/topics.md pass; and a table of broken messages fails, each
for the reason given (published form: what any consumer may rely on; strict form: also no member
the schema does not name). Exit 77 (skipped) without python3-jsonschema."""
import copy
import json
import os
import re
import sys

import contracts

RUN = "5bfc23e311eb55e81bc8f56b3bb51fcb"
TOPIC = {"status": "eport/v1/cnsha/gw-test-01/status", "health": "eport/v1/cnsha/gw-test-01/health",
         "reply": "eport/v1/cnsha/gw-test-01/reply"}

BIRTH = {"state": "online", "gateway": "gw-test-01", "site": "cnsha", "run_id": RUN, "agent_version": "0.1.0",
         "schema_version": 1, "config_hash": "9227b04f5dc18e97", "compression": "zstd", "time_utc_ms": 1795694139771}
WILL = {"state": "offline", "gateway": "gw-test-01", "run_id": RUN, "clean": False}
CLEAN = {"state": "offline", "gateway": "gw-test-01", "run_id": RUN, "clean": True}


def counters(*names):
    return {n: 0 for n in names}


QUEUE_CLASS = counters("rows", "bytes", "oldest_age_s", "evicted", "expired", "refused")
HEALTH = {
    "gateway": "gw-test-01", "run_id": RUN, "time_utc_ms": 1795695650123, "uptime_s": 61,
    "broker": "tcp://127.0.0.1:1883",
    "queue": {c: dict(QUEUE_CLASS) for c in ("alarm", "event", "telemetry", "bulk")},
    "store": {**counters("file_bytes", "max_bytes", "duplicates", "commit_failures", "invalid_seq", "commands",
                         "commands_bytes"), "recovered_from": "", "salvaged": 0},
    "uplink": counters("envelopes_published", "envelopes_acked", "envelopes_refused", "readings_acked", "bytes_sent", "connects",
                       "reconnects", "connect_failures", "certificate_refusals", "connection_losses", "failovers",
                       "undecodable_rows",
                       "commands_received", "commands_rejected", "commands_repeated"),
    "budget": counters("day_used", "day_limit", "month_used", "month_limit", "max_bytes_per_s"),
    "process": {"cpu_s": 0.41, "rss_kib": 11820},
    "bridge": {**counters("units_connected", "readings_received", "readings_stored", "readings_duplicate"),
               "readings_refused": counters("no_hello", "out_of_order", "window", "store_full", "internal",
                                            "malformed"),
               **counters("readings_acked", "discards_received", "discards_recorded", "seqs_declared_discarded",
                          "discards_refused"),
               "hellos_refused": counters("unit_id", "container_id", "seq_range", "version", "malformed", "auth"),
               "auth": counters("challenges", "ok", "no_key", "unsealed_dropped", "frames_not_authentic"),
               **counters("takeovers", "links_dead", "nacks_sent", "settings_sent", "settings_acked",
                          "protocol_errors"),
               "admission": counters("refused_max_units", "refused_per_address", "hello_timeouts",
                                     "dropped_unit_ids", "dropped_output", "pings_dropped")},
    "evidence": {**counters("checkpoints_received", "checkpoints_stored", "checkpoints_duplicate",
                            "checkpoints_refused", "acks_sent", "good", "bad", "unchecked", "heads_checked",
                            "heads_unchecked"),
                 "by_check": counters("unchecked", "verified", "bad_signature", "broken_chain", "malformed",
                                      "wrong_key", "other_source", "replayed", "seq_mismatch", "readings_mismatch"),
                 **counters("fragments", "fragments_duplicate", "fragments_dropped")},
    "ingest": counters("stored", "duplicates", "refused", "failed", "commits"),
    "gnss": counters("positions", "not_stored"),
}
CUSTODY = {"source": "gw-test-01:custody", "zones_version": "", "zones_origin": "none", "zones": 0,
           "expected_seals": 0, "paired_by_command": 0, "readings": 5, "events": 1,
           "by_event": counters("pairing", "unpairing", "geofence_entry", "geofence_exit", "motion_start",
                                "motion_stop", "excursion_start", "excursion_end", "seal_mismatch",
                                "seal_opened_outside_zone", "seal_tampered"),
           "rollbacks": 0, "undecodable": 0, "bad_state": 0, "commands": 0, "commands_refused": 0,
           "units_forgotten": 0, "profile_changes": 0}

VALID = [
    ("status", BIRTH), ("status", WILL), ("status", CLEAN),
    ("status", {**BIRTH, "compression": "none", "agent_version": "1.2.3~rc1"}),
    ("health", HEALTH), ("health", {**HEALTH, "custody": CUSTODY}), ("health", {**HEALTH, "broker": ""}),
    ("health", {**HEALTH, "broker": "ssl://broker.example:8883"}),
    ("reply", {"command_id": "c-1", "ok": True, "result": {"units": 50}}),
    ("reply", {"command_id": "c-2", "ok": False, "error": "unknown action"}),
    ("reply", {"ok": False, "error": "not an EPC1 command (missing file identifier)"}),
    ("reply", {"command_id": "c-3", "ok": True, "result": {}}),
    ("reply", {"command_id": "x" * 64, "ok": True, "result": {"config_hash": "9227b04f5dc18e97", "config": {}}}),
]


def with_(base, path, value):
    """A copy of base with the member at path ("a/b/c") set to value, or removed if value is DROP."""
    m = copy.deepcopy(base)
    *parents, leaf = path.split("/")
    at = m
    for p in parents:
        at = at[p]
    if value is DROP:
        del at[leaf]
    else:
        at[leaf] = value
    return m


DROP = object()
STRICT_ONLY = "strict"  # fails only in the strict form (an unknown member of an open object)

# (kind, message, what it breaks, which forms must refuse it: "both" or STRICT_ONLY)
INVALID = [
    ("status", with_(BIRTH, "state", "starting"), "state is online or offline", "both"),
    ("status", with_(BIRTH, "run_id", DROP), "birth without run_id", "both"),
    ("status", with_(BIRTH, "run_id", RUN.upper()), "run_id upper-case", "both"),
    ("status", with_(BIRTH, "run_id", RUN[:31]), "run_id 31 digits", "both"),
    ("status", with_(BIRTH, "schema_version", 2), "schema_version other than 1", "both"),
    ("status", with_(BIRTH, "schema_version", "1"), "schema_version a string", "both"),
    ("status", with_(BIRTH, "compression", "lz4"), "unknown compression", "both"),
    ("status", with_(BIRTH, "config_hash", "9227B04F5DC18E97"), "config_hash upper-case", "both"),
    ("status", with_(BIRTH, "gateway", "GW 1"), "gateway not a config id", "both"),
    ("status", with_(BIRTH, "site", DROP), "birth without site", "both"),
    ("status", with_(BIRTH, "time_utc_ms", -1), "negative time", "both"),
    ("status", with_(BIRTH, "time_utc_ms", 1.5), "time not an integer", "both"),
    ("status", with_(BIRTH, "agent_version", "latest"), "agent_version not x.y.z", "both"),
    ("status", with_(WILL, "clean", DROP), "offline without clean", "both"),
    ("status", with_(WILL, "clean", "false"), "clean a string", "both"),
    ("status", with_(WILL, "run_id", DROP), "offline without run_id", "both"),
    ("status", {"state": "offline", "gateway": "gw-test-01"}, "the old will (no run_id, no clean)", "both"),
    ("status", {**CLEAN, **{k: v for k, v in BIRTH.items() if k != "state"}},
     "an offline message with the birth's members", STRICT_ONLY),
    ("status", {**BIRTH, "uptime_s": 3}, "an unknown member", STRICT_ONLY),
    ("status", [BIRTH], "not an object", "both"),
    ("health", with_(HEALTH, "run_id", DROP), "health without run_id", "both"),
    ("health", with_(HEALTH, "store/salvaged", DROP), "store without salvaged", "both"),
    ("health", with_(HEALTH, "queue/bulk", DROP), "a class missing", "both"),
    ("health", with_(HEALTH, "queue/urgent", dict(QUEUE_CLASS)), "a fifth class", "both"),
    ("health", with_(HEALTH, "uplink/connects", -1), "a negative counter", "both"),
    ("health", with_(HEALTH, "uplink/connects", 2 ** 53), "a counter above 2^53 - 1", "both"),
    ("health", with_(HEALTH, "uplink/connects", 1.0 + 0.5), "a fractional counter", "both"),
    ("health", with_(HEALTH, "bridge/readings_refused/window", "0"), "a counter as a string", "both"),
    ("health", with_(HEALTH, "process/cpu_s", -0.1), "negative cpu time", "both"),
    ("health", with_(HEALTH, "broker", "http://127.0.0.1:1883"), "broker not tcp:// or ssl://", "both"),
    ("health", with_(HEALTH, "bridge", DROP), "no bridge member", "both"),
    ("health", with_(HEALTH, "bridge/admission/pings_dropped", DROP), "a bridge counter missing", "both"),
    ("health", with_(HEALTH, "evidence", DROP), "no evidence member", "both"),
    ("health", with_(HEALTH, "evidence/by_check/bad_signature", DROP), "an evidence verdict missing", "both"),
    ("health", with_(HEALTH, "custody", with_(CUSTODY, "by_event/pairing", DROP)), "custody event missing", "both"),
    ("health", with_(HEALTH, "custody", with_(CUSTODY, "zones_origin", "cloud")), "unknown zones origin", "both"),
    ("health", with_(HEALTH, "ingest/new_counter", 0), "an unknown counter", STRICT_ONLY),
    ("health", with_(HEALTH, "certificate", {"days_left": 3}), "an unknown member", STRICT_ONLY),
    ("reply", {"command_id": "", "ok": False, "error": "x"}, "command_id \"\" (no id: no member)", "both"),
    ("reply", {"command_id": "x" * 65, "ok": False, "error": "x"}, "command_id over 64", "both"),
    ("reply", {"command_id": "c", "ok": True}, "ok without result", "both"),
    ("reply", {"command_id": "c", "ok": True, "result": {}, "error": "x"}, "ok with an error", "both"),
    ("reply", {"command_id": "c", "ok": False}, "a refusal without error", "both"),
    ("reply", {"command_id": "c", "ok": False, "error": "x", "result": {}}, "a refusal with a result", "both"),
    ("reply", {"command_id": "c", "ok": False, "error": ""}, "an empty error", "both"),
    ("reply", {"command_id": "c", "ok": True, "result": 3}, "result not an object", "both"),
    ("reply", {"command_id": "c", "ok": "true", "result": {}}, "ok a string", "both"),
    ("reply", {"command_id": "c", "ok": True, "result": {}, "time_utc_ms": 1}, "a member the set lacks", "both"),
]


def doc_examples():
    """(kind, message) of every JSON message in docs/topics.md's examples: ```json blocks
    and the lines of the reply block."""
    with open(os.path.join(contracts.SOURCE, "docs", "topics.md")) as f:
        text = f.read()
    out = []
    for block in re.findall(r"```(?:json)?\n(.*?)```", text, re.S):
        for chunk in ([block] if block.lstrip().startswith("{") and "\n{" not in block.strip() else block.splitlines()):
            chunk = chunk.strip()
            if not chunk.startswith("{"):
                continue
            try:
                m = json.loads(chunk)
            except ValueError:
                continue
            if m.get("state") in ("online", "offline") and "gateway" in m:
                out.append(("status", m))
            elif "uptime_s" in m:
                out.append(("health", m))
            elif "ok" in m:
                out.append(("reply", m))
    return out


def main():
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        print(f"SKIP: python3-jsonschema is not installed for {sys.executable} (scripts/setup.sh --test)")
        return 77
    for kind in contracts.KINDS:
        contracts.validator(kind)  # check_schema() of the published schema
        import jsonschema
        jsonschema.Draft202012Validator.check_schema(contracts.strict(contracts.load(kind)))
    failures = []
    for kind, m in VALID:
        for strict_form in (False, True):
            p = contracts.problems(kind, m, strict_form)
            if p:
                failures.append(f"valid {kind} refused ({'strict' if strict_form else 'published'}): {p} in {m}")
        contracts.check(TOPIC[kind], json.dumps(m))
    examples = doc_examples()
    kinds_seen = {k for k, _ in examples}
    if kinds_seen != set(contracts.KINDS):
        failures.append(f"docs/topics.md: examples of {sorted(kinds_seen)} only, expected status, health, reply")
    for kind, m in examples:
        p = contracts.problems(kind, m)
        if p:
            failures.append(f"docs/topics.md example ({kind}) refused: {p} in {m}")
    for kind, m, why, forms in INVALID:
        published = contracts.problems(kind, m, strict_form=False)
        strict = contracts.problems(kind, m, strict_form=True)
        if not strict:
            failures.append(f"{kind}: {why}: accepted by the strict form: {m}")
        if forms == "both" and not published:
            failures.append(f"{kind}: {why}: accepted by the published schema: {m}")
        if forms == STRICT_ONLY and published:
            failures.append(f"{kind}: {why}: the published schema must accept it (consumers ignore unknown "
                            f"members): {published}")
    # check() also refuses a message about another gateway than its topic's, and non-JSON.
    for topic, payload in ((TOPIC["health"].replace("gw-test-01", "gw-other"), json.dumps(HEALTH)),
                           (TOPIC["status"].replace("cnsha", "deham"), json.dumps(BIRTH)),
                           (TOPIC["reply"], "not json")):
        try:
            contracts.check(topic, payload)
            failures.append(f"check() accepted {payload[:60]} on {topic}")
        except contracts.ContractError:
            pass
    for f in failures:
        print("FAIL:", f)
    print(f"{len(VALID)} valid messages and {len(examples)} doc examples accepted, {len(INVALID)} broken ones refused"
          if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
