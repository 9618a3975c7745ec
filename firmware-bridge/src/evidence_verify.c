/* Evidence, verifying side (docs/evidence.md section 8): a strict, bounded
 * parser for COSE_Sign1 checkpoints (deterministic CBOR only, every other
 * encoding refused with a reason) and a streaming verifier of one source's
 * readings against its checkpoints. C99 like the origin side, so the agent,
 * eport-verify and the fuzzer share one implementation with the encoder
 * that units run; it re-encodes what it parsed and compares, so nothing the
 * encoder would not produce is ever accepted. */
#include <string.h>

#include "epb/evidence.h"
#include "epb_internal.h"
#include "evidence_internal.h"

/* Read cursor with a sticky first error. */
typedef struct {
  const uint8_t *p;
  size_t len, pos;
  epb_ev_status err;
} rd;

static void fail(rd *r, epb_ev_status e) {
  if (r->err == EPB_EV_OK) r->err = e;
}

/* Reads one CBOR head: major type and argument. Refuses long forms
 * (non-deterministic), indefinite lengths and reserved values. */
static bool head(rd *r, uint8_t *major, uint64_t *v) {
  uint8_t b, ai;
  unsigned n, i;
  if (r->err != EPB_EV_OK) return false;
  if (r->pos >= r->len) {
    fail(r, EPB_EV_ERR_TRUNCATED);
    return false;
  }
  b = r->p[r->pos++];
  *major = (uint8_t)(b >> 5);
  ai = (uint8_t)(b & 0x1Fu);
  if (ai < 24u) {
    *v = ai;
    return true;
  }
  if (ai == 31u && *major >= 2u && *major <= 5u) {
    fail(r, EPB_EV_ERR_NONCANONICAL); /* indefinite length */
    return false;
  }
  if (ai > 27u) {
    fail(r, EPB_EV_ERR_CBOR);
    return false;
  }
  n = 1u << (ai - 24u);
  if (r->len - r->pos < n) {
    fail(r, EPB_EV_ERR_TRUNCATED);
    return false;
  }
  *v = 0;
  for (i = 0; i < n; i++) *v = (*v << 8) | r->p[r->pos++];
  if ((n == 1u && *v < 24u) || (n == 2u && *v <= 0xFFu) || (n == 4u && *v <= 0xFFFFu) ||
      (n == 8u && *v <= 0xFFFFFFFFu)) {
    fail(r, EPB_EV_ERR_NONCANONICAL);
    return false;
  }
  if (*major == 7u) { /* floats, simple values: never ours */
    fail(r, EPB_EV_ERR_CBOR);
    return false;
  }
  return true;
}

/* A head of the given major type, else error e. */
static bool expect(rd *r, uint8_t major, uint64_t *v, epb_ev_status e) {
  uint8_t m;
  if (!head(r, &m, v)) return false;
  if (m != major) {
    fail(r, e);
    return false;
  }
  return true;
}

/* The n content bytes of a string whose head was just read. */
static const uint8_t *take(rd *r, uint64_t n) {
  const uint8_t *at;
  if (r->err != EPB_EV_OK) return NULL;
  if (n > r->len - r->pos) {
    fail(r, EPB_EV_ERR_TRUNCATED);
    return NULL;
  }
  at = r->p + r->pos;
  r->pos += (size_t)n;
  return at;
}

static bool bstr_exact(rd *r, uint8_t *dst, uint64_t want, epb_ev_status e) {
  uint64_t n;
  const uint8_t *b;
  if (!expect(r, 2, &n, e)) return false;
  if (n != want) {
    fail(r, e);
    return false;
  }
  b = take(r, n);
  if (b == NULL) return false;
  memcpy(dst, b, (size_t)n);
  return true;
}

static bool get_int(rd *r, int32_t *out, epb_ev_status e) {
  uint8_t m;
  uint64_t v;
  if (!head(r, &m, &v)) return false;
  if ((m != 0u && m != 1u) || v > 0x7FFFFFFFu) {
    fail(r, e);
    return false;
  }
  *out = m == 0u ? (int32_t)v : (int32_t)(-1 - (int64_t)v);
  return true;
}

