/* Evidence, origin side (docs/evidence.md): the per-source hash chain over
 * canonical readings, the checkpoint policy, and the deterministic CBOR of a
 * checkpoint's COSE_Sign1 and Sig_structure, signed through a callback.
 * Linked only by units (and verifiers) that use evidence; needs sha256.c. */
#include <string.h>

#include "epb/evidence.h"
#include "epb_internal.h"
#include "evidence_internal.h"

static const uint8_t GENESIS_TAG[] = {'e', 'p', 'o', 'r', 't', '-', 'e', 'v', '1', ' ',
                                      'g', 'e', 'n', 'e', 's', 'i', 's'};
static const uint8_t LINK_TAG[] = {'e', 'p', 'o', 'r', 't', '-', 'e', 'v', '1', ' ',
                                   'l', 'i', 'n', 'k'};
/* "Signature1" (RFC 9052 section 4.4) as a CBOR text string. */
static const uint8_t SIGNATURE1[] = {0x6A, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1'};

bool epbi_ev_valid_source(const char *src, uint8_t len) {
  uint8_t i;
  if (src == NULL || len < 1u || len > EPB_EV_SOURCE_MAX) return false;
  for (i = 0; i < len; i++) {
    uint8_t ch = (uint8_t)src[i];
    if (ch < 0x21u || ch > 0x7Eu) return false;
  }
  return true;
}

bool epbi_ev_valid_key(const epb_ev_key *k) {
  if (k->kid_len < 1u || k->kid_len > EPB_EV_KID_MAX) return false;
  if (k->alg == EPB_EV_ALG_EDDSA) return k->pub_len == 32u;
  if (k->alg == EPB_EV_ALG_ES256) return k->pub_len == 65u && k->pub[0] == 0x04u;
  return false;
}

void epb_ev_genesis(const char *src, uint8_t src_len, uint8_t out[EPB_EV_HASH_LEN]) {
  epb_sha256_ctx h;
  epb_sha256_init(&h);
  epb_sha256_update(&h, GENESIS_TAG, sizeof GENESIS_TAG);
  epb_sha256_update(&h, &src_len, 1);
  epb_sha256_update(&h, (const uint8_t *)src, src_len);
  epb_sha256_final(&h, out);
}

void epb_ev_link(const uint8_t prev[EPB_EV_HASH_LEN], uint64_t seq, const uint8_t *r,
                 size_t len, uint8_t out[EPB_EV_HASH_LEN]) {
  epb_sha256_ctx h;
  uint8_t s[8];
  unsigned i;
  for (i = 0; i < 8u; i++) s[i] = (uint8_t)(seq >> (8u * i));
  epb_sha256_init(&h);
  epb_sha256_update(&h, LINK_TAG, sizeof LINK_TAG);
  epb_sha256_update(&h, prev, EPB_EV_HASH_LEN);
  epb_sha256_update(&h, s, sizeof s);
  epb_sha256_update(&h, r, len);
  epb_sha256_final(&h, out);
}

size_t epb_ev_reading_bytes(const epb_reading *r, uint8_t *out, size_t cap) {
  epb_message m;
  size_t n;
  uint32_t crc;
  if (r == NULL || out == NULL || cap < 6u) return 0;
  memset(&m, 0, sizeof m);
  m.type = EPB_MSG_READING;
  m.m.reading = *r;
  n = epbi_encode_payload(&m, out + 2, cap - 6u);
  if (n == 0) return 0;
  out[0] = (uint8_t)EPB_PROTOCOL_VERSION;
  out[1] = (uint8_t)EPB_MSG_READING;
  crc = epb_crc32c(out, n + 2u);
  out[n + 2u] = (uint8_t)crc;
  out[n + 3u] = (uint8_t)(crc >> 8);
  out[n + 4u] = (uint8_t)(crc >> 16);
  out[n + 5u] = (uint8_t)(crc >> 24);
  return n + 6u;
}

epb_ev_status epb_ev_chain_init(epb_ev_chain *c, const char *src, uint8_t src_len,
                                uint64_t start_seq) {
  if (c == NULL || !epbi_ev_valid_source(src, src_len) || start_seq < 1u ||
      start_seq > EPB_SEQ_MAX)
    return EPB_EV_ERR_ARG;
  memset(c, 0, sizeof *c);
  memcpy(c->src, src, src_len);
  c->src_len = src_len;
  epb_ev_genesis(src, src_len, c->head);
  c->range_first = start_seq;
  c->last_seq = start_seq - 1u;
  return EPB_EV_OK;
}

epb_ev_status epb_ev_append_bytes(epb_ev_chain *c, uint64_t seq, const uint8_t *r, size_t len,
                                  uint64_t now_ms, int alarm) {
  if (c == NULL || r == NULL || len == 0u || len > EPB_EV_RECORD_MAX || seq > EPB_SEQ_MAX)
    return EPB_EV_ERR_ARG;
  if (seq <= c->last_seq) return EPB_EV_ERR_SEQ;
  epb_ev_link(c->head, seq, r, len, c->head);
  c->last_seq = seq;
  if (c->count == 0) c->opened_ms = now_ms;
  c->count++;
  if (alarm) c->urgent = 1;
  return EPB_EV_OK;
}

epb_ev_status epb_ev_append(epb_ev_chain *c, const epb_reading *r, uint64_t now_ms,
                            int alarm) {
  uint8_t bytes[EPB_EV_READING_MAX];
  size_t n;
  if (c == NULL || r == NULL) return EPB_EV_ERR_ARG;
  n = epb_ev_reading_bytes(r, bytes, sizeof bytes);
  if (n == 0) return EPB_EV_ERR_ARG;
  return epb_ev_append_bytes(c, r->seq, bytes, n, now_ms,
                             alarm || r->kind == EPB_READING_SEAL || r->kind == EPB_READING_DOOR);
}

int epb_ev_due(const epb_ev_chain *c, const epb_ev_policy *p, uint64_t now_ms) {
  if (c == NULL || c->count == 0) return 0;
  if (c->urgent) return 1;
  if (p == NULL) return 0;
  if (p->every_readings > 0u && c->count >= p->every_readings) return 1;
  if (p->every_ms > 0u && now_ms >= c->opened_ms && now_ms - c->opened_ms >= p->every_ms)
    return 1;
  return 0;
}

/* ---- deterministic CBOR (RFC 8949 section 4.2.1): shortest heads, definite
 * lengths, map keys in ascending order (ours are all small uints) ---- */

static void put_bytes(epbi_writer *w, const uint8_t *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) epbi_put_u8(w, b[i]);
}

