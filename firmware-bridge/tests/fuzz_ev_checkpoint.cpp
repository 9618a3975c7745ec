// libFuzzer target for the evidence checkpoint parser and verifier
// (docs/evidence.md sections 5 and 7): arbitrary bytes must never crash
// them; whatever parses must re-encode to the very same bytes (only the
// encoder's deterministic CBOR is accepted) and its Sig_structure must
// encode; a verifier fed the input as a checkpoint (with a verify callback
// that accepts every signature, to reach the chain checks) and as a reading
// must return a known status and keep its state consistent.
#include <epb/evidence.h>

#include <cstdlib>
#include <cstring>

namespace {
int accept_all(void *, int32_t, const uint8_t *, size_t, const uint8_t *, size_t,
               const uint8_t *) {
  return 1;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  epb_ev_checkpoint ck;
  epb_ev_status st = epb_ev_parse(data, size, &ck);
  if (st == EPB_EV_OK) {
    uint8_t again[EPB_EV_CHECKPOINT_MAX];
    size_t n = epb_ev_encode_cose(&ck, again, sizeof again);
    if (n != size || std::memcmp(again, data, size) != 0) std::abort();
    uint8_t tbs[EPB_EV_TBS_MAX];
    if (epb_ev_encode_tbs(&ck, tbs, sizeof tbs) == 0) std::abort();
  } else if (st < EPB_EV_ERR_TOO_LARGE || st > EPB_EV_ERR_PAYLOAD) {
    std::abort();  // the parser has only its own reasons
  }
  epb_ev_key key;
  std::memset(&key, 0, sizeof key);
  key.alg = st == EPB_EV_OK ? ck.alg : EPB_EV_ALG_EDDSA;
  key.kid_len = st == EPB_EV_OK ? ck.kid_len : 1;
  std::memcpy(key.kid, ck.kid, sizeof key.kid);
  key.pub_len = key.alg == EPB_EV_ALG_EDDSA ? 32 : 65;
  key.pub[0] = 0x04;
  const char *src = st == EPB_EV_OK ? ck.src : "TU-0042";
  epb_ev_verifier v;
  if (epb_ev_verifier_init(&v, src, static_cast<uint8_t>(std::strlen(src)), &key, accept_all,
                           nullptr) != EPB_EV_OK)
    std::abort();
  for (int round = 0; round < 2; round++) {
    epb_ev_status r = epb_ev_verifier_reading(&v, data, size);
    epb_ev_status c = epb_ev_verifier_checkpoint(&v, data, size, nullptr);
    if (r >= EPB_EV_STATUS_COUNT || c >= EPB_EV_STATUS_COUNT) std::abort();
    if (round == 1 && st == EPB_EV_OK && c != EPB_EV_DUPLICATE && c != EPB_EV_ERR_REPLAY &&
        c != EPB_EV_ERR_KID)
      std::abort();  // the same checkpoint twice is never new again
  }
  return 0;
}