static bool get_kid(rd *r, uint8_t *len, uint8_t kid[EPB_EV_KID_MAX], epb_ev_status e) {
  uint64_t n;
  const uint8_t *b;
  if (!expect(r, 2, &n, e)) return false;
  if (n < 1u || n > EPB_EV_KID_MAX) {
    fail(r, e);
    return false;
  }
  b = take(r, n);
  if (b == NULL) return false;
  memcpy(kid, b, (size_t)n);
  *len = (uint8_t)n;
  return true;
}

/* Map keys: small uints, strictly ascending; a smaller one is a key-order
 * fault, an equal one a repeated key. */
static bool map_key(rd *r, uint64_t *key, uint64_t prev, epb_ev_status e) {
  if (!expect(r, 0, key, e)) return false;
  if (*key < prev) {
    fail(r, EPB_EV_ERR_NONCANONICAL);
    return false;
  }
  if (*key == prev) {
    fail(r, e);
    return false;
  }
  return true;
}

static void parse_protected(rd *r, epb_ev_checkpoint *ck) {
  uint64_t n, key, prev = 0, i;
  bool alg = false, kid = false;
  if (!expect(r, 5, &n, EPB_EV_ERR_HEADER)) return;
  if (n != 2u) {
    fail(r, EPB_EV_ERR_HEADER);
    return;
  }
  for (i = 0; i < n && r->err == EPB_EV_OK; i++) {
    if (!map_key(r, &key, prev, EPB_EV_ERR_HEADER)) return;
    prev = key;
    if (key == 1u) {
      alg = get_int(r, &ck->alg, EPB_EV_ERR_HEADER);
      if (alg && ck->alg != EPB_EV_ALG_EDDSA && ck->alg != EPB_EV_ALG_ES256)
        fail(r, EPB_EV_ERR_HEADER);
    } else if (key == 4u) {
      kid = get_kid(r, &ck->kid_len, ck->kid, EPB_EV_ERR_HEADER);
    } else {
      fail(r, EPB_EV_ERR_HEADER);
    }
  }
  if (!alg || !kid) fail(r, EPB_EV_ERR_HEADER);
  if (r->pos != r->len) fail(r, EPB_EV_ERR_HEADER);
}

static void parse_next_key(rd *r, epb_ev_key *k) {
  uint64_t n;
  const uint8_t *b;
  if (!expect(r, 4, &n, EPB_EV_ERR_PAYLOAD)) return;
  if (n != 3u) {
    fail(r, EPB_EV_ERR_PAYLOAD);
    return;
  }
  if (!get_int(r, &k->alg, EPB_EV_ERR_PAYLOAD)) return;
  if (!get_kid(r, &k->kid_len, k->kid, EPB_EV_ERR_PAYLOAD)) return;
  if (!expect(r, 2, &n, EPB_EV_ERR_PAYLOAD)) return;
  if (n > EPB_EV_PUB_MAX) {
    fail(r, EPB_EV_ERR_PAYLOAD);
    return;
  }
  b = take(r, n);
  if (b == NULL) return;
  memcpy(k->pub, b, (size_t)n);
  k->pub_len = (uint8_t)n;
  if (!epbi_ev_valid_key(k)) fail(r, EPB_EV_ERR_PAYLOAD);
}