void epbi_cbor_head(epbi_writer *w, uint8_t major, uint64_t v) {
  uint8_t mt = (uint8_t)(major << 5);
  unsigned bytes, i;
  if (v < 24u) {
    epbi_put_u8(w, (uint8_t)(mt | (uint8_t)v));
    return;
  }
  if (v <= 0xFFu) {
    epbi_put_u8(w, (uint8_t)(mt | 24u));
    bytes = 1;
  } else if (v <= 0xFFFFu) {
    epbi_put_u8(w, (uint8_t)(mt | 25u));
    bytes = 2;
  } else if (v <= 0xFFFFFFFFu) {
    epbi_put_u8(w, (uint8_t)(mt | 26u));
    bytes = 4;
  } else {
    epbi_put_u8(w, (uint8_t)(mt | 27u));
    bytes = 8;
  }
  for (i = bytes; i > 0u; i--) epbi_put_u8(w, (uint8_t)(v >> (8u * (i - 1u))));
}

static void put_int(epbi_writer *w, int32_t v) {
  if (v >= 0)
    epbi_cbor_head(w, 0, (uint64_t)v);
  else
    epbi_cbor_head(w, 1, (uint64_t)(-(int64_t)v - 1));
}

static void put_bstr(epbi_writer *w, const uint8_t *b, size_t n) {
  epbi_cbor_head(w, 2, (uint64_t)n);
  put_bytes(w, b, n);
}

