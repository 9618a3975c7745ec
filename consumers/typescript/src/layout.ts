// layout.ts: the wire layout of schema/telemetry.fbs (1.5), and of the outer table of
// schema/telemetry_v2.fbs (LAYOUT_V2), that the verifier and the decoders read.
// Field i of a table sits in vtable slot 4 + 2*i (declaration order in the schema). This is the
// Python consumer's LAYOUT table, with the schema's names; fields appended to the schema later
// are not read (a newer writer's longer vtable is fine, an older one's shorter vtable means absent).

export type Kind = "bool" | "u8" | "u16" | "i16" | "i32" | "u64" | "string" | "[u8]" | "[table]" | "union";

export interface Field {
  readonly name: string;
  readonly kind: Kind;
  /** "[table]": the element table; "union": the field holding the member's type. */
  readonly arg?: string;
}

const f = (name: string, kind: Kind, arg?: string): Field => ({ name, kind, arg });

export const LAYOUT: Readonly<Record<string, readonly Field[]>> = {
  Envelope: [f("schema_version", "u16"), f("site_id", "string"), f("gateway_id", "string"),
    f("envelope_seq", "u64"), f("sent_utc_ms", "u64"), f("priority", "u8"),
    f("readings", "[table]", "Reading")],
  Reading: [f("source_id", "string"), f("container_id", "string"), f("seq", "u64"), f("time_utc_ms", "u64"),
    f("payload_type", "u8"), f("payload", "union", "payload_type"),
    f("time_source", "u8"), // 1.1
    f("class_seq", "u64")], // 1.5
  Position: [f("lat_e7", "i32"), f("lon_e7", "i32"), f("speed_cm_s", "u16"), f("heading_cdeg", "u16"),
    f("fix", "u8"), f("satellites", "u8"), f("hdop_centi", "u16")],
  SealEvent: [f("seal_id", "string"), f("state", "u8")],
  DoorEvent: [f("state", "u8")],
  SensorSample: [f("temperature_centi_c", "i16"), f("humidity_centi_pct", "u16"), f("shock_milli_g", "u16"),
    f("battery_mv", "u16"), f("battery_pct", "u8"), f("reefer_setpoint_centi_c", "i16")],
  SequenceGap: [f("first_seq", "u64"), f("reason", "u8")], // 1.1
  CustodyEvent: [f("code", "u8"), f("subject_id", "string"), f("first_seq", "u64"), f("caused_by_seq", "u64"),
    f("zone_id", "string"), f("lat_e7", "i32"), f("lon_e7", "i32"), f("interpolated", "bool"),
    f("ended_by_gap", "bool"), f("temperature_centi_c", "i16"), f("setpoint_centi_c", "i16"),
    f("band_low_centi_c", "i16"), f("band_high_centi_c", "i16"), f("duration_ms", "u64"), // 1.2
    f("seal_id", "string"), f("expected_seal_id", "string"), f("seal_class", "u8"),
    f("command_id", "string")], // 1.3
  EvidenceCheckpoint: [f("cose", "[u8]"), f("n", "u64"), f("check", "u8")], // 1.4
};

/** The outer table of envelope v2 (schema/telemetry_v2.fbs, root eport.telemetry.v2.Envelope,
 * identifier EPT2); its columns are decoded by envelope_v2.ts, its v1_readings are v1 Readings. */
export const LAYOUT_V2: Readonly<Record<string, readonly Field[]>> = {
  EnvelopeV2: [f("columns", "[u8]"), f("v1_readings", "[table]", "Reading"), f("site_id", "string"),
    f("gateway_id", "string"), f("class_seqs", "[u8]")], // class_seqs: 1.5
};

/** union Payload: payload_type value -> table (0 is NONE). */
export const PAYLOAD_MEMBERS: Readonly<Record<number, string>> = {
  1: "Position", 2: "SealEvent", 3: "DoorEvent", 4: "SensorSample", 5: "SequenceGap",
  6: "CustodyEvent", 7: "EvidenceCheckpoint",
};

export const SCALAR_SIZE: Readonly<Partial<Record<Kind, number>>> = { bool: 1, u8: 1, u16: 2, i16: 2, i32: 4, u64: 8 };

/** The vtable slot of a field, by name (throws on a name not in LAYOUT: a programming error). */
export function slotOf(table: string, field: string): number {
  const i = (LAYOUT[table] ?? LAYOUT_V2[table]).findIndex((x) => x.name === field);
  if (i < 0) throw new Error(`LAYOUT has no ${table}.${field}`);
  return 4 + 2 * i;
}
