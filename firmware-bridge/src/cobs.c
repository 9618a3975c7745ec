/* Consistent Overhead Byte Stuffing for epb frames: removes every 0x00 from a
 * body so that 0x00 can delimit frames on a raw byte stream (UART, TCP, UNIX
 * socket). Overhead is one byte per 254 bytes of body, at least one. */
#include "epb_internal.h"

size_t epbi_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  size_t code_at = 0; /* where the current group's code byte goes */
  size_t o = 1;       /* next output position */
  uint8_t code = 1;   /* 1 + data bytes in the current group */
  size_t i;

  if (cap == 0) return 0;
  for (i = 0; i < n; i++) {
    if (in[i] == 0) {
      out[code_at] = code;
      code_at = o++;
      code = 1;
      if (o > cap) return 0;
    } else {
      if (o >= cap) return 0;
      out[o++] = in[i];
      code++;
      if (code == 0xFFu) {
        /* A full group: no implied zero follows it. Open a new group only if
         * more input follows, so that a body of exactly 254k bytes gains no
         * needless trailing code byte. */
        out[code_at] = code;
        code = 1;
        if (i + 1 < n) {
          code_at = o++;
          if (o > cap) return 0;
        } else {
          return o;
        }
      }
    }
  }
  out[code_at] = code;
  return o;
}

bool epbi_cobs_decode_inplace(uint8_t *buf, size_t n, size_t *out_len) {
  size_t i = 0; /* read position */
  size_t o = 0; /* write position, always <= i */

  while (i < n) {
    uint8_t code = buf[i++];
    size_t k;
    if (code == 0) return false;
    if ((size_t)(code - 1u) > n - i) return false; /* group runs past the end */
    for (k = 1; k < code; k++) {
      uint8_t b = buf[i++];
      if (b == 0) return false;
      buf[o++] = b;
    }
    /* Every group but the last, and but a full one, ends in an implied 0x00. */
    if (code != 0xFFu && i < n) buf[o++] = 0;
  }
  *out_len = o;
  return true;
}