static bool valid_checkpoint(const epb_ev_checkpoint *ck) {
  if (ck->alg != EPB_EV_ALG_EDDSA && ck->alg != EPB_EV_ALG_ES256) return false;
  if (ck->kid_len < 1u || ck->kid_len > EPB_EV_KID_MAX) return false;
  if (!epbi_ev_valid_source(ck->src, ck->src_len)) return false;
  if (ck->n < 1u || ck->n > EPB_SEQ_MAX) return false;
  if (ck->first < 1u || ck->last < ck->first || ck->last > EPB_SEQ_MAX) return false;
  if (ck->count < 1u || ck->count > ck->last - ck->first + 1u) return false;
  if ((ck->has_prev != 0) != (ck->n > 1u)) return false;
  if (ck->has_next_key) {
    if (!epbi_ev_valid_key(&ck->next_key)) return false;
  }
  return true;
}

/* The protected header bstr contents: {1: alg, 4: kid}. */
static void put_protected(epbi_writer *w, const epb_ev_checkpoint *ck) {
  epbi_cbor_head(w, 5, 2);
  epbi_cbor_head(w, 0, 1);
  put_int(w, ck->alg);
  epbi_cbor_head(w, 0, 4);
  put_bstr(w, ck->kid, ck->kid_len);
}

static void put_payload(epbi_writer *w, const epb_ev_checkpoint *ck) {
  uint64_t entries = 7u + (ck->has_prev ? 1u : 0u) + (ck->has_next_key ? 1u : 0u);
  epbi_cbor_head(w, 5, entries);
  epbi_cbor_head(w, 0, 1);
  epbi_cbor_head(w, 3, ck->src_len);
  put_bytes(w, (const uint8_t *)ck->src, ck->src_len);
  epbi_cbor_head(w, 0, 2);
  epbi_cbor_head(w, 0, ck->n);
  epbi_cbor_head(w, 0, 3);
  epbi_cbor_head(w, 0, ck->first);
  epbi_cbor_head(w, 0, 4);
  epbi_cbor_head(w, 0, ck->last);
  epbi_cbor_head(w, 0, 5);
  epbi_cbor_head(w, 0, ck->count);
  epbi_cbor_head(w, 0, 6);
  put_bstr(w, ck->head, EPB_EV_HASH_LEN);
  if (ck->has_prev) {
    epbi_cbor_head(w, 0, 7);
    put_bstr(w, ck->prev, EPB_EV_HASH_LEN);
  }
  epbi_cbor_head(w, 0, 8);
  epbi_cbor_head(w, 0, ck->time_ms);
  if (ck->has_next_key) {
    epbi_cbor_head(w, 0, 9);
    epbi_cbor_head(w, 4, 3);
    put_int(w, ck->next_key.alg);
    put_bstr(w, ck->next_key.kid, ck->next_key.kid_len);
    put_bstr(w, ck->next_key.pub, ck->next_key.pub_len);
  }
}

/* Writes a bstr holding what fill writes. Its head has a fixed size: the
 * protected header is always shorter than 24 bytes (one head byte), the
 * payload always 24..255 bytes (0x58 and one length byte); the head is
 * patched once the contents are written. */
typedef void (*fill_fn)(epbi_writer *w, const epb_ev_checkpoint *ck);

static void put_wrapped(epbi_writer *w, fill_fn fill, const epb_ev_checkpoint *ck,
                        size_t head_len) {
  size_t start = w->len, n;
  size_t i;
  for (i = 0; i < head_len; i++) epbi_put_u8(w, 0);
  fill(w, ck);
  if (!w->ok) return;
  n = w->len - start - head_len;
  if (head_len == 1u && n < 24u) {
    w->p[start] = (uint8_t)(0x40u | n);
  } else if (head_len == 2u && n >= 24u && n <= 0xFFu) {
    w->p[start] = 0x58u;
    w->p[start + 1u] = (uint8_t)n;
  } else {
    w->ok = false;
  }
}

size_t epb_ev_encode_tbs(const epb_ev_checkpoint *ck, uint8_t *out, size_t cap) {
  epbi_writer w = {out, 0, cap, true};
  if (ck == NULL || out == NULL || !valid_checkpoint(ck)) return 0;
  epbi_cbor_head(&w, 4, 4);
  put_bytes(&w, SIGNATURE1, sizeof SIGNATURE1);
  put_wrapped(&w, put_protected, ck, 1);
  epbi_cbor_head(&w, 2, 0); /* external_aad: empty */
  put_wrapped(&w, put_payload, ck, 2);
  return w.ok ? w.len : 0;
}

