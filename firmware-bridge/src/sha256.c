/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), byte by byte, no heap:
 * the hash behind unit authentication (auth.c) and, later, the per-source
 * hash chains of the evidence format. Small rather than fast: one 64-entry
 * constant table and a 64-word schedule on the stack. */
#include <string.h>

#include "epb_internal.h"

static const uint32_t K256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u,
    0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u,
    0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au,
    0x5b9cca4fu, 0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u};

static uint32_t ror(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static void compress(uint32_t h[8], const uint8_t block[64]) {
  uint32_t w[64];
  uint32_t a, b, c, d, e, f, g, k;
  unsigned i;
  for (i = 0; i < 16u; i++)
    w[i] = ((uint32_t)block[4u * i] << 24) | ((uint32_t)block[4u * i + 1u] << 16) |
           ((uint32_t)block[4u * i + 2u] << 8) | (uint32_t)block[4u * i + 3u];
  for (i = 16; i < 64u; i++) {
    uint32_t s0 = ror(w[i - 15u], 7) ^ ror(w[i - 15u], 18) ^ (w[i - 15u] >> 3);
    uint32_t s1 = ror(w[i - 2u], 17) ^ ror(w[i - 2u], 19) ^ (w[i - 2u] >> 10);
    w[i] = w[i - 16u] + s0 + w[i - 7u] + s1;
  }
  a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; k = h[7];
  for (i = 0; i < 64u; i++) {
    uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) +
                  K256[i] + w[i];
    uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void epb_sha256_init(epb_sha256_ctx *c) {
  static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                 0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
  memcpy(c->h, iv, sizeof iv);
  c->total = 0;
  c->used = 0;
}

void epb_sha256_update(epb_sha256_ctx *c, const uint8_t *data, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    c->block[c->used++] = data[i];
    if (c->used == 64u) {
      compress(c->h, c->block);
      c->used = 0;
    }
  }
  c->total += (uint64_t)len;
}

void epb_sha256_final(epb_sha256_ctx *c, uint8_t out[EPB_SHA256_LEN]) {
  uint64_t bits = c->total * 8u;
  unsigned i;
  c->block[c->used++] = 0x80u;
  if (c->used > 56u) {
    while (c->used < 64u) c->block[c->used++] = 0;
    compress(c->h, c->block);
    c->used = 0;
  }
  while (c->used < 56u) c->block[c->used++] = 0;
  for (i = 0; i < 8u; i++) c->block[56u + i] = (uint8_t)(bits >> (56u - 8u * i));
  compress(c->h, c->block);
  for (i = 0; i < 8u; i++) {
    out[4u * i] = (uint8_t)(c->h[i] >> 24);
    out[4u * i + 1u] = (uint8_t)(c->h[i] >> 16);
    out[4u * i + 2u] = (uint8_t)(c->h[i] >> 8);
    out[4u * i + 3u] = (uint8_t)c->h[i];
  }
  memset(c, 0, sizeof *c);
}

void epb_sha256(const uint8_t *data, size_t len, uint8_t out[EPB_SHA256_LEN]) {
  epb_sha256_ctx c;
  epb_sha256_init(&c);
  epb_sha256_update(&c, data, len);
  epb_sha256_final(&c, out);
}

void epb_hmac_init(epb_hmac_ctx *m, const uint8_t *key, size_t key_len) {
  uint8_t pad[64];
  unsigned i;
  memset(m->key, 0, sizeof m->key);
  if (key_len > 64u) {
    epb_sha256(key, key_len, m->key);
  } else if (key_len > 0u) {
    memcpy(m->key, key, key_len);
  }
  for (i = 0; i < 64u; i++) pad[i] = (uint8_t)(m->key[i] ^ 0x36u);
  epb_sha256_init(&m->inner);
  epb_sha256_update(&m->inner, pad, sizeof pad);
  memset(pad, 0, sizeof pad);
}

void epb_hmac_update(epb_hmac_ctx *m, const uint8_t *data, size_t len) {
  epb_sha256_update(&m->inner, data, len);
}

void epb_hmac_final(epb_hmac_ctx *m, uint8_t out[EPB_SHA256_LEN]) {
  uint8_t pad[64];
  uint8_t inner[EPB_SHA256_LEN];
  epb_sha256_ctx outer;
  unsigned i;
  epb_sha256_final(&m->inner, inner);
  for (i = 0; i < 64u; i++) pad[i] = (uint8_t)(m->key[i] ^ 0x5cu);
  epb_sha256_init(&outer);
  epb_sha256_update(&outer, pad, sizeof pad);
  epb_sha256_update(&outer, inner, sizeof inner);
  epb_sha256_final(&outer, out);
  memset(pad, 0, sizeof pad);
  memset(inner, 0, sizeof inner);
  memset(m, 0, sizeof *m);
}

void epb_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data,
                     size_t len, uint8_t out[EPB_SHA256_LEN]) {
  epb_hmac_ctx m;
  epb_hmac_init(&m, key, key_len);
  epb_hmac_update(&m, data, len);
  epb_hmac_final(&m, out);
}
