/* Message codec: epb_message <-> frame body (version, type, payload, crc),
 * sealed frames' counter and tag included (the tag itself is computed by the
 * function an epb_auth points to, auth.c).
 * Field order and ranges are the spec in docs/firmware-bridge.md; encoder and
 * decoder share one validator so anything encodable decodes and vice versa. */
#include <string.h>

#include "epb_internal.h"

#define BODY_OVERHEAD 6u /* version + type + crc32c */
#define POS_PRESENT_ALL (EPB_POS_SPEED | EPB_POS_HEADING | EPB_POS_HDOP)
#define SENSOR_PRESENT_ALL                                                  \
  (EPB_SENSOR_TEMPERATURE | EPB_SENSOR_HUMIDITY | EPB_SENSOR_SHOCK |        \
   EPB_SENSOR_BATTERY_MV | EPB_SENSOR_BATTERY_PCT | EPB_SENSOR_REEFER_SETPOINT)

#define LAT_E7_MAX 900000000L
#define LON_E7_MAX 1800000000L

/* ---- validation (shared by encode and decode) ---- */

static bool valid_string(const char *s, uint8_t len, uint8_t min, uint8_t max) {
  uint8_t i;
  if (len < min || len > max) return false;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20u || c > 0x7Eu) return false;
  }
  return true;
}

static bool valid_seq(uint64_t seq) { return seq >= 1u && seq <= EPB_SEQ_MAX; }

static bool valid_reading(const epb_reading *r) {
  if (!valid_seq(r->seq)) return false; /* seq 0 never names a reading */
  switch (r->kind) {
    case EPB_READING_POSITION: {
      const epb_position *p = &r->u.position;
      if (p->lat_e7 < -LAT_E7_MAX || p->lat_e7 > LAT_E7_MAX) return false;
      if (p->lon_e7 < -LON_E7_MAX || p->lon_e7 > LON_E7_MAX) return false;
      if (p->fix > 8u) return false;
      if ((p->present & ~POS_PRESENT_ALL) != 0) return false;
      if ((p->present & EPB_POS_HEADING) && p->heading_cdeg > 35999u) return false;
      return true;
    }
    case EPB_READING_SEAL:
      return r->u.seal.state <= 3u &&
             valid_string(r->u.seal.seal_id, r->u.seal.seal_id_len, 0,
                          EPB_SEAL_ID_MAX);
    case EPB_READING_DOOR:
      return r->u.door.state <= 2u;
    case EPB_READING_SENSOR: {
      const epb_sensor *s = &r->u.sensor;
      if ((s->present & ~SENSOR_PRESENT_ALL) != 0) return false;
      if ((s->present & EPB_SENSOR_HUMIDITY) && s->humidity_centi_pct > 10000u)
        return false;
      if ((s->present & EPB_SENSOR_BATTERY_PCT) && s->battery_pct > 100u)
        return false;
      return true;
    }
    default:
      return false;
  }
}

