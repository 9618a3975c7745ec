// eport-verify's keys (docs/evidence.md section 14): the device registry,
// trusted only once its ECDSA P-256 signature verifies with the operator CA
// certificate's key, or, for tests and demos, the agent's
// bridge.evidence_keys file (read by the agent's own reader; nothing then
// proves who listed the keys). Plain values; OpenSSL only inside registry.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eport/model/result.h"

namespace eport::verify {

struct RegistryKey {
  std::string source;             // the source id the key signs for
  std::string kid;                // key id, hex as the registry writes it (compared as text)
  std::int32_t alg = 0;           // COSE alg: -8 EdDSA, -7 ES256
  std::vector<std::uint8_t> pub;  // the raw public key (any length here; a wrong one never verifies)
  std::string status;             // "valid", "superseded", "revoked"
  std::string reason;             // revoked: keyCompromise, cessationOfOperation, ...
  std::uint64_t revoked_ms = 0;   // revoked: revoked_utc, ms since the Unix epoch
};

struct Registry {
  std::vector<RegistryKey> keys;  // in the order listed
  // The keys with this kid (hex), in the order listed.
  std::vector<const RegistryKey*> find(std::string_view kid_hex) const;
};

// "YYYY-MM-DDTHH:MM:SSZ" (the registry's times) as ms since the Unix epoch.
[[nodiscard]] Result<std::uint64_t> parse_utc(std::string_view text);

// Checks that signature (DER ECDSA, as `openssl dgst -sha256 -sign` writes
// it) is the CA key's over data; ca_pem is the CA certificate. The error
// says "the registry's signature does not verify with the CA's key" or why
// the certificate is unusable.
[[nodiscard]] Status check_registry_signature(std::string_view data, std::string_view signature,
                                              std::string_view ca_pem);

// The keys of a registry text whose signature was checked. Errors name the
// member: "registry.json: keys[2]: \"alg\" is not an integer".
[[nodiscard]] Result<Registry> parse_registry(std::string_view text, std::string_view name);

// Reads registry_path, its signature (signature_path, or registry_path +
// ".sig") and the CA certificate, checks the signature, then parses.
[[nodiscard]] Result<Registry> load_registry(const std::string& registry_path, const std::string& ca_path,
                                             const std::string& signature_path = {});

// The agent's bridge.evidence_keys file ("UNIT_ID ALG KID_HEX PUBKEY_HEX"
// lines), every key valid.
[[nodiscard]] Result<Registry> load_key_file(const std::string& path);

}  // namespace eport::verify
