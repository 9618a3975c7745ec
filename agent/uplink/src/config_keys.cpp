// The uplink's config key rows and rules (docs/config.md, [mqtt] to [commands]).
#include "eport/uplink/config_keys.h"

#include <algorithm>

#include "eport/config/config.h"

namespace eport::uplink {

namespace {

bool any_tls(const PublisherOptions& o) {
  return std::any_of(o.server_uris.begin(), o.server_uris.end(), [](const std::string& u) { return config::is_tls_uri(u); });
}

config::Keys<PublisherOptions> build() {
  using O = PublisherOptions;
  using config::FileKind;
  config::Keys<O> k;
  k.add(config::list<O>("mqtt.uri",
                        "Broker URI, or several for failover (the first is preferred): tcp:// or mqtt:// (plain), "
                        "ssl:// or mqtts:// (TLS 1.2+, needs mqtt.ca_file). One string, an array, or (older form) one "
                        "string with the URIs separated by commas.",
                        EPORT_OPTION(O, server_uris), "uris"));
  k.add(config::duration<O>("mqtt.failover_return_s", 10, 86400,
                            "Connected to a broker other than the first: try the first again after this long.",
                            EPORT_OPTION(O, failover_return)));
  k.add(config::string<O>("mqtt.ca_file", "PEM file of the CA(s) that sign the broker's certificate (TLS).",
                          EPORT_OPTION(O, tls.ca_file), {}, FileKind::kCertificate));
  k.add(config::string<O>("mqtt.cert_file",
                          "PEM client certificate for mutual TLS (CN = gateway.id with the broker configs of "
                          "broker-config/). Empty: no client certificate.",
                          EPORT_OPTION(O, tls.cert_file), {}, FileKind::kCertificate));
  k.add(config::string<O>("mqtt.key_file",
                          "PEM private key of mqtt.cert_file (keep it 0600 or 0640 with the agent's group; a key "
                          "others may read is warned about).",
                          EPORT_OPTION(O, tls.key_file), {}, FileKind::kPrivateKey));
  k.add(config::boolean<O>("mqtt.verify_hostname",
                           "Check that the broker's certificate names the host in mqtt.uri. false is refused unless "
                           "mqtt.insecure_skip_verify_hostname = true.",
                           EPORT_OPTION(O, tls.verify_hostname)));
  k.add(config::boolean<O>("mqtt.insecure_skip_verify_hostname",
                           "Allows mqtt.verify_hostname = false: any certificate from mqtt.ca_file's CA, for any host, "
                           "is then accepted as the broker (logged as a warning at every start). Tests and migrations "
                           "only.",
                           EPORT_OPTION(O, insecure_skip_verify_hostname)));
  k.add(config::boolean<O>("mqtt.insecure_password_over_tcp",
                           "Allows mqtt.password_file with a tcp:// or mqtt:// broker that is not loopback "
                           "(127.0.0.0/8, ::1 or localhost): the password then crosses the network in clear.",
                           EPORT_OPTION(O, insecure_password_over_tcp)));
  k.add(config::string<O>("mqtt.username", "MQTT user name (an alternative or addition to a client certificate).",
                          EPORT_OPTION(O, username)));
  k.add(config::string<O>("mqtt.password_file",
                          "File holding the MQTT password (first line, at most 65535 bytes). The password never "
                          "appears in the config, the logs or the config hash. With a tcp:// or mqtt:// broker that is "
                          "not loopback it is refused, see mqtt.insecure_password_over_tcp.",
                          EPORT_OPTION(O, password_file), {}, FileKind::kPassword));
  k.add(config::string<O>("mqtt.client_id", "MQTT client id. Empty: the gateway id.", EPORT_OPTION(O, client_id)));
  k.add(config::enumeration<O>("mqtt.protocol_version", {{"3.1.1", MqttVersion::k3_1_1}, {"5", MqttVersion::k5}},
                               "MQTT version: \"3.1.1\" (every broker) or \"5\" (Mosquitto 2, EMQX, HiveMQ; not "
                               "nats-server or RabbitMQ 3.10): topic aliases, about 40 bytes less per envelope on a "
                               "paid link, and PUBACK reason codes, so an envelope the broker refuses (an ACL) is "
                               "resent and logged instead of counted as delivered (docs/operators.md).",
                               EPORT_OPTION(O, mqtt_version)));
  k.add(config::duration<O>("mqtt.keepalive_s", 5, 3600,
                            "MQTT keep-alive interval. With publishes waiting for their PUBACK, a link that "
                            "acknowledges nothing for this long is declared dead and reconnected; an idle link is "
                            "checked by MQTT PINGs (dead after at most twice this).",
                            EPORT_OPTION(O, keepalive)));
  k.add(config::duration<O>("mqtt.connect_timeout_s", 1, 300, "Give up one connection attempt after this long.",
                            EPORT_OPTION(O, connect_timeout)));
  k.add(config::duration<O>("mqtt.reconnect_min_ms", 10, 600000,
                            "First delay before reconnecting; doubles after each failure.",
                            EPORT_OPTION(O, reconnect_min)));
  k.add(config::duration<O>("mqtt.reconnect_max_ms", 10, 3600000, "Longest delay between reconnection attempts.",
                            EPORT_OPTION(O, reconnect_max)));
  k.add(config::duration<O>("mqtt.certificate_refused_retry_s", 10, 86400,
                            "After the broker refused this gateway's own certificate (revoked, expired, another "
                            "CA; logged as such): wait at least this long before the next attempt.",
                            EPORT_OPTION(O, certificate_refused_retry)));
  k.add(config::integer<O>("mqtt.certificate_warn_days", 0, 3650,
                           "Log a warning at start and daily when mqtt.cert_file expires within this many days "
                           "(the health message always says when it expires); 0: never.",
                           EPORT_OPTION(O, certificate_warn_days)));
  k.add(config::integer<O>("mqtt.max_inflight", 1, 1000,
                           "Envelopes published and not yet acknowledged (PUBACK) at once.",
                           EPORT_OPTION(O, max_inflight)));
  k.add(config::enumeration<O>("publish.compression", {{"none", Compression::kNone}, {"zstd", Compression::kZstd}},
                               "\"zstd\": compress each envelope (subscribers recognise the zstd magic; "
                               "docs/schema.md). \"none\": plain FlatBuffers.",
                               EPORT_OPTION(O, compression)));
  k.add(config::enumeration<O>("publish.envelope_format",
                               {{"v1", codec::EnvelopeFormat::kV1}, {"v2", codec::EnvelopeFormat::kV2}},
                               "\"v2\": envelope v2 (EPT2, docs/schema.md): readings in columns per source, "
                               "zstd with the v2 dictionary, the site and gateway ids only in the topic; about "
                               "half the bytes per reading or less (docs/benchmarks.md); eport-tail and the "
                               "consumer kits read it. \"v1\": envelopes of schema/telemetry.fbs (EPT1), for "
                               "subscribers that read only v1 (decoders before schema 1.5).",
                               EPORT_OPTION(O, envelope_format)));
  k.add(config::integer<O>("publish.zstd_level", 1, 19, "zstd level: higher is smaller and slower.",
                           EPORT_OPTION(O, zstd_level)));
  k.add(config::integer<O>("publish.max_readings", 1, 10000, "Most readings in one envelope.",
                           EPORT_OPTION(O, max_readings)));
  k.add(config::integer<O>("publish.max_bytes", 256, 4194304, "Envelope size goal in bytes of stored readings.",
                           EPORT_OPTION(O, max_bytes)));
  k.add(config::duration<O>("publish.max_age_ms", 0, 600000,
                            "Longest the publisher waits for a fuller envelope once a reading is waiting; longer "
                            "means fewer bytes per reading on a paid link (docs/benchmarks.md). Alarms never wait.",
                            EPORT_OPTION(O, max_age)));
  k.add(config::integer<O>("budget.bytes_per_day", 0, 1ll << 50,
                           "Payload bytes per UTC day; when used up only alarms are sent, the rest waits. 0: no limit.",
                           EPORT_OPTION(O, budget.bytes_per_day)));
  k.add(config::integer<O>("budget.bytes_per_month", 0, 1ll << 50,
                           "Payload bytes per UTC calendar month, same rule. 0: no limit.",
                           EPORT_OPTION(O, budget.bytes_per_month)));
  k.add(config::integer<O>("budget.max_bytes_per_s", 0, 1ll << 40,
                           "Bandwidth cap for everything but alarms, bytes/s. 0: none.",
                           EPORT_OPTION(O, budget.max_bytes_per_s)));
  k.add(config::duration<O>("health.interval_s", 0, 86400,
                            "Publish a health message on eport/v1/<site>/<gateway>/health this often. 0: never.",
                            EPORT_OPTION(O, health_interval)));
  k.add(config::boolean<O>("commands.enabled", "Accept commands on eport/v1/<site>/<gateway>/cmd (replies on .../reply).",
                           EPORT_OPTION(O, commands)));
  k.add(config::duration<O>("commands.max_age_s", 0, 86400,
                            "A command whose issued_utc_ms is older than this, missing, or more than 60 s in the "
                            "future (clocks apart) is refused, not executed. 0: no check.",
                            EPORT_OPTION(O, command_max_age)));

  k.rule({"mqtt.reconnect_min_ms", "mqtt.reconnect_max_ms"},
         "`mqtt.reconnect_min_ms` must not exceed `mqtt.reconnect_max_ms`.", [](const O& o) {
           return config::problem_if(o.reconnect_min > o.reconnect_max, "must not exceed mqtt.reconnect_max_ms");
         });
  k.rule({"mqtt.ca_file", "mqtt.uri"}, "`mqtt.ca_file` is required with an ssl:// or mqtts:// broker.",
         [](const O& o) {
           return config::problem_if(any_tls(o) && o.tls.ca_file.empty(), "required with an ssl:// or mqtts:// broker");
         });
  k.rule({"mqtt.key_file", "mqtt.cert_file"}, "`mqtt.cert_file` and `mqtt.key_file` go together.", [](const O& o) {
    return config::problem_if(o.tls.cert_file.empty() != o.tls.key_file.empty(),
                              "mqtt.cert_file and mqtt.key_file go together");
  });
  k.rule({"mqtt.cert_file", "mqtt.uri"}, "`mqtt.cert_file` needs an ssl:// or mqtts:// broker.", [](const O& o) {
    return config::problem_if(!any_tls(o) && !o.tls.cert_file.empty(),
                              "a client certificate needs an ssl:// or mqtts:// broker");
  });
  k.rule({"mqtt.password_file", "mqtt.username"}, "`mqtt.password_file` needs `mqtt.username`.", [](const O& o) {
    return config::problem_if(!o.password_file.empty() && o.username.empty(), "needs mqtt.username");
  });
  k.rule({"mqtt.uri"}, "A broker host `invalid` or ending in `.invalid` is a placeholder and refused.",
         [](const O& o) {
           std::vector<std::string> p;
           for (const auto& u : o.server_uris) {
             auto host = config::uri_host(u);
             if (host == "invalid" || (host.size() > 8 && host.compare(host.size() - 8, 8, ".invalid") == 0)) {
               p.push_back(u + " is a placeholder (.invalid never resolves): set your broker's host name");
             }
           }
           return p;
         });
  k.rule({"mqtt.verify_hostname", "mqtt.insecure_skip_verify_hostname", "mqtt.uri"},
         "`mqtt.verify_hostname = false` with a TLS broker needs `mqtt.insecure_skip_verify_hostname = true`.",
         [](const O& o) {
           return config::problem_if(any_tls(o) && !o.tls.verify_hostname && !o.insecure_skip_verify_hostname,
                                     "false accepts a certificate issued for any other host as the broker; set "
                                     "mqtt.insecure_skip_verify_hostname = true to allow it");
         });
  k.rule({"mqtt.password_file", "mqtt.insecure_password_over_tcp", "mqtt.uri"},
         "`mqtt.password_file` with a tcp:// or mqtt:// broker that is not loopback needs "
         "`mqtt.insecure_password_over_tcp = true`.",
         [](const O& o) {
           std::vector<std::string> p;
           if (o.password_file.empty() || o.insecure_password_over_tcp) return p;
           for (const auto& u : o.server_uris) {
             if (!config::is_tls_uri(u) && !config::is_loopback_uri(u)) {
               p.push_back("the password would cross the network in clear to " + u +
                           " (not TLS, not loopback): use ssl:// or set mqtt.insecure_password_over_tcp = true");
             }
           }
           return p;
         });
  return k;
}

}  // namespace

const config::Keys<PublisherOptions>& config_keys() {
  static const config::Keys<PublisherOptions> keys = build();
  return keys;
}

}  // namespace eport::uplink
