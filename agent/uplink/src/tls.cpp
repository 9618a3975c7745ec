// TLS floor and handshake diagnosis: see tls.h.
#include "tls.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace eport::uplink::tls {

namespace {

constexpr int kMinVersion = TLS1_2_VERSION;
constexpr int kMinSecurityLevel = 2;

std::string version_name(int v) {
  switch (v) {
    case TLS1_2_VERSION: return "TLS 1.2";
    case TLS1_3_VERSION: return "TLS 1.3";
    default: return "TLS version 0x" + std::to_string(v);
  }
}

Floor make_floor() {
  Floor f;
  // The system configuration first (what Paho would get), to keep anything
  // stricter that it sets.
  OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr);
  int sys_min = 0, sys_level = 0;
  if (SSL_CTX* probe = SSL_CTX_new(TLS_client_method())) {
    sys_min = static_cast<int>(SSL_CTX_get_min_proto_version(probe));
    sys_level = SSL_CTX_get_security_level(probe);
    SSL_CTX_free(probe);
  }
  f.min_version = std::max(kMinVersion, sys_min);
  f.security_level = std::max(kMinSecurityLevel, sys_level);
  std::string conf = "eport_agent_conf = eport_init\n[eport_init]\nssl_conf = eport_ssl\n[eport_ssl]\n"
                     "system_default = eport_system_default\n[eport_system_default]\nMinProtocol = " +
                     std::string(f.min_version >= TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2") +
                     "\nCipherString = DEFAULT:@SECLEVEL=" + std::to_string(f.security_level) + "\n";
  bool loaded = false;
  if (BIO* bio = BIO_new_mem_buf(conf.data(), static_cast<int>(conf.size()))) {
    if (CONF* c = NCONF_new(nullptr)) {
      long line = 0;
      loaded = NCONF_load_bio(c, bio, &line) > 0 && CONF_modules_load(c, "eport_agent_conf", 0) > 0;
      NCONF_free(c);
    }
    BIO_free(bio);
  }
  // Verify what a new context now gets; the text says what holds.
  int got_min = 0;
  if (SSL_CTX* check = SSL_CTX_new(TLS_client_method())) {
    got_min = static_cast<int>(SSL_CTX_get_min_proto_version(check));
    SSL_CTX_free(check);
  }
  ERR_clear_error();
  f.text = version_name(f.min_version) + "+, OpenSSL security level " + std::to_string(f.security_level);
  if (!loaded || got_min < f.min_version) {
    f.text += " NOT INSTALLED for the protocol version (OpenSSL configuration not applied; minimum is " +
              version_name(got_min) + ")";
  }
  return f;
}

bool is_ip(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

std::string last_ssl_error() {
  unsigned long e = ERR_peek_last_error();
  std::string out;
  if (e != 0) {
    const char* r = ERR_reason_error_string(e);
    out = r != nullptr ? r : "OpenSSL error " + std::to_string(e);
  }
  ERR_clear_error();
  return out;
}

}  // namespace

const Floor& install_floor() {
  static const Floor floor = make_floor();
  return floor;
}

std::string cipher_floor() { return "DEFAULT:@SECLEVEL=" + std::to_string(install_floor().security_level); }

std::string diagnose(const std::string& uri, const TlsOptions& o, std::chrono::milliseconds timeout) {
  const Floor& floor = install_floor();
  auto sep = uri.find("://");
  auto colon = uri.rfind(':');
  if (sep == std::string::npos || colon == std::string::npos || colon < sep + 3) return "";
  std::string host = uri.substr(sep + 3, colon - sep - 3);
  std::string port = uri.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) return "";
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  bool connected = fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
                   ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 &&
                   ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  ::freeaddrinfo(res);
  if (!connected) {
    if (fd >= 0) ::close(fd);
    return "";
  }

  std::string why;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = nullptr;
  if (ctx == nullptr) {
    why = "cannot create a TLS context: " + last_ssl_error();
    goto done;
  }
  SSL_CTX_set_min_proto_version(ctx, floor.min_version);
  SSL_CTX_set_security_level(ctx, floor.security_level);
  if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1) {
    why = "cannot load mqtt.ca_file " + o.ca_file + ": " + last_ssl_error();
    goto done;
  }
  if (!o.cert_file.empty() && (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1 ||
                               SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
    why = "cannot load the client certificate or key: " + last_ssl_error();
    goto done;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  ssl = SSL_new(ctx);
  if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
    why = "cannot create a TLS session: " + last_ssl_error();
    goto done;
  }
  if (!is_ip(host)) {
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str()));
  }
  if (o.verify_hostname) {
    if (is_ip(host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    } else {
      SSL_set1_host(ssl, host.c_str());
    }
  }
  ERR_clear_error();
  if (SSL_connect(ssl) == 1) {
    // With TLS 1.3 the broker checks our certificate after our Finished:
    // its refusal is an alert on the first read. A broker that accepted
    // sends nothing before our MQTT CONNECT, so the read times out.
    timeval short_wait{0, 500000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof short_wait);
    char byte = 0;
    ERR_clear_error();
    int n = SSL_read(ssl, &byte, 1);
    std::string alert = n <= 0 && SSL_get_error(ssl, n) == SSL_ERROR_SSL ? last_ssl_error() : std::string();
    why = alert.empty() ? "" : alert;
    if (alert.empty()) SSL_shutdown(ssl);
  } else {
    long vr = SSL_get_verify_result(ssl);
    std::string err = last_ssl_error();
    if (vr != X509_V_OK) {
      why = "certificate verify failed: " + std::string(X509_verify_cert_error_string(vr));
    } else if (!err.empty()) {
      why = err;
    } else {
      why = "the broker closed the connection during the TLS handshake";
    }
  }
done:
  if (ssl != nullptr) SSL_free(ssl);
  if (ctx != nullptr) SSL_CTX_free(ctx);
  ::close(fd);
  return why;
}

std::int64_t certificate_not_after(const std::string& pem_file) {
  std::FILE* f = std::fopen(pem_file.c_str(), "r");
  if (f == nullptr) return 0;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return 0;
  std::int64_t out = 0;
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) out = static_cast<std::int64_t>(timegm(&tm));
  X509_free(cert);
  return out;
}

std::string certificate_refusal(std::string_view why) {
  // OpenSSL's names of the alerts a server sends when it refuses the
  // client's certificate (RFC 8446 6.2).
  static constexpr std::string_view kRefusals[] = {
      "certificate revoked", "certificate expired", "bad certificate", "unknown ca", "certificate unknown",
      "certificate required", "unsupported certificate", "access denied"};
  for (auto r : kRefusals) {
    if (why.find(std::string("alert ") + std::string(r)) != std::string_view::npos) return std::string(r);
  }
  return "";
}

}  // namespace eport::uplink::tls
