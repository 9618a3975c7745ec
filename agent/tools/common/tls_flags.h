// TLS options of the command-line tools that talk to a broker (eport-tail,
// eport-cmd), named as the agent's keys: --ca-file (mqtt.ca_file),
// --cert-file (mqtt.cert_file), --key-file (mqtt.key_file). The broker's
// name is always checked against its certificate; an ssl:// or mqtts://
// broker without --ca-file is refused before connecting, with a message
// that says so (Paho itself would only say "Invalid (NULL) parameter").
// Header-only: the two tools share it, nothing else links Paho for it.
#pragma once

#include <mqtt/connect_options.h>
#include <mqtt/ssl_options.h>
#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace eport::tools {

struct TlsFlags {
  std::string ca_file, cert_file, key_file;

  // Takes a TLS flag and its value from args if `flag` is one; false otherwise.
  template <class Args>
  bool take(const std::string& flag, Args& args) {
    if (flag == "--ca-file") args.take(ca_file);
    else if (flag == "--cert-file") args.take(cert_file);
    else if (flag == "--key-file") args.take(key_file);
    else return false;
    return true;
  }

  // Call before the first Paho client exists, when the broker is TLS.
  // OpenSSL then frees its state at exit only if the process ends it; by
  // default its atexit handler also frees the thread-local state of Paho's
  // threads still running, which those threads free again as they end
  // (a double free AddressSanitizer caught in eport-tail at exit).
  static void init_openssl() { OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, nullptr); }

  static bool is_tls_uri(std::string_view uri) {
    return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0;
  }

  // What is wrong with these flags for this broker URI, or "".
  std::string problem(std::string_view uri) const {
    if (cert_file.empty() != key_file.empty()) return "--cert-file and --key-file go together";
    if (is_tls_uri(uri) && ca_file.empty()) {
      return std::string(uri) + " is TLS: give the broker's CA with --ca-file (and --cert-file/--key-file "
                                "for a broker that requires client certificates)";
    }
    if (!is_tls_uri(uri) && (!ca_file.empty() || !cert_file.empty())) {
      return "TLS files given for " + std::string(uri) + ", which is not ssl:// or mqtts://";
    }
    return "";
  }

  // Sets the TLS options on co (nothing for a plain broker).
  void apply(std::string_view uri, mqtt::connect_options& co) const {
    if (!is_tls_uri(uri)) return;
    mqtt::ssl_options ssl;
    ssl.set_trust_store(ca_file);
    if (!cert_file.empty()) {
      ssl.set_key_store(cert_file);
      ssl.set_private_key(key_file);
    }
    ssl.set_enable_server_cert_auth(true);
    ssl.set_verify(true);  // the broker's host name must match its certificate
    co.set_ssl(ssl);
  }
};

}  // namespace eport::tools