static bool valid_message(const epb_message *m) {
  switch (m->type) {
    case EPB_MSG_HELLO: {
      const epb_hello *h = &m->m.hello;
      return valid_string(h->unit_id, h->unit_id_len, 1, EPB_UNIT_ID_MAX) &&
             valid_string(h->container_id, h->container_id_len, 0,
                          EPB_CONTAINER_ID_MAX) &&
             valid_string(h->firmware, h->firmware_len, 0, EPB_FIRMWARE_MAX) &&
             valid_seq(h->next_seq) && h->oldest_seq >= 1u &&
             h->oldest_seq <= h->next_seq;
    }
    case EPB_MSG_WELCOME:
      return m->m.welcome.window != 0 &&
             m->m.welcome.last_stored_seq <= EPB_SEQ_MAX;
    case EPB_MSG_READING:
      return valid_reading(&m->m.reading);
    case EPB_MSG_ACK:
      return m->m.ack.seq <= EPB_SEQ_MAX;
    case EPB_MSG_NACK:
      return m->m.nack.seq <= EPB_SEQ_MAX &&
             m->m.nack.reason >= EPB_NACK_MALFORMED &&
             m->m.nack.reason <= EPB_NACK_REASON_MAX;
    case EPB_MSG_DISCARD: {
      const epb_discard *d = &m->m.discard;
      return valid_seq(d->first_seq) && valid_seq(d->last_seq) &&
             d->first_seq <= d->last_seq && d->reason >= 1u &&
             d->reason <= EPB_DISCARD_REASON_MAX;
    }
    case EPB_MSG_EVIDENCE: {
      const epb_evidence *e = &m->m.evidence;
      size_t rest;
      if (!valid_seq(e->seq) || e->total_len == 0u || e->total_len > EPB_EVF_TOTAL_MAX ||
          e->offset >= e->total_len || e->offset % EPB_EVF_DATA_MAX != 0u)
        return false;
      rest = (size_t)e->total_len - e->offset;
      return e->len == (rest < EPB_EVF_DATA_MAX ? rest : EPB_EVF_DATA_MAX);
    }
    case EPB_MSG_EVIDENCE_ACK:
      return valid_seq(m->m.evidence_ack.seq);
    case EPB_MSG_SETTINGS:
    case EPB_MSG_SETTINGS_ACK: {
      const epb_settings *st = &m->m.settings;
      if (!st->extended)
        return st->deadbands == 0 && st->temperature_deadband_centi_c == 0 &&
               st->position_deadband_m == 0;
      if (st->extended != 1u) return false;
      if ((st->deadbands & ~(EPB_DEADBAND_TEMPERATURE | EPB_DEADBAND_POSITION)) != 0) return false;
      if (st->deadbands & EPB_DEADBAND_TEMPERATURE) {
        if (st->temperature_deadband_centi_c > EPB_TEMPERATURE_DEADBAND_MAX) return false;
      } else if (st->temperature_deadband_centi_c != 0) {
        return false;
      }
      if (st->deadbands & EPB_DEADBAND_POSITION) {
        if (st->position_deadband_m > EPB_POSITION_DEADBAND_MAX) return false;
      } else if (st->position_deadband_m != 0) {
        return false;
      }
      return true;
    }
    case EPB_MSG_TIME_SYNC:
    case EPB_MSG_FEATURES: /* unknown bits are for later versions: ignored, not refused */
    case EPB_MSG_PING:
    case EPB_MSG_PONG:
    case EPB_MSG_CHALLENGE:
    case EPB_MSG_AUTH:
      return true;
    default:
      return false;
  }
}

/* HELLO, CHALLENGE and AUTH set up a session key; they are never sealed. */
static bool sealable(uint8_t type) {
  return type != EPB_MSG_HELLO && type != EPB_MSG_CHALLENGE && type != EPB_MSG_AUTH;
}

/* ---- encoding ---- */

static void put_bytes(epbi_writer *w, const uint8_t *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) epbi_put_u8(w, b[i]);
}

static void put_string(epbi_writer *w, const char *s, uint8_t len) {
  uint8_t i;
  epbi_put_u8(w, len);
  for (i = 0; i < len; i++) epbi_put_u8(w, (uint8_t)s[i]);
}