static void parse_payload(rd *r, epb_ev_checkpoint *ck) {
  uint64_t n, key, prev = 0, i, v;
  unsigned seen = 0; /* bit k: key k present */
  const uint8_t *b;
  if (!expect(r, 5, &n, EPB_EV_ERR_PAYLOAD)) return;
  if (n < 7u || n > 9u) {
    fail(r, EPB_EV_ERR_PAYLOAD);
    return;
  }
  for (i = 0; i < n && r->err == EPB_EV_OK; i++) {
    if (!map_key(r, &key, prev, EPB_EV_ERR_PAYLOAD)) return;
    prev = key;
    if (key < 1u || key > 9u) {
      fail(r, EPB_EV_ERR_PAYLOAD);
      return;
    }
    seen |= 1u << key;
    switch (key) {
      case 1:
        if (!expect(r, 3, &v, EPB_EV_ERR_PAYLOAD)) return;
        if (v < 1u || v > EPB_EV_SOURCE_MAX) {
          fail(r, EPB_EV_ERR_PAYLOAD);
          return;
        }
        b = take(r, v);
        if (b == NULL) return;
        memcpy(ck->src, b, (size_t)v);
        ck->src_len = (uint8_t)v;
        if (!epbi_ev_valid_source(ck->src, ck->src_len)) fail(r, EPB_EV_ERR_PAYLOAD);
        break;
      case 2: expect(r, 0, &ck->n, EPB_EV_ERR_PAYLOAD); break;
      case 3: expect(r, 0, &ck->first, EPB_EV_ERR_PAYLOAD); break;
      case 4: expect(r, 0, &ck->last, EPB_EV_ERR_PAYLOAD); break;
      case 5: expect(r, 0, &ck->count, EPB_EV_ERR_PAYLOAD); break;
      case 6: bstr_exact(r, ck->head, EPB_EV_HASH_LEN, EPB_EV_ERR_PAYLOAD); break;
      case 7:
        if (bstr_exact(r, ck->prev, EPB_EV_HASH_LEN, EPB_EV_ERR_PAYLOAD)) ck->has_prev = 1;
        break;
      case 8: expect(r, 0, &ck->time_ms, EPB_EV_ERR_PAYLOAD); break;
      default:
        parse_next_key(r, &ck->next_key);
        ck->has_next_key = 1;
        break;
    }
  }
  if (r->err != EPB_EV_OK) return;
  if ((seen & 0x17Eu) != 0x17Eu) { /* keys 1..6 and 8 are required */
    fail(r, EPB_EV_ERR_PAYLOAD);
    return;
  }
  if (ck->n < 1u || ck->n > EPB_SEQ_MAX || ck->first < 1u || ck->last < ck->first ||
      ck->last > EPB_SEQ_MAX || ck->count < 1u || ck->count > ck->last - ck->first + 1u ||
      (ck->has_prev != 0) != (ck->n > 1u))
    fail(r, EPB_EV_ERR_PAYLOAD);
  if (r->pos != r->len) fail(r, EPB_EV_ERR_PAYLOAD);
}

/* A bstr whose contents are parsed by sub. */
static void wrapped(rd *r, void (*sub)(rd *, epb_ev_checkpoint *), epb_ev_checkpoint *ck) {
  uint64_t n;
  const uint8_t *b;
  rd inner;
  if (!expect(r, 2, &n, EPB_EV_ERR_CBOR)) return;
  b = take(r, n);
  if (b == NULL) return;
  inner.p = b;
  inner.len = (size_t)n;
  inner.pos = 0;
  inner.err = EPB_EV_OK;
  sub(&inner, ck);
  fail(r, inner.err);
}

epb_ev_status epb_ev_parse(const uint8_t *cose, size_t len, epb_ev_checkpoint *out) {
  rd r;
  uint64_t v;
  uint8_t again[EPB_EV_CHECKPOINT_MAX];
  size_t n;
  if (out == NULL) return EPB_EV_ERR_ARG;
  memset(out, 0, sizeof *out);
  if (cose == NULL) return EPB_EV_ERR_ARG;
  if (len > EPB_EV_CHECKPOINT_MAX) return EPB_EV_ERR_TOO_LARGE;
  r.p = cose;
  r.len = len;
  r.pos = 0;
  r.err = EPB_EV_OK;
  if (expect(&r, 6, &v, EPB_EV_ERR_CBOR) && v != 18u) fail(&r, EPB_EV_ERR_CBOR);
  if (expect(&r, 4, &v, EPB_EV_ERR_CBOR) && v != 4u) fail(&r, EPB_EV_ERR_CBOR);
  wrapped(&r, parse_protected, out);
  if (expect(&r, 5, &v, EPB_EV_ERR_CBOR) && v != 0u) fail(&r, EPB_EV_ERR_HEADER);
  wrapped(&r, parse_payload, out);
  if (expect(&r, 2, &v, EPB_EV_ERR_CBOR) && v != EPB_EV_SIG_LEN) fail(&r, EPB_EV_ERR_CBOR);
  if (r.err == EPB_EV_OK) {
    const uint8_t *s = take(&r, EPB_EV_SIG_LEN);
    if (s != NULL) memcpy(out->sig, s, EPB_EV_SIG_LEN);
  }
  if (r.err == EPB_EV_OK && r.pos != r.len) fail(&r, EPB_EV_ERR_TRAILING);
  if (r.err != EPB_EV_OK) return r.err;
  /* Backstop: only the encoder's own bytes are canonical. */
  n = epb_ev_encode_cose(out, again, sizeof again);
  if (n != len || memcmp(again, cose, len) != 0) return EPB_EV_ERR_NONCANONICAL;
  return EPB_EV_OK;
}

