/* eport firmware bridge (epb): the framed link between a telematics unit's
 * firmware and the eport agent on the gateway. This header is the whole API
 * of a C99 library meant for microcontrollers: no heap, no libc beyond the
 * freestanding headers and memcpy/memset, all buffers owned by the caller.
 * The same code runs in the agent (C++) and in eport-sim.
 *
 * Wire format (docs/firmware-bridge.md has the full spec and byte examples):
 *   frame   = COBS(body) 0x00
 *   body    = version:u8 type:u8 payload:bytes crc:u32le
 *   crc     = CRC-32C (Castagnoli) over version, type and payload
 *   sealed  = version:u8 (type|0x80):u8 payload counter:u32le tag:8 crc:u32le
 *             (an authenticated session's frames: HMAC-SHA256 tag, auth.c)
 * All multi-byte integers are little-endian. A body is at most
 * EPB_MAX_BODY bytes; anything longer is rejected as oversized.
 *
 * Thread-safety: none; one decoder per byte stream. */
#ifndef EPB_EPB_H
#define EPB_EPB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EPB_PROTOCOL_VERSION 2u
/* Highest seq a reading (or a DISCARD) may carry: 2^53 - 1, so that every seq
 * fits a signed 64-bit integer and a JavaScript number exactly. */
#define EPB_SEQ_MAX 0x1FFFFFFFFFFFFFull
#define EPB_MAX_BODY 128u                      /* version+type+payload+crc */
#define EPB_MAX_ENCODED (EPB_MAX_BODY + EPB_MAX_BODY / 254u + 2u) /* COBS + 0x00 */
#define EPB_UNIT_ID_MAX 32u                    /* bytes, without terminator */
#define EPB_CONTAINER_ID_MAX 11u               /* ISO 6346 */
#define EPB_FIRMWARE_MAX 16u
#define EPB_SEAL_ID_MAX 32u

typedef enum {
  EPB_MSG_HELLO = 1,      /* unit -> agent: who I am; first message on a link */
  EPB_MSG_WELCOME = 2,    /* agent -> unit: accepted; last stored seq, window, time */
  EPB_MSG_READING = 3,    /* unit -> agent: one reading */
  EPB_MSG_ACK = 4,        /* agent -> unit: every seq <= ack.seq is in the agent's custody */
  EPB_MSG_NACK = 5,       /* agent -> unit: refused; resend from nack.seq (reason says why) */
  EPB_MSG_TIME_SYNC = 6,  /* agent -> unit: current UTC */
  EPB_MSG_SETTINGS = 7,   /* agent -> unit: reporting intervals */
  EPB_MSG_PING = 8,       /* either way: liveness, answered by PONG */
  EPB_MSG_PONG = 9,
  EPB_MSG_DISCARD = 10,     /* unit -> agent: seqs first..last will never be sent, and why */
  EPB_MSG_SETTINGS_ACK = 11, /* unit -> agent: SETTINGS applied; the intervals now in force */
  EPB_MSG_CHALLENGE = 12,   /* agent -> unit: prove your key; agent_nonce */
  EPB_MSG_AUTH = 13,        /* unit -> agent: unit_nonce and the proof over HELLO */
  EPB_MSG_FEATURES = 14,    /* unit -> agent, after WELCOME: what it understands beyond the base (6.7) */
  EPB_MSG_EVIDENCE = 15,    /* unit -> agent: one fragment of a signed checkpoint (6.8) */
  EPB_MSG_EVIDENCE_ACK = 16 /* agent -> unit: the checkpoint ending at seq is stored (6.9) */
} epb_msg_type;
#define EPB_MSG_TYPE_MAX 16u

/* FEATURES bits (6.7). A bit the receiver does not know is ignored. */
#define EPB_FEATURE_DEADBANDS 0x00000001u /* takes SETTINGS with the deadband extension */
#define EPB_FEATURE_EVIDENCE 0x00000002u  /* sends EVIDENCE (7.15); nothing depends on it */