static void put_reading(epbi_writer *w, const epb_reading *r) {
  epbi_put_u64(w, r->seq);
  epbi_put_u64(w, r->time_utc_ms);
  epbi_put_u8(w, r->kind);
  switch (r->kind) {
    case EPB_READING_POSITION: {
      const epb_position *p = &r->u.position;
      epbi_put_u32(w, epbi_from_i32(p->lat_e7));
      epbi_put_u32(w, epbi_from_i32(p->lon_e7));
      epbi_put_u8(w, p->fix);
      epbi_put_u8(w, p->satellites);
      epbi_put_u8(w, p->present);
      if (p->present & EPB_POS_SPEED) epbi_put_u16(w, p->speed_cm_s);
      if (p->present & EPB_POS_HEADING) epbi_put_u16(w, p->heading_cdeg);
      if (p->present & EPB_POS_HDOP) epbi_put_u16(w, p->hdop_centi);
      break;
    }
    case EPB_READING_SEAL:
      epbi_put_u8(w, r->u.seal.state);
      put_string(w, r->u.seal.seal_id, r->u.seal.seal_id_len);
      break;
    case EPB_READING_DOOR:
      epbi_put_u8(w, r->u.door.state);
      break;
    default: { /* EPB_READING_SENSOR; others were rejected by valid_reading */
      const epb_sensor *s = &r->u.sensor;
      epbi_put_u8(w, s->present);
      if (s->present & EPB_SENSOR_TEMPERATURE)
        epbi_put_u16(w, epbi_from_i16(s->temperature_centi_c));
      if (s->present & EPB_SENSOR_HUMIDITY) epbi_put_u16(w, s->humidity_centi_pct);
      if (s->present & EPB_SENSOR_SHOCK) epbi_put_u16(w, s->shock_milli_g);
      if (s->present & EPB_SENSOR_BATTERY_MV) epbi_put_u16(w, s->battery_mv);
      if (s->present & EPB_SENSOR_BATTERY_PCT) epbi_put_u8(w, s->battery_pct);
      if (s->present & EPB_SENSOR_REEFER_SETPOINT)
        epbi_put_u16(w, epbi_from_i16(s->reefer_setpoint_centi_c));
      break;
    }
  }
}

static void put_payload(epbi_writer *w, const epb_message *m) {
  switch (m->type) {
    case EPB_MSG_HELLO:
      put_string(w, m->m.hello.unit_id, m->m.hello.unit_id_len);
      put_string(w, m->m.hello.container_id, m->m.hello.container_id_len);
      put_string(w, m->m.hello.firmware, m->m.hello.firmware_len);
      epbi_put_u64(w, m->m.hello.next_seq);
      epbi_put_u64(w, m->m.hello.oldest_seq);
      break;
    case EPB_MSG_WELCOME:
      epbi_put_u64(w, m->m.welcome.last_stored_seq);
      epbi_put_u16(w, m->m.welcome.window);
      epbi_put_u64(w, m->m.welcome.utc_ms);
      break;
    case EPB_MSG_READING:
      put_reading(w, &m->m.reading);
      break;
    case EPB_MSG_ACK:
      epbi_put_u64(w, m->m.ack.seq);
      break;
    case EPB_MSG_NACK:
      epbi_put_u64(w, m->m.nack.seq);
      epbi_put_u8(w, m->m.nack.reason);
      break;
    case EPB_MSG_TIME_SYNC:
      epbi_put_u64(w, m->m.time_sync.utc_ms);
      break;
    case EPB_MSG_SETTINGS:
    case EPB_MSG_SETTINGS_ACK:
      epbi_put_u32(w, m->m.settings.position_interval_s);
      epbi_put_u32(w, m->m.settings.sensor_interval_s);
      if (m->m.settings.extended) {
        epbi_put_u8(w, m->m.settings.deadbands);
        epbi_put_u16(w, m->m.settings.temperature_deadband_centi_c);
        epbi_put_u32(w, m->m.settings.position_deadband_m);
      }
      break;
    case EPB_MSG_FEATURES:
      epbi_put_u32(w, m->m.features.features);
      break;
    case EPB_MSG_DISCARD:
      epbi_put_u64(w, m->m.discard.first_seq);
      epbi_put_u64(w, m->m.discard.last_seq);
      epbi_put_u8(w, m->m.discard.reason);
      break;
    case EPB_MSG_CHALLENGE:
      put_bytes(w, m->m.challenge.agent_nonce, EPB_NONCE_LEN);
      break;
    case EPB_MSG_AUTH:
      put_bytes(w, m->m.auth.unit_nonce, EPB_NONCE_LEN);
      put_bytes(w, m->m.auth.proof, EPB_PROOF_LEN);
      break;
    case EPB_MSG_EVIDENCE:
      epbi_put_u64(w, m->m.evidence.seq);
      epbi_put_u16(w, m->m.evidence.total_len);
      epbi_put_u16(w, m->m.evidence.offset);
      put_bytes(w, m->m.evidence.data, m->m.evidence.len);
      break;
    case EPB_MSG_EVIDENCE_ACK:
      epbi_put_u64(w, m->m.evidence_ack.seq);
      break;
    default: /* PING, PONG */
      epbi_put_u32(w, m->m.ping.nonce);
      break;
  }
}

