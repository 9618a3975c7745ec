/* eport evidence (docs/evidence.md): per-source hash chains over the
 * canonical bytes of readings, and signed checkpoints over them as
 * COSE_Sign1 (RFC 9052) messages, so that a verifier who trusts no gateway,
 * broker or cloud can check from the messages and the source's public key
 * alone that a record is complete, in order and unmodified.
 *
 * Two halves, in two objects of eport::epb, each linked only by code that
 * calls it:
 *   origin  (evidence.c)         the unit: epb_ev_chain_init, epb_ev_append,
 *                                epb_ev_due, epb_ev_make_checkpoint. Holds no
 *                                key: signing is a callback (a secure element,
 *                                OpenSSL, ...). C99, no heap, no libc beyond
 *                                memcpy/memset, like the rest of the library.
 *   verify  (evidence_verify.c)  the agent, eport-verify, tests: strict
 *                                parsing of a checkpoint, the Sig_structure,
 *                                and a streaming verifier over readings and
 *                                checkpoints. Verifying the signature is a
 *                                callback too.
 *
 * Layouts (byte-exact in docs/evidence.md):
 *   canonical reading R = the unsealed epb READING body: 02 03 payload crc32c
 *   genesis  H0 = SHA-256("eport-ev1 genesis" || src_len:u8 || src)
 *   link     Hi = SHA-256("eport-ev1 link" || H(i-1) || seq:u64le || R)
 *   checkpoint  = COSE_Sign1, tag 18: [ << {1: alg, 4: kid} >>, {},
 *                 << {1: src, 2: n, 3: first, 4: last, 5: count, 6: head,
 *                     7: prev (absent for n = 1), 8: time_ms,
 *                     9: [next alg, next kid, next public key] (optional)} >>,
 *                 signature (64 bytes) ]
 *   checkpoint id C = SHA-256(Sig_structure), the next checkpoint's prev.
 * All CBOR is deterministic (RFC 8949 section 4.2.1).
 *
 * Thread-safety: none; one chain or verifier per source, owned by the
 * caller. */
#ifndef EPB_EVIDENCE_H
#define EPB_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "epb/epb.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPB_EV_ALG_EDDSA (-8)       /* COSE alg EdDSA (Ed25519 here): the default */
#define EPB_EV_ALG_ES256 (-7)       /* COSE alg ES256 (P-256, SHA-256; signature r||s) */
#define EPB_EV_HASH_LEN 32u         /* SHA-256 */
#define EPB_EV_SIG_LEN 64u          /* both algs: Ed25519 R||S, ES256 r||s */
#define EPB_EV_KID_MAX 16u          /* key id bytes, at least 1 */
#define EPB_EV_PUB_MAX 65u          /* Ed25519 32, ES256 65 (uncompressed 04||x||y) */
#define EPB_EV_SOURCE_MAX EPB_UNIT_ID_MAX  /* source id = the unit id (1..32) */
/* Largest canonical reading: 2 + 51-byte seal payload + 4 (crc). */
#define EPB_EV_READING_MAX 57u
/* A record the gateway produces itself (a derived custody event) is not an
 * epb READING: its canonical bytes are an event record, 02 40 seq:u64le
 * time_ms:u64le fields crc32c (docs/evidence.md 13.4), at most
 * EPB_EV_RECORD_MAX bytes. It never travels on an epb link. */
#define EPB_EV_RECORD_EVENT 0x40u
#define EPB_EV_RECORD_MIN 22u   /* 2 + seq 8 + time 8 + crc 4 */
#define EPB_EV_RECORD_MAX 512u
/* Largest checkpoint a parser accepts and a builder may produce: every field
 * at its maximum and a next-key announcement with an ES256 key. */
#define EPB_EV_CHECKPOINT_MAX 336u
/* Largest Sig_structure (the bytes signed). */
#define EPB_EV_TBS_MAX 280u

/* Default checkpoint policy (docs/evidence.md section 5). */
#define EPB_EV_DEFAULT_EVERY_READINGS 128u
#define EPB_EV_DEFAULT_EVERY_MS 7200000u /* 2 h */

