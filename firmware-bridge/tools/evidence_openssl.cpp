// OpenSSL 3 signing and verifying callbacks for evidence checkpoints (see
// evidence_openssl.hpp). Ed25519 is PureEdDSA over the Sig_structure
// (EVP_DigestSign with no digest); ES256 converts between OpenSSL's DER
// ECDSA signatures and COSE's fixed 64-byte r||s (RFC 9053 section 2.1).
#include "evidence_openssl.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace epb_ossl {

void PkeyFree::operator()(EVP_PKEY *k) const { EVP_PKEY_free(k); }

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX *c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

struct FileClose {
  void operator()(FILE *f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileClose>;

Pkey p256_public(const uint8_t *pub, size_t len) {
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t *>(pub),
                                        len),
      OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY *key = nullptr;
  if (pctx == nullptr || EVP_PKEY_fromdata_init(pctx) != 1 ||
      EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    key = nullptr;
  EVP_PKEY_CTX_free(pctx);
  return Pkey(key);
}

}  // namespace

Pkey generate(int32_t alg) {
  if (alg == EPB_EV_ALG_EDDSA) return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (alg == EPB_EV_ALG_ES256) return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return nullptr;
}

Pkey ed25519_from_seed(const uint8_t seed[32]) {
  return Pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, 32));
}

bool write_private_pem(const EVP_PKEY *key, const std::string &path, std::string *err) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  File f(fd >= 0 ? ::fdopen(fd, "w") : nullptr);
  if (!f) {
    if (fd >= 0) ::close(fd);
    *err = "cannot write " + path;
    return false;
  }
  if (PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    *err = "cannot write the private key to " + path;
    return false;
  }
  return true;
}

bool write_public_pem(const EVP_PKEY *key, const std::string &path, std::string *err) {
  File f(std::fopen(path.c_str(), "w"));
  if (!f || PEM_write_PUBKEY(f.get(), key) != 1) {
    *err = "cannot write the public key to " + path;
    return false;
  }
  return true;
}

Pkey read_private_pem(const std::string &path, std::string *err) {
  File f(std::fopen(path.c_str(), "r"));
  EVP_PKEY *k = f ? PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr) : nullptr;
  if (k == nullptr || alg_of(k) == 0) {
    EVP_PKEY_free(k);
    *err = path + ": not an Ed25519 or P-256 private key in PEM";
    return nullptr;
  }
  return Pkey(k);
}

Pkey read_public_pem(const std::string &path, std::string *err) {
  File f(std::fopen(path.c_str(), "r"));
  EVP_PKEY *k = f ? PEM_read_PUBKEY(f.get(), nullptr, nullptr, nullptr) : nullptr;
  if (k == nullptr || alg_of(k) == 0) {
    EVP_PKEY_free(k);
    *err = path + ": not an Ed25519 or P-256 public key in PEM";
    return nullptr;
  }
  return Pkey(k);
}

int32_t alg_of(const EVP_PKEY *key) {
  if (key == nullptr) return 0;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) return EPB_EV_ALG_EDDSA;
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t n = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &n) == 1 &&
        std::strcmp(group, "prime256v1") == 0)
      return EPB_EV_ALG_ES256;
  }
  return 0;
}

bool public_key(const EVP_PKEY *key, const std::string &kid, epb_ev_key *out) {
  std::memset(out, 0, sizeof *out);
  out->alg = alg_of(key);
  size_t n = sizeof out->pub;
  if (out->alg == EPB_EV_ALG_EDDSA) {
    if (EVP_PKEY_get_raw_public_key(key, out->pub, &n) != 1 || n != 32) return false;
  } else if (out->alg == EPB_EV_ALG_ES256) {
    // Uncompressed is OpenSSL's default point format for generated and read keys.
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out->pub,
                                        sizeof out->pub, &n) != 1 ||
        n != 65 || out->pub[0] != 0x04)
      return false;
  } else {
    return false;
  }
  out->pub_len = static_cast<uint8_t>(n);
  if (kid.empty()) {
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(out->pub, n, digest);
    out->kid_len = 8;
    std::memcpy(out->kid, digest, 8);
  } else {
    if (kid.size() > EPB_EV_KID_MAX) return false;
    out->kid_len = static_cast<uint8_t>(kid.size());
    std::memcpy(out->kid, kid.data(), kid.size());
  }
  return true;
}

bool signer(EVP_PKEY *key, const std::string &kid, epb_ev_signer *out) {
  epb_ev_key pub;
  if (!public_key(key, kid, &pub)) return false;
  std::memset(out, 0, sizeof *out);
  out->alg = pub.alg;
  out->kid_len = pub.kid_len;
  std::memcpy(out->kid, pub.kid, pub.kid_len);
  out->sign = sign;
  out->ctx = key;
  return true;
}

int sign(void *ctx, const uint8_t *tbs, size_t len, uint8_t sig[EPB_EV_SIG_LEN]) {
  auto *key = static_cast<EVP_PKEY *>(ctx);
  int32_t alg = alg_of(key);
  MdCtx md(EVP_MD_CTX_new());
  if (!md || alg == 0) return 0;
  if (alg == EPB_EV_ALG_EDDSA) {
    size_t n = EPB_EV_SIG_LEN;
    return EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, key) == 1 &&
                   EVP_DigestSign(md.get(), sig, &n, tbs, len) == 1 && n == EPB_EV_SIG_LEN
               ? 1
               : 0;
  }
  uint8_t der[80];
  size_t n = sizeof der;
  if (EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(md.get(), der, &n, tbs, len) != 1)
    return 0;
  const uint8_t *p = der;
  ECDSA_SIG *es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(n));
  if (es == nullptr) return 0;
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(es, &r, &s);
  int ok = BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
  ECDSA_SIG_free(es);
  return ok ? 1 : 0;
}

int verify(void *, int32_t alg, const uint8_t *pub, size_t pub_len, const uint8_t *tbs,
           size_t tbs_len, const uint8_t sig[EPB_EV_SIG_LEN]) {
  MdCtx md(EVP_MD_CTX_new());
  if (!md) return 0;
  if (alg == EPB_EV_ALG_EDDSA && pub_len == 32) {
    Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pub, 32));
    return key && EVP_DigestVerifyInit(md.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
                   EVP_DigestVerify(md.get(), sig, EPB_EV_SIG_LEN, tbs, tbs_len) == 1
               ? 1
               : 0;
  }
  if (alg != EPB_EV_ALG_ES256 || pub_len != 65) return 0;
  Pkey key = p256_public(pub, pub_len);
  if (!key) return 0;
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, nullptr), *s = BN_bin2bn(sig + 32, 32, nullptr);
  if (es == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(es, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return 0;
  }
  uint8_t *der = nullptr;
  int n = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (n <= 0) return 0;
  int ok = EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
           EVP_DigestVerify(md.get(), der, static_cast<size_t>(n), tbs, tbs_len) == 1;
  OPENSSL_free(der);
  return ok ? 1 : 0;
}

}  // namespace epb_ossl