/* ---- the streaming verifier ---- */

static bool same_kid(const epb_ev_key *k, const epb_ev_checkpoint *ck) {
  return k->kid_len > 0u && k->kid_len == ck->kid_len && k->alg == ck->alg &&
         memcmp(k->kid, ck->kid, k->kid_len) == 0;
}

epb_ev_status epb_ev_verifier_init(epb_ev_verifier *v, const char *src, uint8_t src_len,
                                   const epb_ev_key *key, epb_ev_verify_fn verify,
                                   void *verify_ctx) {
  if (v == NULL || key == NULL || verify == NULL || !epbi_ev_valid_source(src, src_len) ||
      !epbi_ev_valid_key(key))
    return EPB_EV_ERR_ARG;
  memset(v, 0, sizeof *v);
  memcpy(v->src, src, src_len);
  v->src_len = src_len;
  v->key = *key;
  v->verify = verify;
  v->verify_ctx = verify_ctx;
  epb_ev_genesis(src, src_len, v->head);
  return EPB_EV_OK;
}

/* The seq of an event record (EPB_EV_RECORD_EVENT), 0 if r is not one. */
static uint64_t event_record_seq(const uint8_t *r, size_t len) {
  uint64_t seq = 0;
  uint32_t crc;
  unsigned i;
  if (len < EPB_EV_RECORD_MIN || len > EPB_EV_RECORD_MAX || r[0] != (uint8_t)EPB_PROTOCOL_VERSION ||
      r[1] != (uint8_t)EPB_EV_RECORD_EVENT)
    return 0;
  crc = (uint32_t)r[len - 4u] | (uint32_t)r[len - 3u] << 8 | (uint32_t)r[len - 2u] << 16 |
        (uint32_t)r[len - 1u] << 24;
  if (epb_crc32c(r, len - 4u) != crc) return 0;
  for (i = 0; i < 8u; i++) seq |= (uint64_t)r[2u + i] << (8u * i);
  return seq <= EPB_SEQ_MAX ? seq : 0;
}

epb_ev_status epb_ev_verifier_reading(epb_ev_verifier *v, const uint8_t *r, size_t len) {
  epb_message m;
  uint64_t seq;
  if (v == NULL || r == NULL) return EPB_EV_ERR_ARG;
  seq = event_record_seq(r, len);
  if (seq == 0) {
    if (len > EPB_EV_READING_MAX || epb_decode_body(r, len, &m) != EPB_OK ||
        m.type != EPB_MSG_READING || m.sealed)
      return EPB_EV_ERR_READING;
    seq = m.m.reading.seq;
  }
  if (seq <= v->last_seq || seq <= v->ck_last) return EPB_EV_ERR_ORDER;
  epb_ev_link(v->head, seq, r, len, v->head);
  if (v->count == 0u) v->range_seq = seq;
  v->last_seq = seq;
  v->count++;
  return EPB_EV_OK;
}