size_t epbi_encode_payload(const epb_message *msg, uint8_t *out, size_t cap) {
  epbi_writer w;
  if (msg == NULL || out == NULL || !valid_message(msg)) return 0;
  w.p = out;
  w.len = 0;
  w.cap = cap;
  w.ok = true;
  put_payload(&w, msg);
  return w.ok ? w.len : 0;
}

/* Frames msg with the given version byte, sealed with auth if it is not
 * NULL (auth->send_counter is then already the frame's counter); msg must
 * be valid. */
static size_t encode_as(uint8_t version, const epb_message *msg,
                        const epb_auth *auth, uint8_t *out, size_t cap) {
  uint8_t body[EPB_MAX_BODY];
  epbi_writer w;
  uint32_t crc;
  size_t n;

  w.p = body;
  w.len = 0;
  w.cap = sizeof body - 4u; /* room for the crc */
  w.ok = true;
  epbi_put_u8(&w, version);
  epbi_put_u8(&w, (uint8_t)(msg->type | (auth != NULL ? EPB_SEALED_FLAG : 0u)));
  put_payload(&w, msg);
  if (auth != NULL) {
    uint8_t tag[EPB_TAG_LEN];
    epbi_put_u32(&w, auth->send_counter);
    if (!w.ok || w.cap - w.len < EPB_TAG_LEN) return 0;
    auth->tag(auth->session_key, auth->send_dir, body, w.len, tag);
    put_bytes(&w, tag, EPB_TAG_LEN);
  }
  if (!w.ok) return 0;
  crc = epb_crc32c(body, w.len);
  w.cap = sizeof body;
  epbi_put_u32(&w, crc);

  n = epbi_cobs_encode(body, w.len, out, cap);
  if (n == 0 || n >= cap) return 0;
  out[n] = 0x00;
  return n + 1u;
}

size_t epb_encode(const epb_message *msg, uint8_t *out, size_t cap) {
  if (msg == NULL || out == NULL || !valid_message(msg)) return 0;
  return encode_as((uint8_t)EPB_PROTOCOL_VERSION, msg, NULL, out, cap);
}

size_t epb_encode_sealed(const epb_message *msg, epb_auth *auth, uint8_t *out,
                         size_t cap) {
  size_t n;
  if (msg == NULL || out == NULL || auth == NULL || !auth->active ||
      auth->tag == NULL || !sealable(msg->type) || !valid_message(msg) ||
      auth->send_counter == 0xFFFFFFFFu)
    return 0;
  auth->send_counter++;
  n = encode_as((uint8_t)EPB_PROTOCOL_VERSION, msg, auth, out, cap);
  if (n == 0) auth->send_counter--;
  return n;
}

size_t epb_encode_version_refusal(uint8_t version, uint8_t *out, size_t cap) {
  epb_message m;
  if (out == NULL || version == 0u || version >= EPB_PROTOCOL_VERSION) return 0;
  memset(&m, 0, sizeof m);
  m.type = EPB_MSG_NACK;
  m.m.nack.reason = EPB_NACK_MALFORMED;
  return encode_as(version, &m, NULL, out, cap);
}

/* ---- decoding ---- */

/* Reads len:u8 + bytes into dst (capacity max + 1) and NUL-terminates.
 * Printability is checked later by valid_message. */
static void get_string(epbi_reader *r, char *dst, uint8_t *dst_len, uint8_t max) {
  uint8_t len = epbi_get_u8(r);
  uint8_t i;
  if (!r->ok || len > max || (size_t)len > r->len - r->pos) {
    r->ok = false;
    return;
  }
  for (i = 0; i < len; i++) dst[i] = (char)r->p[r->pos++];
  dst[len] = '\0';
  *dst_len = len;
}

static void get_bytes(epbi_reader *r, uint8_t *dst, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) dst[i] = epbi_get_u8(r);
}