/* SETTINGS / SETTINGS_ACK deadband extension (6.4): which deadbands are set. */
#define EPB_DEADBAND_TEMPERATURE 0x01u
#define EPB_DEADBAND_POSITION 0x02u
#define EPB_TEMPERATURE_DEADBAND_MAX 2000u  /* 0.01 degC */
#define EPB_POSITION_DEADBAND_MAX 100000u   /* m */

/* EVIDENCE fragments (docs/firmware-bridge.md 6.8): a checkpoint of up to
 * EPB_EVF_TOTAL_MAX bytes travels as ceil(total / EPB_EVF_DATA_MAX)
 * fragments; every one but the last carries exactly EPB_EVF_DATA_MAX bytes,
 * at offsets 0, 96, 192, ... A fragment fits a sealed frame. */
#define EPB_EVF_DATA_MAX 96u
#define EPB_EVF_TOTAL_MAX 336u   /* = EPB_EV_CHECKPOINT_MAX (evidence.h) */
#define EPB_EVF_FRAGMENTS_MAX 4u /* ceil(336 / 96) */

/* Unit authentication (docs/firmware-bridge.md section 13). */
#define EPB_SEALED_FLAG 0x80u  /* type-byte bit: the frame carries counter + tag */
#define EPB_KEY_LEN 32u        /* a unit's key */
#define EPB_NONCE_LEN 16u      /* CHALLENGE and AUTH nonces */
#define EPB_PROOF_LEN 16u      /* AUTH proof: truncated HMAC-SHA256 */
#define EPB_TAG_LEN 8u         /* sealed-frame tag: truncated HMAC-SHA256 */
#define EPB_SEAL_OVERHEAD 12u  /* counter:u32 + tag */
#define EPB_SHA256_LEN 32u
#define EPB_DIR_UNIT_TO_AGENT 0x55u /* 'U': first byte of a tag's input */
#define EPB_DIR_AGENT_TO_UNIT 0x41u /* 'A' */

typedef enum {
  EPB_READING_POSITION = 0,
  EPB_READING_SEAL = 1,
  EPB_READING_DOOR = 2,
  EPB_READING_SENSOR = 3
} epb_reading_kind;

/* Reasons carried by a NACK (docs/firmware-bridge.md 7.5 says what a unit
 * does with each). */
typedef enum {
  EPB_NACK_MALFORMED = 1,    /* the frame decoded but its content is invalid: never resend it */
  EPB_NACK_NO_HELLO = 2,     /* a reading arrived before HELLO */
  EPB_NACK_STORE_FULL = 3,   /* backpressure: the store refuses this class now; resend later */
  EPB_NACK_WINDOW = 4,       /* more unacknowledged readings than the window allows */
  EPB_NACK_OUT_OF_ORDER = 5, /* not the seq the agent expects next: resend from nack.seq */
  EPB_NACK_INTERNAL = 6,     /* the agent could not store it; resend later */
  EPB_NACK_UNIT_ID = 7,      /* HELLO refused: unit id not allowed (empty, the gateway's, not topic-safe) */
  EPB_NACK_CONTAINER_ID = 8, /* HELLO refused: container id fails ISO 6346 */
  EPB_NACK_SEQ_RANGE = 9,    /* HELLO or DISCARD refused: its seqs jump further than the agent allows */
  EPB_NACK_AUTH = 10         /* HELLO refused: the unit did not prove its key */
} epb_nack_reason;
#define EPB_NACK_REASON_MAX 10u

/* Why a unit gives up readings it never had acknowledged (DISCARD). */
typedef enum {
  EPB_DISCARD_FLASH_FULL = 1, /* overwrote its oldest unacknowledged readings to make room */
  EPB_DISCARD_UNIT_RESET = 2, /* lost them: reset, flash wiped or replaced */
  EPB_DISCARD_EXPIRED = 3     /* dropped them as older than its retention */
} epb_discard_reason;
#define EPB_DISCARD_REASON_MAX 3u

