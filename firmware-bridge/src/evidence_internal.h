/* Internals shared by the two evidence sources (evidence.c, evidence_verify.c):
 * range checks and the CBOR head writer, one definition each. Not part of the
 * API. */
#ifndef EPB_EVIDENCE_INTERNAL_H
#define EPB_EVIDENCE_INTERNAL_H

#include <stdbool.h>

#include "epb/evidence.h"
#include "epb_internal.h"

/* 1..EPB_EV_SOURCE_MAX bytes, each 0x21..0x7E. */
bool epbi_ev_valid_source(const char *src, uint8_t len);
/* alg EdDSA with a 32-byte key or ES256 with a 65-byte 04||x||y; kid 1..16. */
bool epbi_ev_valid_key(const epb_ev_key *k);
/* A CBOR head of major type `major` with argument v, in its shortest form. */
void epbi_cbor_head(epbi_writer *w, uint8_t major, uint64_t v);

#endif /* EPB_EVIDENCE_INTERNAL_H */
