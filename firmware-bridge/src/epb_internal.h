/* Internals shared by the epb sources (not installed, not part of the API):
 * COBS, explicit little-endian packing and the byte cursors the codec uses.
 * Everything here works byte by byte: no struct casts, no unaligned access. */
#ifndef EPB_INTERNAL_H
#define EPB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "epb/epb.h"

/* COBS-encodes in[0..n) into out[0..cap) without the trailing 0x00.
 * Returns the encoded length, or 0 if cap is too small. */
size_t epbi_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* COBS-decodes buf[0..n) in place (the output never overtakes the input).
 * Returns false if a code byte points past the end or a 0x00 appears;
 * otherwise stores the decoded length in *out_len. */
bool epbi_cobs_decode_inplace(uint8_t *buf, size_t n, size_t *out_len);

/* Writes msg's payload (no version, type or crc) into out[0..cap); returns
 * its length, or 0 if msg is invalid or cap too small. */
size_t epbi_encode_payload(const epb_message *msg, uint8_t *out, size_t cap);

/* Write cursor: fails sticky once the buffer is full. */
typedef struct {
  uint8_t *p;
  size_t len, cap;
  bool ok;
} epbi_writer;

/* Read cursor: fails sticky when reading past the end. */
typedef struct {
  const uint8_t *p;
  size_t len, pos;
  bool ok;
} epbi_reader;

static inline void epbi_put_u8(epbi_writer *w, uint8_t v) {
  if (!w->ok || w->len >= w->cap) {
    w->ok = false;
    return;
  }
  w->p[w->len++] = v;
}

static inline void epbi_put_u16(epbi_writer *w, uint16_t v) {
  epbi_put_u8(w, (uint8_t)(v & 0xFFu));
  epbi_put_u8(w, (uint8_t)(v >> 8));
}

static inline void epbi_put_u32(epbi_writer *w, uint32_t v) {
  epbi_put_u16(w, (uint16_t)(v & 0xFFFFu));
  epbi_put_u16(w, (uint16_t)(v >> 16));
}

static inline void epbi_put_u64(epbi_writer *w, uint64_t v) {
  epbi_put_u32(w, (uint32_t)(v & 0xFFFFFFFFu));
  epbi_put_u32(w, (uint32_t)(v >> 32));
}

static inline uint8_t epbi_get_u8(epbi_reader *r) {
  if (!r->ok || r->pos >= r->len) {
    r->ok = false;
    return 0;
  }
  return r->p[r->pos++];
}

static inline uint16_t epbi_get_u16(epbi_reader *r) {
  uint16_t lo = epbi_get_u8(r);
  uint16_t hi = epbi_get_u8(r);
  return (uint16_t)(lo | (uint16_t)(hi << 8));
}

static inline uint32_t epbi_get_u32(epbi_reader *r) {
  uint32_t lo = epbi_get_u16(r);
  uint32_t hi = epbi_get_u16(r);
  return lo | (hi << 16);
}

static inline uint64_t epbi_get_u64(epbi_reader *r) {
  uint64_t lo = epbi_get_u32(r);
  uint64_t hi = epbi_get_u32(r);
  return lo | (hi << 32);
}

/* Two's complement conversions without implementation-defined casts. */
static inline uint16_t epbi_from_i16(int16_t v) {
  return v < 0 ? (uint16_t)(65535u - (uint16_t)(-(v + 1))) : (uint16_t)v;
}
static inline int16_t epbi_to_i16(uint16_t v) {
  return v > 32767u ? (int16_t)(-(int16_t)(65535u - v) - 1) : (int16_t)v;
}
static inline uint32_t epbi_from_i32(int32_t v) {
  return v < 0 ? (uint32_t)(4294967295u - (uint32_t)(-(v + 1))) : (uint32_t)v;
}
static inline int32_t epbi_to_i32(uint32_t v) {
  return v > 2147483647u ? (int32_t)(-(int32_t)(4294967295u - v) - 1) : (int32_t)v;
}

#endif /* EPB_INTERNAL_H */
