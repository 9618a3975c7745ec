/* Unit authentication (docs/firmware-bridge.md section 13): the session key
 * from a unit's key and both nonces, AUTH's proof over the HELLO, and the
 * tag of sealed frames. Linked only by code that authenticates: the codec
 * reaches the tag through epb_auth.tag, never by name. */
#include <string.h>

#include "epb_internal.h"

static const uint8_t SESSION_LABEL[] = {'e', 'p', 'b', '-', 's', 'e', 's', 's', 'i', 'o', 'n'};
static const uint8_t PROOF_LABEL[] = {'e', 'p', 'b', '-', 'p', 'r', 'o', 'o', 'f'};

void epb_auth_session_key(const uint8_t key[EPB_KEY_LEN], const char *unit_id,
                          uint8_t unit_id_len,
                          const uint8_t agent_nonce[EPB_NONCE_LEN],
                          const uint8_t unit_nonce[EPB_NONCE_LEN],
                          uint8_t session_key[EPB_SHA256_LEN]) {
  epb_hmac_ctx m;
  epb_hmac_init(&m, key, EPB_KEY_LEN);
  epb_hmac_update(&m, SESSION_LABEL, sizeof SESSION_LABEL);
  epb_hmac_update(&m, &unit_id_len, 1);
  epb_hmac_update(&m, (const uint8_t *)unit_id, unit_id_len);
  epb_hmac_update(&m, agent_nonce, EPB_NONCE_LEN);
  epb_hmac_update(&m, unit_nonce, EPB_NONCE_LEN);
  epb_hmac_final(&m, session_key);
}

int epb_auth_proof(const uint8_t session_key[EPB_SHA256_LEN],
                   const epb_message *hello, uint8_t proof[EPB_PROOF_LEN]) {
  uint8_t payload[EPB_MAX_BODY];
  uint8_t mac[EPB_SHA256_LEN];
  epb_hmac_ctx m;
  size_t n;
  if (hello == NULL || hello->type != EPB_MSG_HELLO) return 0;
  n = epbi_encode_payload(hello, payload, sizeof payload);
  if (n == 0) return 0;
  epb_hmac_init(&m, session_key, EPB_SHA256_LEN);
  epb_hmac_update(&m, PROOF_LABEL, sizeof PROOF_LABEL);
  epb_hmac_update(&m, payload, n);
  epb_hmac_final(&m, mac);
  memcpy(proof, mac, EPB_PROOF_LEN);
  memset(mac, 0, sizeof mac);
  return 1;
}

static void seal_tag(const uint8_t session_key[EPB_SHA256_LEN], uint8_t dir,
                     const uint8_t *data, size_t len, uint8_t out[EPB_TAG_LEN]) {
  uint8_t mac[EPB_SHA256_LEN];
  epb_hmac_ctx m;
  epb_hmac_init(&m, session_key, EPB_SHA256_LEN);
  epb_hmac_update(&m, &dir, 1);
  epb_hmac_update(&m, data, len);
  epb_hmac_final(&m, mac);
  memcpy(out, mac, EPB_TAG_LEN);
  memset(mac, 0, sizeof mac);
}

void epb_auth_start(epb_auth *auth, const uint8_t session_key[EPB_SHA256_LEN],
                    int as_unit) {
  memset(auth, 0, sizeof *auth);
  memcpy(auth->session_key, session_key, EPB_SHA256_LEN);
  auth->send_dir = as_unit ? EPB_DIR_UNIT_TO_AGENT : EPB_DIR_AGENT_TO_UNIT;
  auth->recv_dir = as_unit ? EPB_DIR_AGENT_TO_UNIT : EPB_DIR_UNIT_TO_AGENT;
  auth->tag = seal_tag;
  auth->active = 1;
}

void epb_auth_clear(epb_auth *auth) { memset(auth, 0, sizeof *auth); }