size_t epb_ev_encode_cose(const epb_ev_checkpoint *ck, uint8_t *out, size_t cap) {
  epbi_writer w = {out, 0, cap, true};
  if (ck == NULL || out == NULL || !valid_checkpoint(ck)) return 0;
  epbi_cbor_head(&w, 6, 18); /* COSE_Sign1 tag */
  epbi_cbor_head(&w, 4, 4);
  put_wrapped(&w, put_protected, ck, 1);
  epbi_cbor_head(&w, 5, 0); /* unprotected: {} */
  put_wrapped(&w, put_payload, ck, 2);
  put_bstr(&w, ck->sig, EPB_EV_SIG_LEN);
  return w.ok ? w.len : 0;
}

epb_ev_status epb_ev_make_checkpoint(epb_ev_chain *c, const epb_ev_signer *signer,
                                     uint64_t time_ms, const epb_ev_key *next_key,
                                     uint8_t *out, size_t cap, size_t *out_len) {
  epb_ev_checkpoint ck;
  size_t tbs_len, cose_len;
  if (c == NULL || signer == NULL || signer->sign == NULL || out == NULL ||
      out_len == NULL)
    return EPB_EV_ERR_ARG;
  if (c->count == 0) return EPB_EV_ERR_EMPTY;
  memset(&ck, 0, sizeof ck);
  ck.alg = signer->alg;
  ck.kid_len = signer->kid_len;
  if (signer->kid_len <= EPB_EV_KID_MAX) memcpy(ck.kid, signer->kid, signer->kid_len);
  ck.src_len = c->src_len;
  memcpy(ck.src, c->src, c->src_len);
  ck.n = c->ckpt_n + 1u;
  ck.first = c->range_first;
  ck.last = c->last_seq;
  ck.count = c->count;
  ck.time_ms = time_ms;
  memcpy(ck.head, c->head, EPB_EV_HASH_LEN);
  if (c->ckpt_n > 0u) {
    ck.has_prev = 1;
    memcpy(ck.prev, c->last_ckpt, EPB_EV_HASH_LEN);
  }
  if (next_key != NULL) {
    ck.has_next_key = 1;
    ck.next_key = *next_key;
  }
  /* The Sig_structure goes into out first; the COSE_Sign1 is then made from
   * it in place: both are <prefix> bstr(protected) X bstr(payload) with X =
   * 0x40 (h'') in one and 0xA0 ({}) in the other, the COSE prefix (D2 84) is
   * 10 bytes shorter and the signature follows. */
  tbs_len = epb_ev_encode_tbs(&ck, out, cap);
  if (tbs_len == 0) return EPB_EV_ERR_ARG;
  cose_len = tbs_len - 12u + 2u + 2u + EPB_EV_SIG_LEN;
  if (cose_len > cap) return EPB_EV_ERR_ARG;
  if (!signer->sign(signer->ctx, out, tbs_len, ck.sig)) return EPB_EV_ERR_SIGNER;
  epb_sha256(out, tbs_len, c->last_ckpt);
  {
    size_t i, prot_len = 1u + (size_t)out[12] - 0x40u; /* a short bstr: 0x40 + n */
    for (i = 12; i < tbs_len; i++) out[i - 10u] = out[i];
    out[0] = 0xD2u;
    out[1] = 0x84u;
    out[2u + prot_len] = 0xA0u;
    out[tbs_len - 10u] = 0x58u;
    out[tbs_len - 9u] = (uint8_t)EPB_EV_SIG_LEN;
    memcpy(out + tbs_len - 8u, ck.sig, EPB_EV_SIG_LEN);
  }
  *out_len = cose_len;
  c->ckpt_n = ck.n;
  c->range_first = c->last_seq + 1u;
  c->count = 0;
  c->urgent = 0;
  c->opened_ms = 0;
  return EPB_EV_OK;
}