typedef enum {
  EPB_EV_OK = 0,
  EPB_EV_DUPLICATE = 1,       /* verify: the last accepted checkpoint again (a resend): no problem */
  EPB_EV_ERR_ARG = 2,         /* invalid argument: source id, reading, key, cap too small */
  EPB_EV_ERR_SEQ = 3,         /* origin: reading seq not above the chain's last */
  EPB_EV_ERR_EMPTY = 4,       /* origin: no reading since the last checkpoint */
  EPB_EV_ERR_SIGNER = 5,      /* origin: the sign callback failed */
  /* parsing a checkpoint */
  EPB_EV_ERR_TOO_LARGE = 6,   /* more than EPB_EV_CHECKPOINT_MAX bytes */
  EPB_EV_ERR_TRUNCATED = 7,   /* the input ends inside an item */
  EPB_EV_ERR_TRAILING = 8,    /* bytes after the COSE_Sign1 */
  EPB_EV_ERR_CBOR = 9,        /* not a tag-18 array of 4 of the expected CBOR types */
  EPB_EV_ERR_NONCANONICAL = 10, /* well-formed, but not deterministic CBOR (long
                                  forms, indefinite lengths, key order) */
  EPB_EV_ERR_HEADER = 11,     /* protected header not {1: -8 or -7, 4: kid}, or
                                 unprotected header not empty */
  EPB_EV_ERR_PAYLOAD = 12,    /* payload: a missing, unknown or repeated key, or a
                                 value out of range */
  /* verifying */
  EPB_EV_ERR_SOURCE = 13,     /* a checkpoint of another source */
  EPB_EV_ERR_KID = 14,        /* signed under a key id this source does not have */
  EPB_EV_ERR_SIGNATURE = 15,  /* the signature does not verify */
  EPB_EV_ERR_REPLAY = 16,     /* checkpoint number not above the last accepted one */
  EPB_EV_ERR_CKPT_CHAIN = 17, /* prev is not the last accepted checkpoint, its number
                                 is not the next one, or its range does not follow on */
  EPB_EV_ERR_READING = 18,    /* not a valid canonical READING body */
  EPB_EV_ERR_ORDER = 19,      /* reading seq not above the previous one (reordered,
                                 repeated, or already covered) */
  EPB_EV_ERR_MISSING = 20,    /* fewer readings in the range than the checkpoint counts */
  EPB_EV_ERR_EXTRA = 21,      /* more readings than it counts, or one beyond its range */
  EPB_EV_ERR_CHAIN = 22       /* the readings do not hash to its head: one was altered
                                 or substituted */
} epb_ev_status;
#define EPB_EV_STATUS_COUNT 23

/* A public key, as a verifier holds it and a checkpoint announces it. */
typedef struct {
  int32_t alg;                  /* EPB_EV_ALG_EDDSA or EPB_EV_ALG_ES256 */
  uint8_t kid_len;              /* 1..EPB_EV_KID_MAX */
  uint8_t kid[EPB_EV_KID_MAX];
  uint8_t pub_len;              /* 32 (EdDSA) or 65 (ES256) */
  uint8_t pub[EPB_EV_PUB_MAX];
} epb_ev_key;

/* A parsed (or to be built) checkpoint. */
typedef struct {
  int32_t alg;                  /* protected header 1 */
  uint8_t kid_len;              /* protected header 4 */
  uint8_t kid[EPB_EV_KID_MAX];
  uint8_t src_len;
  char src[EPB_EV_SOURCE_MAX + 1]; /* NUL-terminated */
  uint64_t n;                   /* checkpoint number, 1 for the first of a chain */
  uint64_t first, last;         /* seq range covered: first = previous last + 1 */
  uint64_t count;               /* readings in first..last, 1..last-first+1 */
  uint64_t time_ms;             /* source clock, ms since the Unix epoch; 0: none */
  uint8_t head[EPB_EV_HASH_LEN];  /* chain head after the reading with seq <= last */
  uint8_t has_prev;             /* 1 iff n > 1 */
  uint8_t prev[EPB_EV_HASH_LEN];  /* id of checkpoint n - 1 */
  uint8_t has_next_key;
  epb_ev_key next_key;          /* rotation: the key that will sign next */
  uint8_t sig[EPB_EV_SIG_LEN];
} epb_ev_checkpoint;

/* ---- origin (evidence.c) ---- */

/* Signs the Sig_structure tbs[0..len) into sig; returns 1 on success, 0 on
 * failure (nothing is changed then). Ed25519 (PureEdDSA) signs tbs itself;
 * ES256 signs SHA-256(tbs) and writes r||s, 32 bytes each, big-endian. */
typedef int (*epb_ev_sign_fn)(void *ctx, const uint8_t *to_be_signed, size_t len,
                              uint8_t sig[EPB_EV_SIG_LEN]);

typedef struct {
  int32_t alg;                  /* what sign produces */
  uint8_t kid_len;              /* 1..EPB_EV_KID_MAX */
  uint8_t kid[EPB_EV_KID_MAX];
  epb_ev_sign_fn sign;
  void *ctx;
} epb_ev_signer;

/* A source's chain state: 144 bytes on Cortex-M4. The unit persists it in
 * flash together with what changed it: with each reading it appends (in the
 * same write as the reading and next_seq), and with each checkpoint made.
 * Plain bytes, no pointers: write it as it is. */