/* Result of decoding. EPB_OK and EPB_NEED_MORE are not errors; every other
 * status means one frame was rejected and counted, and decoding continues
 * with the next frame. */
typedef enum {
  EPB_OK = 0,
  EPB_NEED_MORE = 1,
  EPB_ERR_OVERSIZE = 2,   /* frame longer than EPB_MAX_ENCODED bytes with its
                             0x00, i.e. its body would exceed EPB_MAX_BODY */
  EPB_ERR_COBS = 3,       /* COBS code points past the end of the frame */
  EPB_ERR_TRUNCATED = 4,  /* body shorter than version+type+crc */
  EPB_ERR_CRC = 5,        /* CRC-32C mismatch */
  EPB_ERR_VERSION = 6,    /* unsupported protocol version */
  EPB_ERR_TYPE = 7,       /* unknown message type */
  EPB_ERR_PAYLOAD = 8,    /* payload length or field value invalid for its type */
  EPB_ERR_AUTH = 9        /* sealed frame: no session key, bad tag, or counter
                             not above the last one accepted (a replay) */
} epb_status;
#define EPB_STATUS_COUNT 10

/* Sensor presence bits for epb_sensor.present. */
#define EPB_SENSOR_TEMPERATURE 0x01u
#define EPB_SENSOR_HUMIDITY 0x02u
#define EPB_SENSOR_SHOCK 0x04u
#define EPB_SENSOR_BATTERY_MV 0x08u
#define EPB_SENSOR_BATTERY_PCT 0x10u
#define EPB_SENSOR_REEFER_SETPOINT 0x20u

/* Position optional-field bits for epb_position.present. */
#define EPB_POS_SPEED 0x01u
#define EPB_POS_HEADING 0x02u
#define EPB_POS_HDOP 0x04u

typedef struct {
  int32_t lat_e7, lon_e7;   /* degrees * 1e7 */
  uint16_t speed_cm_s;      /* valid if present & EPB_POS_SPEED */
  uint16_t heading_cdeg;    /* 0..35999, valid if present & EPB_POS_HEADING */
  uint16_t hdop_centi;      /* valid if present & EPB_POS_HDOP */
  uint8_t fix;              /* NMEA GGA quality 0..8 */
  uint8_t satellites;
  uint8_t present;
} epb_position;

typedef struct {
  uint8_t state;                         /* 0 unknown, 1 sealed, 2 opened, 3 tampered */
  uint8_t seal_id_len;                   /* 0..EPB_SEAL_ID_MAX */
  char seal_id[EPB_SEAL_ID_MAX + 1];     /* NUL-terminated after decode */
} epb_seal;

typedef struct {
  uint8_t state;  /* 0 unknown, 1 closed, 2 open */
} epb_door;

typedef struct {
  uint8_t present;              /* EPB_SENSOR_* bits */
  int16_t temperature_centi_c;
  uint16_t humidity_centi_pct;  /* 0..10000 */
  uint16_t shock_milli_g;
  uint16_t battery_mv;
  uint8_t battery_pct;          /* 0..100 */
  int16_t reefer_setpoint_centi_c;
} epb_sensor;

typedef struct {
  uint64_t seq;          /* per-unit, strictly increasing, never reused */
  uint64_t time_utc_ms;  /* ms since the Unix epoch, UTC */
  uint8_t kind;          /* epb_reading_kind */
  union {
    epb_position position;
    epb_seal seal;
    epb_door door;
    epb_sensor sensor;
  } u;
} epb_reading;