epb_ev_status epb_ev_verifier_checkpoint(epb_ev_verifier *v, const uint8_t *cose,
                                         size_t len, epb_ev_checkpoint *out) {
  epb_ev_checkpoint local;
  epb_ev_checkpoint *ck = out != NULL ? out : &local;
  uint8_t tbs[EPB_EV_TBS_MAX];
  uint8_t id[EPB_EV_HASH_LEN];
  const epb_ev_key *key;
  size_t tbs_len;
  epb_ev_status st;
  if (v == NULL) return EPB_EV_ERR_ARG;
  st = epb_ev_parse(cose, len, ck);
  if (st != EPB_EV_OK) return st;
  if (ck->src_len != v->src_len || memcmp(ck->src, v->src, v->src_len) != 0)
    return EPB_EV_ERR_SOURCE;
  if (same_kid(&v->key, ck))
    key = &v->key;
  else if (same_kid(&v->next, ck))
    key = &v->next;
  else
    return EPB_EV_ERR_KID;
  tbs_len = epb_ev_encode_tbs(ck, tbs, sizeof tbs);
  if (tbs_len == 0) return EPB_EV_ERR_PAYLOAD;
  if (v->verify(v->verify_ctx, key->alg, key->pub, key->pub_len, tbs, tbs_len, ck->sig) != 1)
    return EPB_EV_ERR_SIGNATURE;
  epb_sha256(tbs, tbs_len, id);
  if (v->ck_n > 0u && ck->n == v->ck_n && memcmp(id, v->ck_id, sizeof id) == 0)
    return EPB_EV_DUPLICATE;
  /* An older number is a replay, unless its range lies beyond everything
   * accepted: then the source restarted its chain (it lost its state), a
   * break the next check reports. */
  if (ck->n <= v->ck_n && ck->first <= v->ck_last) return EPB_EV_ERR_REPLAY;

  /* Authentic and new: judge its place, then move on to it. */
  st = EPB_EV_OK;
  if (ck->n != v->ck_n + 1u || (ck->has_prev && memcmp(ck->prev, v->ck_id, sizeof id) != 0) ||
      (v->ck_n > 0u && ck->first != v->ck_last + 1u))
    st = EPB_EV_ERR_CKPT_CHAIN;
  else if (v->last_seq > ck->last || (v->count > 0u && v->range_seq < ck->first))
    st = EPB_EV_ERR_EXTRA;
  else if (v->count < ck->count)
    st = EPB_EV_ERR_MISSING;
  else if (v->count > ck->count)
    st = EPB_EV_ERR_EXTRA;
  else if (memcmp(v->head, ck->head, EPB_EV_HASH_LEN) != 0)
    st = EPB_EV_ERR_CHAIN;
  if (key == &v->next) {
    v->key = v->next;
    memset(&v->next, 0, sizeof v->next);
  }
  if (ck->has_next_key) v->next = ck->next_key;
  v->ck_n = ck->n;
  v->ck_last = ck->last;
  memcpy(v->ck_id, id, sizeof id);
  memcpy(v->head, ck->head, EPB_EV_HASH_LEN);
  if (v->last_seq < ck->last) v->last_seq = ck->last;
  v->count = 0;
  return st;
}

const char *epb_ev_status_name(epb_ev_status s) {
  switch (s) {
    case EPB_EV_OK: return "ok";
    case EPB_EV_DUPLICATE: return "duplicate checkpoint";
    case EPB_EV_ERR_ARG: return "invalid argument";
    case EPB_EV_ERR_SEQ: return "seq not above the chain's last";
    case EPB_EV_ERR_EMPTY: return "no reading to cover";
    case EPB_EV_ERR_SIGNER: return "signer failed";
    case EPB_EV_ERR_TOO_LARGE: return "checkpoint too large";
    case EPB_EV_ERR_TRUNCATED: return "truncated";
    case EPB_EV_ERR_TRAILING: return "trailing bytes";
    case EPB_EV_ERR_CBOR: return "not a COSE_Sign1";
    case EPB_EV_ERR_NONCANONICAL: return "not deterministic CBOR";
    case EPB_EV_ERR_HEADER: return "bad header";
    case EPB_EV_ERR_PAYLOAD: return "bad payload";
    case EPB_EV_ERR_SOURCE: return "another source";
    case EPB_EV_ERR_KID: return "wrong key id";
    case EPB_EV_ERR_SIGNATURE: return "bad signature";
    case EPB_EV_ERR_REPLAY: return "checkpoint replayed";
    case EPB_EV_ERR_CKPT_CHAIN: return "checkpoint chain broken";
    case EPB_EV_ERR_READING: return "not a canonical reading";
    case EPB_EV_ERR_ORDER: return "reading out of order";
    case EPB_EV_ERR_MISSING: return "reading missing";
    case EPB_EV_ERR_EXTRA: return "reading not covered";
    case EPB_EV_ERR_CHAIN: return "broken chain";
  }
  return "unknown";
}
