// The TLS floor the agent sets itself, because Paho C 1.3.12 does not: built
// against OpenSSL >= 1.1 it ignores MQTTAsync_SSLOptions.sslVersion (every
// SSL_CTX is TLS_client_method()) and calls SSL_CTX_set_security_level(ctx, 1)
// on every context it creates (SSLSocket_createContext). Two layers:
//  - install_floor() loads, once per process, an OpenSSL configuration whose
//    ssl_conf system_default says MinProtocol = TLSv1.2 and SECLEVEL 2;
//    SSL_CTX_new applies it to every context created afterwards, Paho's
//    included, and Paho never touches the protocol range.
//  - cipher_floor(), passed as Paho's enabledCipherSuites, ends in
//    "@SECLEVEL=2": Paho applies the cipher list after its own
//    set_security_level(1), which raises the level again (RSA/DH keys of at
//    least 2048 bits, no SHA-1 signatures).
// diagnose() repeats a failed handshake with the same settings plus
// OpenSSL's own host name check, to name why it failed (Paho's exception
// does not: its host name check fails with a bare SSL_FATAL).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "eport/uplink/publisher.h"

namespace eport::uplink::tls {

struct Floor {
  int min_version = 0;     // e.g. TLS1_2_VERSION
  int security_level = 0;  // OpenSSL security level
  std::string text;        // "TLS 1.2+, OpenSSL security level 2", for the log
};

// Idempotent and thread-safe; the first call installs the floor. Stricter
// settings of the system's OpenSSL configuration are kept.
const Floor& install_floor();

// The cipher list handed to Paho: "DEFAULT:@SECLEVEL=<level>".
std::string cipher_floor();

// Why a TLS handshake with uri fails with these options, e.g. "certificate
// verify failed: hostname mismatch", "unsupported protocol", "certificate
// verify failed: EE certificate key too weak"; "" when it cannot tell (no
// TCP connection, or the handshake succeeds).
std::string diagnose(const std::string& uri, const TlsOptions& options, std::chrono::milliseconds timeout);

// The broker refused this gateway's own certificate, if diagnose()'s answer
// says so: the alert's name ("certificate revoked", "certificate expired",
// "unknown ca", ...), else "". A refusal that waiting does not cure: the
// publisher backs off further and says so (mqtt.certificate_refused_retry_s).
std::string certificate_refusal(std::string_view why);

// The notAfter of the first certificate in a PEM file, as Unix seconds; 0
// if the file does not hold a readable certificate.
std::int64_t certificate_not_after(const std::string& pem_file);

}  // namespace eport::uplink::tls