typedef struct {
  uint8_t unit_id_len;
  char unit_id[EPB_UNIT_ID_MAX + 1];             /* printable ASCII, NUL-terminated */
  uint8_t container_id_len;
  char container_id[EPB_CONTAINER_ID_MAX + 1];   /* may be empty */
  uint8_t firmware_len;
  char firmware[EPB_FIRMWARE_MAX + 1];
  uint64_t next_seq;    /* seq the unit will use for its next new reading, 1..EPB_SEQ_MAX */
  uint64_t oldest_seq;  /* first seq of the oldest item (reading or DISCARD) it holds,
                           1..next_seq; = next_seq when it holds nothing */
} epb_hello;

typedef struct {
  uint64_t last_stored_seq;  /* highest seq of this unit already stored (0: none) */
  uint16_t window;           /* max readings in flight without an ACK */
  uint64_t utc_ms;           /* agent's clock at send time */
} epb_welcome;

typedef struct { uint64_t seq; } epb_ack;
typedef struct { uint64_t seq; uint8_t reason; } epb_nack;  /* reason: epb_nack_reason */
typedef struct {
  uint64_t first_seq, last_seq;  /* 1 <= first <= last <= EPB_SEQ_MAX */
  uint8_t reason;                /* epb_discard_reason */
} epb_discard;
typedef struct { uint64_t utc_ms; } epb_time_sync;
typedef struct {
  uint32_t position_interval_s;  /* 0: leave unchanged */
  uint32_t sensor_interval_s;    /* 0: leave unchanged */
  /* The deadband extension (payload 15 bytes instead of 8), only sent to a
   * unit that announced EPB_FEATURE_DEADBANDS. extended = 0: the 8-byte
   * form, the fields below are 0 and the unit keeps its deadbands. */
  uint8_t extended;
  uint8_t deadbands;                     /* EPB_DEADBAND_* bits; a clear bit: that deadband off */
  uint16_t temperature_deadband_centi_c; /* bit TEMPERATURE: 0..EPB_TEMPERATURE_DEADBAND_MAX, else 0 */
  uint32_t position_deadband_m;          /* bit POSITION: 0..EPB_POSITION_DEADBAND_MAX, else 0 */
} epb_settings;
typedef struct { uint32_t features; } epb_features;  /* EPB_FEATURE_* bits */
typedef struct { uint32_t nonce; } epb_ping;  /* also used for PONG */
typedef struct { uint8_t agent_nonce[EPB_NONCE_LEN]; } epb_challenge;
/* EVIDENCE: bytes offset .. offset+len-1 of the checkpoint that ends at
 * reading seq `seq` (its `last`), total_len bytes in all. */
typedef struct {
  uint64_t seq;        /* 1..EPB_SEQ_MAX: the checkpoint's key, the seq of the last reading it covers */
  uint16_t total_len;  /* 1..EPB_EVF_TOTAL_MAX */
  uint16_t offset;     /* a multiple of EPB_EVF_DATA_MAX below total_len */
  uint8_t len;         /* min(EPB_EVF_DATA_MAX, total_len - offset): implied by the payload length */
  uint8_t data[EPB_EVF_DATA_MAX];
} epb_evidence;
typedef struct {
  uint8_t unit_nonce[EPB_NONCE_LEN];
  uint8_t proof[EPB_PROOF_LEN];
} epb_auth_msg;

typedef struct {
  uint8_t type;     /* epb_msg_type (without EPB_SEALED_FLAG) */
  uint8_t sealed;   /* decode: 1 if it came sealed and its tag verified */
  uint32_t counter; /* decode: the sealed frame's counter (0 if unsealed) */
  union {
    epb_hello hello;
    epb_welcome welcome;
    epb_reading reading;
    epb_ack ack;
    epb_nack nack;
    epb_time_sync time_sync;
    epb_settings settings;     /* also SETTINGS_ACK */
    epb_ping ping;             /* also PONG */
    epb_discard discard;
    epb_challenge challenge;
    epb_auth_msg auth;
    epb_evidence evidence;
    epb_ack evidence_ack;      /* EVIDENCE_ACK: the checkpoint with key seq is stored */
    epb_features features;
  } m;
} epb_message;