static void get_reading(epbi_reader *r, epb_reading *out) {
  out->seq = epbi_get_u64(r);
  out->time_utc_ms = epbi_get_u64(r);
  out->kind = epbi_get_u8(r);
  if (!r->ok) return;
  switch (out->kind) {
    case EPB_READING_POSITION: {
      epb_position *p = &out->u.position;
      p->lat_e7 = epbi_to_i32(epbi_get_u32(r));
      p->lon_e7 = epbi_to_i32(epbi_get_u32(r));
      p->fix = epbi_get_u8(r);
      p->satellites = epbi_get_u8(r);
      p->present = epbi_get_u8(r);
      if (!r->ok || (p->present & ~POS_PRESENT_ALL) != 0) {
        r->ok = false;
        return;
      }
      if (p->present & EPB_POS_SPEED) p->speed_cm_s = epbi_get_u16(r);
      if (p->present & EPB_POS_HEADING) p->heading_cdeg = epbi_get_u16(r);
      if (p->present & EPB_POS_HDOP) p->hdop_centi = epbi_get_u16(r);
      break;
    }
    case EPB_READING_SEAL:
      out->u.seal.state = epbi_get_u8(r);
      get_string(r, out->u.seal.seal_id, &out->u.seal.seal_id_len,
                 EPB_SEAL_ID_MAX);
      break;
    case EPB_READING_DOOR:
      out->u.door.state = epbi_get_u8(r);
      break;
    case EPB_READING_SENSOR: {
      epb_sensor *s = &out->u.sensor;
      s->present = epbi_get_u8(r);
      if (!r->ok || (s->present & ~SENSOR_PRESENT_ALL) != 0) {
        r->ok = false;
        return;
      }
      if (s->present & EPB_SENSOR_TEMPERATURE)
        s->temperature_centi_c = epbi_to_i16(epbi_get_u16(r));
      if (s->present & EPB_SENSOR_HUMIDITY) s->humidity_centi_pct = epbi_get_u16(r);
      if (s->present & EPB_SENSOR_SHOCK) s->shock_milli_g = epbi_get_u16(r);
      if (s->present & EPB_SENSOR_BATTERY_MV) s->battery_mv = epbi_get_u16(r);
      if (s->present & EPB_SENSOR_BATTERY_PCT) s->battery_pct = epbi_get_u8(r);
      if (s->present & EPB_SENSOR_REEFER_SETPOINT)
        s->reefer_setpoint_centi_c = epbi_to_i16(epbi_get_u16(r));
      break;
    }
    default:
      r->ok = false; /* unknown kind: the rest cannot be parsed */
      break;
  }
}

