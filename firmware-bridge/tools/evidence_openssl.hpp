// Reference signer and verifier for the evidence format (docs/evidence.md),
// with OpenSSL 3: the signing callback of epb_ev_make_checkpoint and the
// verify callback of epb_ev_verifier for Ed25519 (EdDSA, COSE alg -8) and
// ES256 (P-256, alg -7), and key generation to PEM files. For eport-sim and
// Linux-class units; a microcontroller plugs its secure element into the
// same callbacks instead. Not linked by eport::epb itself.
#pragma once

#include <epb/evidence.h>

#include <memory>
#include <string>

typedef struct evp_pkey_st EVP_PKEY;

namespace epb_ossl {

struct PkeyFree {
  void operator()(EVP_PKEY *k) const;
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// A new key of alg (EPB_EV_ALG_EDDSA or EPB_EV_ALG_ES256); nullptr on failure.
Pkey generate(int32_t alg);

// PEM files: PKCS#8 private key (written mode 0600) and SubjectPublicKeyInfo.
// Return false and set *err (naming the file) on failure.
[[nodiscard]] bool write_private_pem(const EVP_PKEY *key, const std::string &path,
                                     std::string *err);
[[nodiscard]] bool write_public_pem(const EVP_PKEY *key, const std::string &path,
                                    std::string *err);
Pkey read_private_pem(const std::string &path, std::string *err);
Pkey read_public_pem(const std::string &path, std::string *err);

// An Ed25519 key from its 32-byte seed (RFC 8032): for the spec's examples.
Pkey ed25519_from_seed(const uint8_t seed[32]);

// The COSE alg of a key: EPB_EV_ALG_EDDSA, EPB_EV_ALG_ES256, or 0 for others.
int32_t alg_of(const EVP_PKEY *key);

// The public key as a verifier holds it (raw 32 bytes, or 04||x||y), with
// key id kid (1..EPB_EV_KID_MAX bytes), or with the default key id if kid is
// empty: the first 8 bytes of SHA-256 of the raw public key.
[[nodiscard]] bool public_key(const EVP_PKEY *key, const std::string &kid, epb_ev_key *out);

// A signer for epb_ev_make_checkpoint: ctx is the EVP_PKEY (which must
// outlive it), kid as in public_key.
[[nodiscard]] bool signer(EVP_PKEY *key, const std::string &kid, epb_ev_signer *out);

// The callbacks themselves (ctx: an EVP_PKEY* for sign, unused for verify).
int sign(void *ctx, const uint8_t *tbs, size_t len, uint8_t sig[EPB_EV_SIG_LEN]);
int verify(void *ctx, int32_t alg, const uint8_t *pub, size_t pub_len, const uint8_t *tbs,
           size_t tbs_len, const uint8_t sig[EPB_EV_SIG_LEN]);

}  // namespace epb_ossl