/* One direction pair of an authenticated session: the session key and the
 * counters of the last sealed frame sent and accepted. Zero-initialised it
 * is inactive: sealed frames are then refused (EPB_ERR_AUTH). Filled by
 * epb_auth_start (auth.c); `tag` points into auth.c so that a unit that
 * never authenticates does not link SHA-256. */
typedef struct epb_auth {
  uint8_t session_key[EPB_SHA256_LEN];
  uint32_t send_counter; /* counter of the last sealed frame sent */
  uint32_t recv_counter; /* counter of the last sealed frame accepted */
  uint8_t send_dir, recv_dir;
  uint8_t active;
  void (*tag)(const uint8_t session_key[EPB_SHA256_LEN], uint8_t dir,
              const uint8_t *data, size_t len, uint8_t out[EPB_TAG_LEN]);
} epb_auth;

/* Encodes one message as a complete frame (COBS body and the trailing 0x00)
 * into out[0..cap). Returns the number of bytes written, or 0 if the message
 * is invalid (e.g. a string too long or not printable) or cap is too small.
 * Invalid is exactly what epb_decode_body rejects as EPB_ERR_PAYLOAD: see the
 * ranges in docs/firmware-bridge.md (among them: reading seq 0, HELLO
 * next_seq 0 or empty unit_id, WELCOME window 0). Fields whose `present` bit
 * is clear are not sent, whatever they hold. EPB_MAX_ENCODED bytes always
 * suffice. */
size_t epb_encode(const epb_message *msg, uint8_t *out, size_t cap);

/* Incremental stream decoder. Holds one partial frame; zero-initialise it
 * with epb_decoder_init. Counts every outcome in counts[status]: one per
 * frame for EPB_OK and each EPB_ERR_*, and one per feed call that ended
 * without a frame for EPB_NEED_MORE (an activity count, chunking-dependent). */
typedef struct {
  uint8_t buf[EPB_MAX_ENCODED];
  size_t len;
  uint8_t discarding;  /* inside an oversized frame: drop until the next 0x00 */
  uint8_t last_version; /* version byte of the last frame rejected with EPB_ERR_VERSION */
  uint32_t counts[EPB_STATUS_COUNT];
  epb_auth *auth;       /* verifies sealed frames; NULL: every sealed frame is EPB_ERR_AUTH */
} epb_decoder;

void epb_decoder_init(epb_decoder *d);

/* Consumes bytes from data[0..len) up to and including the end of the first
 * complete frame, and returns how many bytes it consumed. *status says what
 * happened: EPB_NEED_MORE (all bytes consumed, no frame finished), EPB_OK
 * (*out holds a message), or an EPB_ERR_* (that frame was dropped). Call it
 * again with the rest of the bytes until it returns EPB_NEED_MORE.
 * Empty frames (two 0x00 in a row) are skipped silently: a sender may send a
 * 0x00 first to resynchronise the receiver.
 * EPB_ERR_OVERSIZE is reported as soon as a frame outgrows EPB_MAX_ENCODED,
 * once; the rest of that frame up to its 0x00 is then dropped silently.
 * Garbage between frames joins the next frame and fails with it (usually as
 * EPB_ERR_CRC or EPB_ERR_COBS); decoding is back in step after the next 0x00.
 * *out is written only when a frame ends (not for EPB_NEED_MORE); after an
 * error it is zeroed or holds what epb_decode_body left there. */
size_t epb_decoder_feed(epb_decoder *d, const uint8_t *data, size_t len,
                        epb_message *out, epb_status *status);