static void get_payload(epbi_reader *r, epb_message *out) {
  switch (out->type) {
    case EPB_MSG_HELLO:
      get_string(r, out->m.hello.unit_id, &out->m.hello.unit_id_len,
                 EPB_UNIT_ID_MAX);
      get_string(r, out->m.hello.container_id, &out->m.hello.container_id_len,
                 EPB_CONTAINER_ID_MAX);
      get_string(r, out->m.hello.firmware, &out->m.hello.firmware_len,
                 EPB_FIRMWARE_MAX);
      out->m.hello.next_seq = epbi_get_u64(r);
      out->m.hello.oldest_seq = epbi_get_u64(r);
      break;
    case EPB_MSG_WELCOME:
      out->m.welcome.last_stored_seq = epbi_get_u64(r);
      out->m.welcome.window = epbi_get_u16(r);
      out->m.welcome.utc_ms = epbi_get_u64(r);
      break;
    case EPB_MSG_READING:
      get_reading(r, &out->m.reading);
      break;
    case EPB_MSG_ACK:
      out->m.ack.seq = epbi_get_u64(r);
      break;
    case EPB_MSG_NACK:
      out->m.nack.seq = epbi_get_u64(r);
      out->m.nack.reason = epbi_get_u8(r);
      break;
    case EPB_MSG_TIME_SYNC:
      out->m.time_sync.utc_ms = epbi_get_u64(r);
      break;
    case EPB_MSG_SETTINGS:
    case EPB_MSG_SETTINGS_ACK:
      out->m.settings.position_interval_s = epbi_get_u32(r);
      out->m.settings.sensor_interval_s = epbi_get_u32(r);
      if (r->ok && r->pos < r->len) { /* the deadband extension: 7 more bytes */
        out->m.settings.extended = 1u;
        out->m.settings.deadbands = epbi_get_u8(r);
        out->m.settings.temperature_deadband_centi_c = epbi_get_u16(r);
        out->m.settings.position_deadband_m = epbi_get_u32(r);
      }
      break;
    case EPB_MSG_FEATURES:
      out->m.features.features = epbi_get_u32(r);
      break;
    case EPB_MSG_DISCARD:
      out->m.discard.first_seq = epbi_get_u64(r);
      out->m.discard.last_seq = epbi_get_u64(r);
      out->m.discard.reason = epbi_get_u8(r);
      break;
    case EPB_MSG_CHALLENGE:
      get_bytes(r, out->m.challenge.agent_nonce, EPB_NONCE_LEN);
      break;
    case EPB_MSG_AUTH:
      get_bytes(r, out->m.auth.unit_nonce, EPB_NONCE_LEN);
      get_bytes(r, out->m.auth.proof, EPB_PROOF_LEN);
      break;
    case EPB_MSG_EVIDENCE: {
      size_t n;
      out->m.evidence.seq = epbi_get_u64(r);
      out->m.evidence.total_len = epbi_get_u16(r);
      out->m.evidence.offset = epbi_get_u16(r);
      /* the data is the rest of the payload; its length is checked against
         total_len and offset by valid_message */
      n = r->ok ? r->len - r->pos : 0u;
      if (n > EPB_EVF_DATA_MAX) {
        r->ok = false;
        break;
      }
      out->m.evidence.len = (uint8_t)n;
      get_bytes(r, out->m.evidence.data, n);
      break;
    }
    case EPB_MSG_EVIDENCE_ACK:
      out->m.evidence_ack.seq = epbi_get_u64(r);
      break;
    default: /* PING, PONG */
      out->m.ping.nonce = epbi_get_u32(r);
      break;
  }
}

int epb_auth_equal(const uint8_t *a, const uint8_t *b, size_t n) {
  uint8_t diff = 0;
  size_t i;
  for (i = 0; i < n; i++) diff = (uint8_t)(diff | (a[i] ^ b[i]));
  return diff == 0;
}

/* Checks a sealed body's counter and tag (body[0..len) without the crc). */
static bool seal_ok(const uint8_t *body, size_t len, const epb_auth *auth,
                    uint32_t *counter) {
  uint8_t tag[EPB_TAG_LEN];
  size_t at;
  if (auth == NULL || !auth->active || auth->tag == NULL) return false;
  if (len < 2u + EPB_SEAL_OVERHEAD) return false;
  at = len - EPB_SEAL_OVERHEAD;
  *counter = (uint32_t)body[at] | ((uint32_t)body[at + 1u] << 8) |
             ((uint32_t)body[at + 2u] << 16) | ((uint32_t)body[at + 3u] << 24);
  if (*counter <= auth->recv_counter) return false; /* replayed or reordered */
  auth->tag(auth->session_key, auth->recv_dir, body, len - EPB_TAG_LEN, tag);
  return epb_auth_equal(tag, body + len - EPB_TAG_LEN, EPB_TAG_LEN) != 0;
}

