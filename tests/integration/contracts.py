"""The JSON contracts of the agent's status, health and reply messages (schema/json/, documented
in docs/topics.md "JSON messages: schemas and stability"), as the integration tests check them:
check(topic, payload) validates one message received on eport/v1/<site>/<gw>/{status,health,reply}
against its schema and raises ContractError saying what is wrong, where, in which message.

The tests use the schemas in their strict form: every object that the published schema leaves
open for later additions (consumers ignore unknown members) refuses unknown members here, so that
a member the agent starts sending without its schema and its documentation fails the tests.
Needs python3-jsonschema (Debian 12: 4.10, draft 2020-12; scripts/setup.sh --test installs it)."""
import copy
import json
import os

SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCHEMA_DIR = os.path.join(SOURCE, "schema", "json")
KINDS = ("status", "health", "reply")


class ContractError(AssertionError):
    pass


def load(kind):
    with open(os.path.join(SCHEMA_DIR, f"{kind}.schema.json")) as f:
        return json.load(f)


def strict(schema):
    """A copy of schema in which every object with "properties" and no "additionalProperties"
    refuses unknown members. Descends into properties, $defs, items and the oneOf/anyOf/allOf
    branches, never into if/then/else/not (whose "properties" only test a member)."""
    schema = copy.deepcopy(schema)

    def tighten(s):
        if not isinstance(s, dict):
            return
        if "properties" in s and "additionalProperties" not in s:
            s["additionalProperties"] = False
        for key in ("properties", "$defs"):
            for sub in s.get(key, {}).values():
                tighten(sub)
        if "items" in s:
            tighten(s["items"])
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in s.get(key, []):
                tighten(sub)

    tighten(schema)
    return schema


_VALIDATORS = {}


def validator(kind, strict_form=True):
    if (kind, strict_form) not in _VALIDATORS:
        try:
            import jsonschema
        except ImportError as e:
            raise ContractError("the JSON contract checks need python3-jsonschema (scripts/setup.sh --test) for "
                                f"this python ({e})") from e
        schema = load(kind)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        _VALIDATORS[(kind, strict_form)] = cls(strict(schema) if strict_form else schema)
    return _VALIDATORS[(kind, strict_form)]


def kind_of(topic):
    """"status", "health" or "reply" for a gateway's topic of that kind, else None."""
    levels = topic.split("/")
    if len(levels) == 5 and levels[0] == "eport" and levels[1] == "v1" and levels[4] in KINDS:
        return levels[4]
    return None


def problems(kind, message, strict_form=True):
    """Every schema violation of one parsed message, as "path: message" strings."""
    import jsonschema

    out = []
    for e in sorted(validator(kind, strict_form).iter_errors(message), key=lambda e: list(e.absolute_path)):
        if e.context:  # oneOf (online or offline): say what the closest branch found wrong
            e = jsonschema.exceptions.best_match(e.context)
        out.append(f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}")
    return out


def check(topic, payload, kind=None):
    """Validates one message received on topic; returns it parsed. ContractError if it is not
    JSON, breaks its schema, or names another gateway (or site) than its topic."""
    kind = kind or kind_of(topic)
    if kind is None:
        raise ContractError(f"{topic}: not a status, health or reply topic")
    text = payload.decode() if isinstance(payload, (bytes, bytearray)) else payload
    try:
        message = json.loads(text)
    except ValueError as e:
        raise ContractError(f"{topic}: not JSON ({e}): {text[:300]!r}") from e
    found = problems(kind, message)
    levels = topic.split("/")
    if len(levels) == 5 and isinstance(message, dict):
        if kind in ("status", "health") and message.get("gateway") not in (None, levels[3]):
            found.append(f"gateway: {message.get('gateway')!r}, the topic's gateway is {levels[3]!r}")
        if kind == "status" and message.get("site") not in (None, levels[2]):
            found.append(f"site: {message.get('site')!r}, the topic's site is {levels[2]!r}")
    if found:
        raise ContractError(f"{topic}: {len(found)} contract violation(s) of schema/json/{kind}.schema.json: "
                            + "; ".join(found[:8]) + f" in {text[:600]}")
    return message


def check_lines(lines):
    """Validates `mosquitto_sub -v` output ("topic payload" lines); returns (count checked,
    violations as strings)."""
    checked, bad = 0, []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        topic, _, payload = line.partition(" ")
        if kind_of(topic) is None:
            continue
        checked += 1
        try:
            check(topic, payload)
        except ContractError as e:
            bad.append(str(e))
    return checked, bad