/* Decodes one body (already COBS-decoded, without the delimiter). Checks, in
 * order: length (EPB_ERR_OVERSIZE above EPB_MAX_BODY, EPB_ERR_TRUNCATED below
 * 6 bytes), crc, version, type, then the payload layout and every field range.
 * *out is zeroed first; on EPB_ERR_TYPE and EPB_ERR_PAYLOAD out->type holds
 * the received type, and on EPB_ERR_PAYLOAD the fields parsed before the fault
 * are filled in (for a READING, seq always is once the payload has 8 bytes:
 * the agent can NACK it as EPB_NACK_MALFORMED). Absent optional fields
 * (position/sensor `present` bits clear) decode as zero. */
epb_status epb_decode_body(const uint8_t *body, size_t len, epb_message *out);

/* As epb_decode_body, verifying sealed frames with auth (may be NULL). After
 * the version, a sealed frame's counter must be above auth->recv_counter and
 * its tag must verify, else EPB_ERR_AUTH (nothing else is parsed, the counter
 * is not moved); then type and payload as usual, and auth->recv_counter
 * takes the frame's counter (also when the payload is then refused: the
 * frame was authentic). HELLO, CHALLENGE and AUTH are never sealed
 * (EPB_ERR_PAYLOAD). epb_decoder_feed calls this with its `auth`. */
epb_status epb_decode_body_auth(const uint8_t *body, size_t len, epb_message *out,
                                epb_auth *auth);

/* Encodes msg as a sealed frame of the session auth: increments
 * auth->send_counter and puts it and the tag before the crc. Returns the
 * frame length, or 0 (and changes nothing) if the message is invalid, cap
 * too small, auth inactive, the message is HELLO, CHALLENGE or AUTH, or the
 * counter would wrap (start a new session first). */
size_t epb_encode_sealed(const epb_message *msg, epb_auth *auth, uint8_t *out,
                         size_t cap);

/* ---- authentication (auth.c, sha256.c; section 13 of the spec) ---- */

/* SK = HMAC-SHA256(key, "epb-session" || unit_id_len:u8 || unit_id ||
 *                       agent_nonce || unit_nonce).
 * A unit whose key lives in a secure element computes this HMAC there and
 * passes only SK to the rest. */
void epb_auth_session_key(const uint8_t key[EPB_KEY_LEN], const char *unit_id,
                          uint8_t unit_id_len,
                          const uint8_t agent_nonce[EPB_NONCE_LEN],
                          const uint8_t unit_nonce[EPB_NONCE_LEN],
                          uint8_t session_key[EPB_SHA256_LEN]);

/* AUTH's proof: the first 16 bytes of HMAC-SHA256(SK, "epb-proof" || the
 * HELLO's payload bytes). Returns 0 if hello is not a valid HELLO, else 1. */
int epb_auth_proof(const uint8_t session_key[EPB_SHA256_LEN],
                   const epb_message *hello, uint8_t proof[EPB_PROOF_LEN]);

/* Starts the session on this side: as_unit 1 seals with 'U' and accepts 'A',
 * 0 the other way round; both counters start at 0 (the first sealed frame
 * each way carries 1). */
void epb_auth_start(epb_auth *auth, const uint8_t session_key[EPB_SHA256_LEN],
                    int as_unit);

/* Forgets the session key (zeroes *auth). */
void epb_auth_clear(epb_auth *auth);

/* Constant-time comparison of n bytes: 1 if equal. */
int epb_auth_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* SHA-256 and HMAC-SHA256, streaming and one-shot. */
typedef struct {
  uint32_t h[8];
  uint64_t total;
  uint8_t block[64];
  size_t used;
} epb_sha256_ctx;
void epb_sha256_init(epb_sha256_ctx *c);
void epb_sha256_update(epb_sha256_ctx *c, const uint8_t *data, size_t len);
void epb_sha256_final(epb_sha256_ctx *c, uint8_t out[EPB_SHA256_LEN]);
void epb_sha256(const uint8_t *data, size_t len, uint8_t out[EPB_SHA256_LEN]);

