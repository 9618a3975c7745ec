"""standards: the validators the DCSA and EPCIS tests share, from the official files in
../shared/standards/ (found from EPORT_SOURCE_DIR, else from this file's place in the
tree). Debian's python3-jsonschema checks no formats without optional modules, so
`date-time` (strict RFC 3339) and `uri` (RFC 3986, absolute) are checked here, always the
same way whatever is installed. DCSA's OpenAPI has no enums and no required fields: its
description-only code lists become enums and unknown properties are refused
(strict_dcsa), as tools/validate-dcsa.js --strict-codes does."""
import copy
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("EPORT_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..", "..")))
STANDARDS = os.path.normpath(os.path.join(SOURCE, "..", "shared", "standards"))
EPCIS_SCHEMA = os.path.join(STANDARDS, "gs1-epcis", "EPCIS-JSON-Schema.json")
EPCIS_EXAMPLES = os.path.join(STANDARDS, "gs1-epcis", "examples")
EPCIS_MUST_FAIL = os.path.join(STANDARDS, "openepcis-invalid")
DCSA_OPENAPI = os.path.join(STANDARDS, "dcsa", "tnt-v300", "tnt-v3.0.0-openapi.yaml")
TOOLS = os.path.join(STANDARDS, "tools")


def missing() -> str:
    """'' when the validators can run, else what is missing."""
    for path in (EPCIS_SCHEMA, DCSA_OPENAPI, EPCIS_MUST_FAIL):
        if not os.path.exists(path):
            return f"{path} (the shared standards folder next to the source tree)"
    for mod, pkg in (("jsonschema", "python3-jsonschema"), ("yaml", "python3-yaml")):
        try:
            __import__(mod)
        except ImportError:
            return f"the Python module {mod} (apt-get install {pkg}; run with /usr/bin/python3)"
    return ""


_DATE_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$")
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_date_time(value) -> bool:
    """RFC 3339 section 5.6 date-time, with its ranges (no 24:00, no 31 November)."""
    if not isinstance(value, str):
        return True   # formats apply to strings only
    m = _DATE_TIME.match(value)
    if not m:
        return False
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= mo <= 12 and 1 <= d <= _DAYS[mo - 1] and h <= 23 and mi <= 59 and s <= 60):
        return False
    if mo == 2 and d == 29 and not (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)):
        return False
    if m.group(9) and (int(m.group(10)) > 23 or int(m.group(11)) > 59):
        return False
    return True


# RFC 3986 URI (absolute, fragment allowed): scheme ":" hier-part ["?" query] ["#" fragment]
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:"
                  r"(?://(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?"
                  r"(?:\[[0-9A-Fa-f:.vV]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
                  rf"(?:/{_PCHAR}*)*|/?(?:{_PCHAR}+(?:/{_PCHAR}*)*)?)"
                  rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?$")


def is_uri(value) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


def format_checker():
    import jsonschema
    fc = jsonschema.FormatChecker(formats=())
    fc.checks("date-time")(is_date_time)
    fc.checks("uri")(is_uri)
    return fc


# -- EPCIS --------------------------------------------------------------------------------
_epcis = None


def epcis_validator():
    global _epcis
    if _epcis is None:
        import jsonschema
        with open(EPCIS_SCHEMA) as f:
            schema = json.load(f)
        _epcis = jsonschema.Draft7Validator(schema, format_checker=format_checker())
    return _epcis


def epcis_errors(doc) -> list:
    """Messages of what is wrong with an EPCIS document or event ([] when valid)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in epcis_validator().iter_errors(doc)]


def must_fail_documents() -> list:
    return sorted(os.path.join(EPCIS_MUST_FAIL, n) for n in os.listdir(EPCIS_MUST_FAIL) if n.endswith(".json"))


def example_documents() -> list:
    out = []
    for d, _, names in os.walk(EPCIS_EXAMPLES):
        out += [os.path.join(d, n) for n in names if n.endswith(".jsonld")]
    return sorted(out)


# -- DCSA ---------------------------------------------------------------------------------
_dcsa = {}
_CODE_LINE = re.compile(r"^\s*- `([A-Z0-9_]+)`", re.M)


def strict_codes(schemas: dict) -> dict:
    """Every string with a code list in its description ("- `CODE` - text", two or more, and
    not "including but not limited to" / "any other") gets that list as its enum; every
    object with properties refuses unknown ones. The same rule as validate-dcsa.js."""
    schemas = copy.deepcopy(schemas)

    def walk(o):
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
            if o.get("type") == "string" and isinstance(o.get("description"), str):
                codes = _CODE_LINE.findall(o["description"])
                if len(codes) >= 2 and not re.search(r"not limited to|any other", o["description"]):
                    o["enum"] = codes
            if o.get("type") == "object" and "properties" in o:
                o["additionalProperties"] = False
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(schemas)
    return schemas


def dcsa_schemas(strict=True) -> dict:
    import yaml
    with open(DCSA_OPENAPI) as f:
        spec = yaml.safe_load(f)
    defs = json.loads(json.dumps(spec["components"]["schemas"]).replace("#/components/schemas/", "#/definitions/"))
    return strict_codes(defs) if strict else defs


def dcsa_validator(root="GetEventsResponse", strict=True):
    key = (root, strict)
    if key not in _dcsa:
        import jsonschema
        defs = dcsa_schemas(strict)
        schema = {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": defs,
                  "$ref": f"#/definitions/{root}"}
        _dcsa[key] = jsonschema.Draft7Validator(schema, format_checker=format_checker())
    return _dcsa[key]


def dcsa_errors(doc, root="GetEventsResponse", strict=True) -> list:
    """What is wrong with a DCSA message (GetEventsResponse by default; root="Event" for
    one event), with the codes checked strictly."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in dcsa_validator(root, strict).iter_errors(doc)]


def dcsa_code_list(schema_name: str, prop: str) -> list:
    """The codes of one description-only code list, e.g. ("EventClassification", "iotEventType")."""
    return dcsa_schemas(True)[schema_name]["properties"][prop]["enum"]


if __name__ == "__main__":   # python3 standards.py file.json...: validate files by their shape
    bad = 0
    for path in sys.argv[1:]:
        with open(path) as f:
            doc = json.load(f)
        errs = dcsa_errors(doc) if "events" in doc else epcis_errors(doc)
        bad += bool(errs)
        print("FAIL" if errs else "ok", path, *errs[:3])
    sys.exit(1 if bad else 0)
