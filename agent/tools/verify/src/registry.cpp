// The keys eport-verify trusts (docs/evidence.md section 14): the device
// registry after its CA signature checked out (OpenSSL: the certificate's
// public key, ECDSA with SHA-256 over the file's bytes), parsed with the
// project's strict JSON reader; or the agent's evidence keys file through
// the agent's own reader (eport::units::read_evidence_keys).
#include "eport/verify/registry.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "eport/json/reader.h"
#include "eport/units/evidence_check.h"
#include "hex.h"

namespace eport::verify {
namespace {

Result<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Error{"cannot read " + path + ": " + std::strerror(errno)};
  return data;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

bool digits(std::string_view s, std::size_t at, std::size_t n, int* out) {
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace

std::vector<const RegistryKey*> Registry::find(std::string_view kid_hex) const {
  std::vector<const RegistryKey*> out;
  for (const auto& k : keys) {
    if (k.kid == kid_hex) out.push_back(&k);
  }
  return out;
}

Result<std::uint64_t> parse_utc(std::string_view s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' ||
      !digits(s, 0, 4, &y) || !digits(s, 5, 2, &mo) || !digits(s, 8, 2, &d) || !digits(s, 11, 2, &h) ||
      !digits(s, 14, 2, &mi) || !digits(s, 17, 2, &se) || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
      h > 23 || mi > 59 || se > 60)
    return Error{"\"" + std::string(s) + "\" is not a time YYYY-MM-DDTHH:MM:SSZ"};
  std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return static_cast<std::uint64_t>(((days * 24 + h) * 60 + mi) * 60 + se) * 1000u;
}

Status check_registry_signature(std::string_view data, std::string_view signature, std::string_view ca_pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size())));
  std::unique_ptr<X509, X509Free> cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return Error{"the CA certificate is not a PEM X.509 certificate"};
  std::unique_ptr<EVP_PKEY, PkeyFree> key(X509_get_pubkey(cert.get()));
  if (!key || EVP_PKEY_base_id(key.get()) != EVP_PKEY_EC) {
    return Error{"the CA certificate's key is not an EC key (the registry is signed with ECDSA P-256)"};
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  if (!md || EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    return Error{"the registry's signature does not verify with the CA's key"};
  return ok_status();
}

Result<Registry> parse_registry(std::string_view text, std::string_view name) {
  const std::string at = std::string(name) + ": ";
  json::ReaderLimits limits;
  limits.max_bytes = 16u << 20;  // about 50,000 keys
  limits.max_depth = 8;
  auto doc = json::parse(text, limits);
  if (!doc) return Error{at + doc.error()};
  if (!doc->is_object()) return Error{at + "not a JSON object"};
  const json::Value* format = doc->find("format");
  if (format == nullptr || !format->is_string() || format->text() != "eport-evidence-registry-1") {
    return Error{at + "registry format " +
                 (format == nullptr ? std::string("(none)")
                                    : "'" + (format->is_string() ? format->text() : std::string("?")) + "'") +
                 " is not eport-evidence-registry-1"};
  }
  const json::Value* keys = doc->find("keys");
  if (keys == nullptr || !keys->is_array()) return Error{at + "\"keys\" is missing or not an array"};
  Registry reg;
  for (std::size_t i = 0; i < keys->items().size(); ++i) {
    const json::Value& k = keys->items()[i];
    const std::string where = at + "keys[" + std::to_string(i) + "]: ";
    if (!k.is_object()) return Error{where + "not an object"};
    auto str = [&](std::string_view member, std::string* out) -> Status {
      const json::Value* v = k.find(member);
      if (v == nullptr || !v->is_string()) return Error{where + "\"" + std::string(member) + "\" is missing or not a string"};
      *out = v->text();
      return ok_status();
    };
    RegistryKey key;
    std::string pub;
    for (auto [member, out] : {std::pair{"source", &key.source}, {"kid", &key.kid}, {"public_key", &pub},
                               {"status", &key.status}}) {
      if (auto st = str(member, out); !st) return Error{st.error()};
    }
    const json::Value* alg = k.find("alg");
    if (alg == nullptr || !alg->is_number() || (alg->text() != "-8" && alg->text() != "-7")) {
      return Error{where + "\"alg\" is not -8 (EdDSA) or -7 (ES256)"};
    }
    key.alg = alg->text() == "-8" ? -8 : -7;
    auto raw = detail::unhex(pub);
    if (!raw) return Error{where + "\"public_key\" is not hex"};
    key.pub = std::move(*raw);
    if (key.status == "revoked") {
      std::string when;
      if (auto st = str("reason", &key.reason); !st) return Error{st.error()};
      if (auto st = str("revoked_utc", &when); !st) return Error{st.error()};
      auto ms = parse_utc(when);
      if (!ms) return Error{where + "\"revoked_utc\" " + ms.error()};
      key.revoked_ms = *ms;
    }
    reg.keys.push_back(std::move(key));
  }
  return reg;
}

Result<Registry> load_registry(const std::string& registry_path, const std::string& ca_path,
                               const std::string& signature_path) {
  auto data = slurp(registry_path);
  if (!data) return Error{data.error()};
  auto sig = slurp(signature_path.empty() ? registry_path + ".sig" : signature_path);
  if (!sig) return Error{sig.error()};
  auto ca = slurp(ca_path);
  if (!ca) return Error{ca.error()};
  if (auto st = check_registry_signature(*data, *sig, *ca); !st) return Error{st.error()};
  return parse_registry(*data, registry_path);
}

Result<Registry> load_key_file(const std::string& path) {
  auto keys = units::read_evidence_keys(path);
  if (!keys) return Error{keys.error()};
  Registry reg;
  for (const auto& [unit, k] : *keys) {
    RegistryKey key;
    key.source = unit;
    key.kid = detail::hex(k.kid, k.kid_len);
    key.alg = k.alg;
    key.pub.assign(k.pub, k.pub + k.pub_len);
    key.status = "valid";
    reg.keys.push_back(std::move(key));
  }
  return reg;
}

}  // namespace eport::verify