typedef struct {
  uint8_t key[64];
  epb_sha256_ctx inner;
} epb_hmac_ctx;
void epb_hmac_init(epb_hmac_ctx *m, const uint8_t *key, size_t key_len);
void epb_hmac_update(epb_hmac_ctx *m, const uint8_t *data, size_t len);
void epb_hmac_final(epb_hmac_ctx *m, uint8_t out[EPB_SHA256_LEN]);
void epb_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data,
                     size_t len, uint8_t out[EPB_SHA256_LEN]);

/* The one answer a unit speaking an older protocol version can decode: a
 * NACK with seq 0 and reason MALFORMED, framed with that version's byte
 * (versions 1..EPB_PROTOCOL_VERSION-1; NACK's layout is the same in all).
 * An agent sends it to a HELLO whose version it does not speak, so that the
 * unit logs a refusal instead of waiting in silence. Returns the frame length
 * (EPB_MAX_ENCODED suffices), or 0 for an unsupported version or small cap. */
size_t epb_encode_version_refusal(uint8_t version, uint8_t *out, size_t cap);

/* Version byte of the body the decoder last rejected with EPB_ERR_VERSION
 * is in epb_decoder.last_version (0 if none yet). */

/* ---- EVIDENCE fragments (codec.c; docs/firmware-bridge.md 6.8, 7.15) ---- */

/* Number of EVIDENCE fragments for a checkpoint of total_len bytes (0 if
 * total_len is 0 or above EPB_EVF_TOTAL_MAX). */
unsigned epb_evf_count(size_t total_len);

/* Fills *out with fragment `index` (0-based) of checkpoint ck[0..total_len)
 * whose key is seq. Returns 1, or 0 (and leaves *out zeroed) for an index,
 * length or seq out of range. Encode it with epb_encode / epb_encode_sealed. */
int epb_evf_fragment(uint64_t seq, const uint8_t *ck, size_t total_len, unsigned index,
                     epb_message *out);

/* Reassembly of one checkpoint at a time (one per link): 352 bytes, no heap.
 * Zero-initialise it (or epb_evf_reset). */
typedef struct {
  uint64_t seq;        /* key of the checkpoint being assembled; 0: none */
  uint16_t total_len;
  uint16_t have;       /* bytes 0..have-1 received */
  uint8_t buf[EPB_EVF_TOTAL_MAX];
} epb_evf_reasm;

typedef enum {
  EPB_EVF_MORE = 0,       /* taken; the checkpoint is not complete yet */
  EPB_EVF_COMPLETE = 1,   /* taken; buf[0..total_len) holds the checkpoint (until the next feed) */
  EPB_EVF_DUPLICATE = 2,  /* a fragment already taken again: ignored, nothing changes */
  EPB_EVF_RESTARTED = 3,  /* offset 0 while another was incomplete: that one was abandoned,
                             this one started (a single-fragment one is EPB_EVF_COMPLETE) */
  EPB_EVF_GAP = 4         /* not the next fragment (reordered, a lost one before it, another
                             seq or total): dropped, and the incomplete one abandoned */
} epb_evf_status;

void epb_evf_reset(epb_evf_reasm *r);

/* Takes one decoded EVIDENCE fragment. Fragments must come in offset order;
 * a fragment at offset 0 always starts afresh. Memory never grows: one
 * checkpoint of at most EPB_EVF_TOTAL_MAX bytes. */
epb_evf_status epb_evf_feed(epb_evf_reasm *r, const epb_evidence *f);

/* CRC-32C (Castagnoli), reflected, init and xorout 0xFFFFFFFF. */
uint32_t epb_crc32c(const uint8_t *data, size_t len);

/* Short English name of a status, e.g. "bad crc". Never NULL. */
const char *epb_status_name(epb_status s);
const char *epb_nack_reason_name(uint8_t reason);

#ifdef __cplusplus
}
#endif
#endif /* EPB_EPB_H */