epb_status epb_decode_body_auth(const uint8_t *body, size_t len, epb_message *out,
                                epb_auth *auth) {
  epbi_reader r;
  uint32_t crc;
  uint32_t counter = 0;
  size_t payload_end;
  bool sealed;

  if (out == NULL) return EPB_ERR_PAYLOAD;
  memset(out, 0, sizeof *out);
  if (len > EPB_MAX_BODY) return EPB_ERR_OVERSIZE;
  if (body == NULL || len < BODY_OVERHEAD) return EPB_ERR_TRUNCATED;

  crc = (uint32_t)body[len - 4u] | ((uint32_t)body[len - 3u] << 8) |
        ((uint32_t)body[len - 2u] << 16) | ((uint32_t)body[len - 1u] << 24);
  if (crc != epb_crc32c(body, len - 4u)) return EPB_ERR_CRC;
  sealed = (body[1] & EPB_SEALED_FLAG) != 0;
  out->type = (uint8_t)(body[1] & ~EPB_SEALED_FLAG);
  if (body[0] != EPB_PROTOCOL_VERSION) return EPB_ERR_VERSION;
  payload_end = len - 4u;
  if (sealed) {
    if (!seal_ok(body, len - 4u, auth, &counter)) return EPB_ERR_AUTH;
    payload_end -= EPB_SEAL_OVERHEAD;
  }
  if (out->type < EPB_MSG_HELLO || out->type > EPB_MSG_TYPE_MAX) return EPB_ERR_TYPE;
  if (sealed) {
    auth->recv_counter = counter; /* authentic, whatever its payload holds */
    out->sealed = 1;
    out->counter = counter;
    if (!sealable(out->type)) return EPB_ERR_PAYLOAD;
  }

  r.p = body + 2;
  r.len = payload_end - 2u;
  r.pos = 0;
  r.ok = true;
  get_payload(&r, out);
  if (!r.ok || r.pos != r.len) return EPB_ERR_PAYLOAD; /* short or trailing */
  if (!valid_message(out)) return EPB_ERR_PAYLOAD;
  return EPB_OK;
}

epb_status epb_decode_body(const uint8_t *body, size_t len, epb_message *out) {
  return epb_decode_body_auth(body, len, out, NULL);
}

/* ---- EVIDENCE fragments ---- */

unsigned epb_evf_count(size_t total_len) {
  if (total_len == 0u || total_len > EPB_EVF_TOTAL_MAX) return 0u;
  return (unsigned)((total_len + EPB_EVF_DATA_MAX - 1u) / EPB_EVF_DATA_MAX);
}

int epb_evf_fragment(uint64_t seq, const uint8_t *ck, size_t total_len, unsigned index,
                     epb_message *out) {
  size_t offset, n;
  if (out == NULL) return 0;
  memset(out, 0, sizeof *out);
  if (ck == NULL || !valid_seq(seq) || index >= epb_evf_count(total_len)) return 0;
  offset = (size_t)index * EPB_EVF_DATA_MAX;
  n = total_len - offset;
  if (n > EPB_EVF_DATA_MAX) n = EPB_EVF_DATA_MAX;
  out->type = EPB_MSG_EVIDENCE;
  out->m.evidence.seq = seq;
  out->m.evidence.total_len = (uint16_t)total_len;
  out->m.evidence.offset = (uint16_t)offset;
  out->m.evidence.len = (uint8_t)n;
  memcpy(out->m.evidence.data, ck + offset, n);
  return 1;
}

void epb_evf_reset(epb_evf_reasm *r) {
  if (r != NULL) memset(r, 0, sizeof *r);
}

epb_evf_status epb_evf_feed(epb_evf_reasm *r, const epb_evidence *f) {
  bool pending = r->seq != 0u && r->have < r->total_len;
  epb_message check;
  /* A fragment that does not hold its own ranges (a caller that did not
     decode it) is never copied. */
  check.type = EPB_MSG_EVIDENCE;
  check.m.evidence = *f;
  if (!valid_message(&check)) {
    epb_evf_reset(r);
    return EPB_EVF_GAP;
  }
  if (f->offset == 0u) {
    r->seq = f->seq;
    r->total_len = f->total_len;
    r->have = f->len;
    memcpy(r->buf, f->data, f->len);
    if (r->have == r->total_len) return EPB_EVF_COMPLETE;
    return pending ? EPB_EVF_RESTARTED : EPB_EVF_MORE;
  }
  if (r->seq == f->seq && r->total_len == f->total_len && f->offset < r->have)
    return EPB_EVF_DUPLICATE;
  if (!pending || r->seq != f->seq || r->total_len != f->total_len || f->offset != r->have) {
    epb_evf_reset(r);
    return EPB_EVF_GAP;
  }
  memcpy(r->buf + r->have, f->data, f->len);
  r->have = (uint16_t)(r->have + f->len);
  return r->have == r->total_len ? EPB_EVF_COMPLETE : EPB_EVF_MORE;
}