typedef struct {
  uint8_t head[EPB_EV_HASH_LEN];      /* H after the last appended reading (H0 first) */
  uint8_t last_ckpt[EPB_EV_HASH_LEN]; /* id C of the last checkpoint (if ckpt_n > 0) */
  uint64_t ckpt_n;                    /* number of the last checkpoint made; 0: none */
  uint64_t range_first;               /* first seq of the open range */
  uint64_t last_seq;                  /* seq of the last appended reading; range_first - 1 if none */
  uint64_t count;                     /* readings appended since the last checkpoint */
  uint64_t opened_ms;                 /* caller's clock at the first of them */
  uint8_t urgent;                     /* a seal, door or alarm reading is not yet covered */
  uint8_t src_len;
  char src[EPB_EV_SOURCE_MAX + 1];
} epb_ev_chain;

/* Starts a chain for source src (1..32 printable ASCII bytes, the unit id)
 * whose first reading will have a seq >= start_seq (1..EPB_SEQ_MAX): head
 * = H0, no checkpoint yet. EPB_EV_ERR_ARG for a bad id or seq. */
epb_ev_status epb_ev_chain_init(epb_ev_chain *c, const char *src, uint8_t src_len,
                                uint64_t start_seq);

/* Appends one reading: head = SHA-256("eport-ev1 link" || head || seq || R).
 * Its seq must be above the last one appended (EPB_EV_ERR_SEQ); an invalid
 * reading is EPB_EV_ERR_ARG. now_ms is the caller's clock (any monotonic ms
 * count) for the time rule; alarm != 0 marks it urgent, as seal and door
 * readings always are. Nothing changes on an error. */
epb_ev_status epb_ev_append(epb_ev_chain *c, const epb_reading *r, uint64_t now_ms,
                            int alarm);

/* Appends one record by its canonical bytes r[0..len) and its seq: what
 * epb_ev_append does after building R, for a source whose records are not
 * all epb READINGs (the gateway's own sources, docs/evidence.md 13.4). The
 * bytes are hashed as given (1..EPB_EV_RECORD_MAX, else EPB_EV_ERR_ARG);
 * seq must be above the last one appended (EPB_EV_ERR_SEQ) and at most
 * EPB_SEQ_MAX. alarm != 0 marks it urgent. Nothing changes on an error. */
epb_ev_status epb_ev_append_bytes(epb_ev_chain *c, uint64_t seq, const uint8_t *r, size_t len,
                                  uint64_t now_ms, int alarm);

/* Checkpoint policy: 0 in a field disables that rule. */
typedef struct {
  uint32_t every_readings; /* due once this many readings are uncovered */
  uint32_t every_ms;       /* due this long after the first uncovered reading */
} epb_ev_policy;

/* 1 if a checkpoint is due now: a reading is uncovered and it is urgent, or
 * the count or time rule of p is reached. */
int epb_ev_due(const epb_ev_chain *c, const epb_ev_policy *p, uint64_t now_ms);

/* Builds, signs and writes the checkpoint over every reading appended since
 * the last one into out[0..cap) (EPB_EV_CHECKPOINT_MAX always suffices) and
 * sets *out_len. time_ms is the source's UTC clock (0: none); next_key, if
 * not NULL, is announced for rotation. Only when signing succeeded does the
 * chain move on (n + 1, a new open range); persist it with the checkpoint.
 * Errors: EPB_EV_ERR_EMPTY (nothing to cover), EPB_EV_ERR_ARG (bad signer,
 * next key or cap), EPB_EV_ERR_SIGNER. Stack on Cortex-M4: about 850 bytes
 * (its own 360 and SHA-256's 490), plus what sign needs; epb_ev_append about
 * 610. */
epb_ev_status epb_ev_make_checkpoint(epb_ev_chain *c, const epb_ev_signer *signer,
                                     uint64_t time_ms, const epb_ev_key *next_key,
                                     uint8_t *out, size_t cap, size_t *out_len);

/* The canonical bytes of a reading: its unsealed READING body (version 2,
 * type 3, payload, CRC-32C). Returns its length, 24..EPB_EV_READING_MAX, or 0
 * if r is invalid (what epb_encode refuses) or cap too small. */
size_t epb_ev_reading_bytes(const epb_reading *r, uint8_t *out, size_t cap);

/* H0 of a source, and one link of the chain (section 3 of the spec). */
void epb_ev_genesis(const char *src, uint8_t src_len, uint8_t out[EPB_EV_HASH_LEN]);
void epb_ev_link(const uint8_t prev[EPB_EV_HASH_LEN], uint64_t seq, const uint8_t *r,
                 size_t len, uint8_t out[EPB_EV_HASH_LEN]);

/* Deterministic encodings of a checkpoint's fields (sig excluded): the
 * Sig_structure ["Signature1", protected, h'', payload], and the whole
 * COSE_Sign1. Return the length, 0 if ck is out of range or cap too small. */
