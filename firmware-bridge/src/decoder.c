/* Incremental stream decoder: collects COBS bytes up to each 0x00 delimiter,
 * decodes the frame, and resynchronises after oversized frames and garbage by
 * skipping to the next 0x00. Also the status and NACK-reason names. */
#include <string.h>

#include "epb_internal.h"

/* Longest COBS frame without its delimiter: EPB_MAX_BODY + 1 code byte. Any
 * longer frame could only decode to a body above EPB_MAX_BODY. */
#define FRAME_MAX (EPB_MAX_ENCODED - 1u)

void epb_decoder_init(epb_decoder *d) { memset(d, 0, sizeof *d); }

static epb_status decode_frame(epb_decoder *d, epb_message *out) {
  size_t body_len = 0;
  if (!epbi_cobs_decode_inplace(d->buf, d->len, &body_len)) {
    memset(out, 0, sizeof *out);
    return EPB_ERR_COBS;
  }
  {
    epb_status st = epb_decode_body_auth(d->buf, body_len, out, d->auth);
    if (st == EPB_ERR_VERSION) d->last_version = d->buf[0];
    return st;
  }
}

size_t epb_decoder_feed(epb_decoder *d, const uint8_t *data, size_t len,
                        epb_message *out, epb_status *status) {
  size_t i;
  for (i = 0; i < len; i++) {
    uint8_t b = data[i];
    if (d->discarding) {
      /* The oversized frame was already reported; its 0x00 ends it. */
      if (b == 0) d->discarding = 0;
      continue;
    }
    if (b == 0) {
      epb_status st;
      if (d->len == 0) continue; /* empty frame: a sender's resync 0x00 */
      st = decode_frame(d, out);
      d->len = 0;
      d->counts[st]++;
      *status = st;
      return i + 1u;
    }
    if (d->len >= FRAME_MAX) {
      /* Report at once (a stream without 0x00 would otherwise stay silent)
       * and drop the rest of this frame up to its delimiter. */
      d->len = 0;
      d->discarding = 1;
      memset(out, 0, sizeof *out);
      d->counts[EPB_ERR_OVERSIZE]++;
      *status = EPB_ERR_OVERSIZE;
      return i + 1u;
    }
    d->buf[d->len++] = b;
  }
  d->counts[EPB_NEED_MORE]++;
  *status = EPB_NEED_MORE;
  return len;
}

const char *epb_status_name(epb_status s) {
  switch (s) {
    case EPB_OK: return "ok";
    case EPB_NEED_MORE: return "need more";
    case EPB_ERR_OVERSIZE: return "oversized frame";
    case EPB_ERR_COBS: return "bad cobs";
    case EPB_ERR_TRUNCATED: return "truncated";
    case EPB_ERR_CRC: return "bad crc";
    case EPB_ERR_VERSION: return "unknown version";
    case EPB_ERR_TYPE: return "unknown type";
    case EPB_ERR_PAYLOAD: return "bad payload";
    case EPB_ERR_AUTH: return "not authentic";
  }
  return "unknown status";
}

const char *epb_nack_reason_name(uint8_t reason) {
  switch (reason) {
    case EPB_NACK_MALFORMED: return "malformed";
    case EPB_NACK_NO_HELLO: return "no hello";
    case EPB_NACK_STORE_FULL: return "store full";
    case EPB_NACK_WINDOW: return "window exceeded";
    case EPB_NACK_OUT_OF_ORDER: return "out of order";
    case EPB_NACK_INTERNAL: return "internal error";
    case EPB_NACK_UNIT_ID: return "unit id refused";
    case EPB_NACK_CONTAINER_ID: return "container id refused";
    case EPB_NACK_SEQ_RANGE: return "seq out of range";
    case EPB_NACK_AUTH: return "authentication failed";
    default: return "unknown reason";
  }
}