size_t epb_ev_encode_tbs(const epb_ev_checkpoint *ck, uint8_t *out, size_t cap);
size_t epb_ev_encode_cose(const epb_ev_checkpoint *ck, uint8_t *out, size_t cap);

/* ---- verify (evidence_verify.c) ---- */

/* Parses a COSE_Sign1 checkpoint strictly: bounded to EPB_EV_CHECKPOINT_MAX,
 * exactly one tag-18 array, deterministic CBOR only, only the labels and
 * keys of the spec, every range checked; *out is zeroed first. Verifies
 * nothing cryptographic. */
epb_ev_status epb_ev_parse(const uint8_t *cose, size_t len, epb_ev_checkpoint *out);

/* Checks sig over tbs[0..tbs_len) with public key pub of alg; returns 1 if it
 * verifies, 0 otherwise. */
typedef int (*epb_ev_verify_fn)(void *ctx, int32_t alg, const uint8_t *pub,
                                size_t pub_len, const uint8_t *tbs, size_t tbs_len,
                                const uint8_t sig[EPB_EV_SIG_LEN]);

/* Streaming verifier for one source: readings in seq order, each range
 * followed by its checkpoint (the caller orders and de-duplicates; a
 * reading resent must not be fed twice). 328 bytes on Cortex-M4, no heap. */
typedef struct {
  uint8_t src_len;
  char src[EPB_EV_SOURCE_MAX + 1];
  epb_ev_key key;            /* the key the source signs with now */
  epb_ev_key next;           /* announced by a checkpoint; kid_len 0: none */
  epb_ev_verify_fn verify;
  void *verify_ctx;
  uint64_t ck_n, ck_last;    /* last accepted checkpoint (0: none yet) */
  uint8_t ck_id[EPB_EV_HASH_LEN];
  uint8_t head[EPB_EV_HASH_LEN]; /* over the readings fed since then */
  uint64_t last_seq;         /* last reading fed */
  uint64_t count;            /* readings fed since the last checkpoint */
  uint64_t range_seq;        /* the first of them */
} epb_ev_verifier;

/* Starts at the chain's genesis: H0 of src, key = the source's current key. */
epb_ev_status epb_ev_verifier_init(epb_ev_verifier *v, const char *src, uint8_t src_len,
                                   const epb_ev_key *key, epb_ev_verify_fn verify,
                                   void *verify_ctx);

/* Feeds one canonical reading (its bytes as the cloud rebuilt them): a
 * valid unsealed READING body, or an event record (EPB_EV_RECORD_EVENT:
 * 02 40, EPB_EV_RECORD_MIN..EPB_EV_RECORD_MAX bytes, its CRC-32C right, seq
 * 1..EPB_SEQ_MAX). EPB_EV_ERR_READING (neither), EPB_EV_ERR_ORDER (seq not
 * above the last fed, or not above the last checkpoint's range): that
 * reading is skipped, the verifier is unchanged. */
epb_ev_status epb_ev_verifier_reading(epb_ev_verifier *v, const uint8_t *r, size_t len);

/* Feeds the checkpoint that ends the readings fed since the last one. In
 * this order: parse (its status), source (EPB_EV_ERR_SOURCE), key id (the
 * current or the announced key, else EPB_EV_ERR_KID), signature
 * (EPB_EV_ERR_SIGNATURE), the last accepted one again (EPB_EV_DUPLICATE),
 * number not above it with a range not beyond it (EPB_EV_ERR_REPLAY): the
 * verifier is unchanged by all of these. Then, for an authentic new
 * checkpoint, the verifier moves on to it whatever follows (so the next
 * range verifies on its own), and reports the first problem of: its
 * predecessor (EPB_EV_ERR_CKPT_CHAIN: n is not the next number, prev or
 * first does not follow on; also a chain the source restarted at n = 1),
 * readings outside its range (EPB_EV_ERR_EXTRA), fewer or more readings
 * than its count
 * (EPB_EV_ERR_MISSING, EPB_EV_ERR_EXTRA), head (EPB_EV_ERR_CHAIN).
 * EPB_EV_OK: every reading first..last is present, in order, unmodified, and
 * signed by the source's key. A checkpoint signed with the announced key
 * makes it the current one. out (may be NULL) receives the parsed
 * checkpoint. */
epb_ev_status epb_ev_verifier_checkpoint(epb_ev_verifier *v, const uint8_t *cose,
                                         size_t len, epb_ev_checkpoint *out);

/* Short English name of a status, e.g. "broken chain". Never NULL. */
const char *epb_ev_status_name(epb_ev_status s);

#ifdef __cplusplus
}
#endif
#endif /* EPB_EVIDENCE_H */
