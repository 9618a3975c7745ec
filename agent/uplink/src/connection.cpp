// The uplink's MQTT connection over Paho MQTT C++: connect options (TLS,
// will, one broker per attempt), publishes, disconnects. Every Paho header
// and every catch of mqtt::exception in the uplink is in this file.
#include "connection.h"

#include <mqtt/async_client.h>

#include <algorithm>
#include <cstdint>

#include "tls.h"
#include "eport/log/log.h"

namespace eport::uplink {

namespace {
constexpr std::string_view kLog = "uplink";

// Publishes besides data envelopes that may wait in Paho's queue at once:
// the health message, the status, command replies.
constexpr std::size_t kOtherPublishesQueued = 64;

bool has_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
}  // namespace

bool is_tls_uri(std::string_view uri) { return has_prefix(uri, "ssl://") || has_prefix(uri, "mqtts://"); }

// Paho C accepts tcp:// and ssl://; mqtt:// and mqtts:// are the same.
std::string paho_uri(const std::string& uri) {
  if (has_prefix(uri, "mqtt://")) return "tcp://" + uri.substr(7);
  if (has_prefix(uri, "mqtts://")) return "ssl://" + uri.substr(8);
  return uri;
}

// Paho's callbacks, forwarded to the publisher's events (which only record
// and wake), and the client.
struct Connection::Paho : public mqtt::callback, public mqtt::iaction_listener {
  ConnectionEvents& events;
  std::unique_ptr<mqtt::async_client> client;

  explicit Paho(ConnectionEvents& e) : events(e) {}

  void connection_lost(const std::string& cause) override { events.connection_lost(cause); }
  // Completion of one publish, through the token's own action listener.
  // (Not callback::delivery_complete: Paho 1.2 looks that token up by message
  // id, which races with a fast PUBACK on loopback and then never fires.)
  void on_success(const mqtt::token& tok) override { events.delivered(&tok); }
  // The connection went, or (MQTT 5) the PUBACK carried an error reason code.
  void on_failure(const mqtt::token& tok) override {
    std::size_t bytes = 0;
    if (const auto* d = dynamic_cast<const mqtt::delivery_token*>(&tok); d != nullptr && d->get_message()) {
      bytes = d->get_message()->get_payload_ref().size();
    }
    events.delivery_failed(&tok, static_cast<int>(tok.get_reason_code()), bytes);
  }
  void message_arrived(mqtt::const_message_ptr msg) override {
    const auto& p = msg->get_payload_ref();
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(p.data());
    events.message(msg->get_topic(), std::vector<std::uint8_t>(bytes, bytes + p.size()), msg->is_retained());
  }
};

namespace {

int paho_version(MqttVersion v) { return v == MqttVersion::k5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1; }

// Options for one connect attempt to exactly one broker, always the one MQTT
// version of mqtt.protocol_version (3.1.1 or 5).
//
// Both restrictions work around paho.mqtt.c #1187 (open in 1.3.12): when a
// connection made from a server list, or with MQTTVERSION_DEFAULT (the C++
// default), is lost, Paho queues a CONNECT of its own (to the next URI, or
// "falling back" to MQTT 3.1) even with automatic reconnect off, and calls
// connection_lost as well. Our reconnect then calls MQTTAsync_connect, which
// frees and re-copies the client's serverURIs without a lock while Paho's
// send thread connects with that stale command and reads the freed URI
// (ASan: heap-use-after-free in strrchr, MQTTProtocol_addressPort). With one
// URI and a fixed version Paho never connects on its own, so a connect
// token that has completed means no connect attempt is left inside Paho.
mqtt::connect_options connect_options(const PublisherOptions& opt, const std::string& status_topic,
                                      const std::string& will_json, const std::string& uri) {
  mqtt::will_options will(status_topic, will_json, 1, true);
  mqtt::connect_options co;
  co.set_mqtt_version(paho_version(opt.mqtt_version));  // as the client was created; no fallback (see above)
  // The outbox, not the broker session, is what survives: a clean session
  // (MQTT 5: clean start, and the session expiry interval stays 0, so the
  // broker forgets it at disconnect), and everything unacknowledged is
  // published again after a reconnect.
  if (opt.mqtt_version == MqttVersion::k5) {
    co.set_clean_start(true);
  } else {
    co.set_clean_session(true);
  }
  co.set_keep_alive_interval(opt.keepalive);
  co.set_connect_timeout(opt.connect_timeout);
  co.set_automatic_reconnect(false);
  co.set_will(will);
  co.set_max_inflight(static_cast<int>(opt.max_inflight) + 4);
  co.set_servers(std::make_shared<mqtt::string_collection>(paho_uri(uri)));
  if (!opt.username.empty()) {
    co.set_user_name(opt.username);
    co.set_password(opt.password);
  }
  // As when Paho got the whole list: TLS options whenever any broker is TLS.
  bool any_tls = false;
  for (const auto& u : opt.server_uris) any_tls |= is_tls_uri(u);
  if (any_tls) {
    mqtt::ssl_options ssl;
    ssl.set_trust_store(opt.tls.ca_file);
    if (!opt.tls.cert_file.empty()) ssl.set_key_store(opt.tls.cert_file);
    if (!opt.tls.key_file.empty()) ssl.set_private_key(opt.tls.key_file);
    ssl.set_enable_server_cert_auth(true);
    ssl.set_verify(opt.tls.verify_hostname);
    // Ignored by Paho 1.3.12 with OpenSSL >= 1.1: tls::install_floor() sets the minimum version.
    ssl.set_ssl_version(MQTT_SSL_VERSION_TLS_1_2);
    // Applied after Paho's SSL_CTX_set_security_level(ctx, 1): raises it again (tls.h).
    ssl.set_enabled_cipher_suites(tls::cipher_floor());
    ssl.set_error_handler([](const std::string& msg) { log::error(kLog, "TLS: " + msg); });
    co.set_ssl(std::move(ssl));
  }
  return co;
}

}  // namespace

Connection::Connection(const PublisherOptions& options, std::string status_topic, std::string will_json,
                       std::string cmd_topic, ConnectionEvents& events)
    : opt_(options),
      status_topic_(std::move(status_topic)),
      will_json_(std::move(will_json)),
      cmd_topic_(std::move(cmd_topic)),
      paho_(std::make_unique<Paho>(events)) {
  // The TLS floor goes in before Paho creates any SSL_CTX (tls.h).
  bool any_tls = false;
  for (const auto& u : opt_.server_uris) any_tls |= is_tls_uri(u);
  if (any_tls) log::info(kLog, "TLS floor: " + tls::install_floor().text);
  // No Paho file persistence and no offline buffer: the outbox is the only
  // durable copy, and nothing is handed to Paho while disconnected. Paho
  // refuses a publish once maxBufferedMessages (100 by default) are queued
  // and not yet sent, also while connected: a take split for a broker's
  // small message size limit hands over up to one envelope per reading at
  // once (publisher.cpp, publish_part), beyond the in-flight window, and
  // health, status and command replies come on top.
  mqtt::create_options create(paho_version(opt_.mqtt_version));
  create.set_max_buffered_messages(static_cast<int>(opt_.max_inflight + opt_.max_readings + kOtherPublishesQueued));
  paho_->client = std::make_unique<mqtt::async_client>(paho_uri(opt_.server_uris.front()), opt_.client_id, create);
  paho_->client->set_callback(*paho_);
}

Connection::~Connection() = default;

Connection::Attempt Connection::connect_to(const std::string& uri, const std::function<std::string()>& birth,
                                           std::string& error) {
  auto& client = paho_->client;
  bool connected = false;
  certificate_refused_.clear();
  // Topic aliases live as long as one network connection (MQTT 5, 3.3.2.3.4).
  topic_aliases_.clear();
  topic_alias_maximum_ = 0;
  maximum_packet_size_ = 0;
  try {
    auto tok = client->connect(connect_options(opt_, status_topic_, will_json_, uri));
    tok->wait();
    connected = true;
    const auto connack = tok->get_connect_response();
    connected_uri_ = connack.get_server_uri();
    // MQTT 5: how many topic aliases the broker accepts from us (CONNACK
    // property 0x22; absent means none).
    if (opt_.mqtt_version == MqttVersion::k5 &&
        connack.get_properties().contains(mqtt::property::TOPIC_ALIAS_MAXIMUM)) {
      topic_alias_maximum_ = mqtt::get<std::uint16_t>(connack.get_properties(), mqtt::property::TOPIC_ALIAS_MAXIMUM);
    }
    // MQTT 5: the largest packet the broker accepts (CONNACK property 0x27,
    // e.g. mosquitto's max_packet_size; absent means no limit but the protocol's).
    if (opt_.mqtt_version == MqttVersion::k5 &&
        connack.get_properties().contains(mqtt::property::MAXIMUM_PACKET_SIZE)) {
      maximum_packet_size_ = mqtt::get<std::uint32_t>(connack.get_properties(), mqtt::property::MAXIMUM_PACKET_SIZE);
    }
    client->publish(status_topic_, birth(), 1, true);
    if (opt_.commands) {
      // A broker may refuse the subscription (SUBACK 0x80: an ACL, or a
      // clustered broker whose JetStream has no leader yet, docs/cluster.md).
      // Connected without it, no command would ever arrive: the attempt
      // fails and the publisher's backoff tries again.
      auto sub = client->subscribe(cmd_topic_, 1);
      if (!sub->wait_for(opt_.connect_timeout)) {
        throw mqtt::exception(MQTTASYNC_FAILURE, "no SUBACK for " + cmd_topic_ + " within mqtt.connect_timeout_s");
      }
      const auto response = sub->get_subscribe_response();
      const auto& granted = response.get_reason_codes();
      if (granted.empty() || static_cast<int>(granted.front()) >= 0x80) {
        throw mqtt::exception(MQTTASYNC_FAILURE, "the broker refused the subscription to " + cmd_topic_);
      }
    }
    return Attempt::kConnected;
  } catch (const mqtt::exception& e) {
    error = e.what();
    if (!connected && is_tls_uri(uri)) {
      // Paho does not say why a handshake failed (a host name mismatch is a
      // bare SSL_FATAL): repeat it with the same settings to name the reason.
      auto why = tls::diagnose(uri, opt_.tls,
                               std::min<std::chrono::milliseconds>(opt_.connect_timeout, std::chrono::seconds(5)));
      if (!why.empty()) {
        certificate_refused_ = tls::certificate_refusal(why);
        if (certificate_refused_.empty()) log::warn(kLog, "TLS handshake with " + uri + " refused: " + why);
        error += " (TLS: " + why + ")";
      }
    }
    try {
      if (client->is_connected()) client->disconnect()->wait_for(std::chrono::seconds(1));
    } catch (const mqtt::exception&) {
    }
    return connected ? Attempt::kFailedAfterConnect : Attempt::kFailed;
  }
}

std::size_t Connection::payload_limit(const std::string& topic) const {
  if (maximum_packet_size_ == 0) return SIZE_MAX;
  // A QoS 1 PUBLISH (MQTT 5, 3.3): 1 byte of type and flags, a remaining
  // length of up to 4 bytes, the topic (2 + its bytes), the packet id (2),
  // the property length (1) and a topic alias property (3), then the payload.
  const std::size_t framing = 1 + 4 + 2 + topic.size() + 2 + 1 + 3;
  return maximum_packet_size_ > framing ? maximum_packet_size_ - framing : 0;
}

Result<Delivery> Connection::publish_data(const std::string& topic, std::span<const std::uint8_t> bytes) {
  try {
    // MQTT 5 topic alias (docs/operators.md, MQTT version): the first publish
    // on a topic in this connection names it and sets its alias, every later
    // one sends the alias and an empty topic. Paho sends publishes in the
    // order they are handed over, and a lost connection fails the rest
    // (clean session), so the broker always learns an alias before its use.
    std::uint16_t alias = 0;
    bool alias_known = false;
    if (topic_alias_maximum_ > 0) {
      if (auto it = topic_aliases_.find(topic); it != topic_aliases_.end()) {
        alias = it->second;
        alias_known = true;
      } else if (topic_aliases_.size() < topic_alias_maximum_) {
        alias = static_cast<std::uint16_t>(topic_aliases_.size() + 1);
      }
    }
    auto msg = mqtt::make_message(alias_known ? std::string() : topic, bytes.data(), bytes.size(), 1, false);
    if (alias != 0) {
      mqtt::properties props;
      props.add(mqtt::property(mqtt::property::TOPIC_ALIAS, alias));
      msg->set_properties(props);
    }
    mqtt::delivery_token_ptr tok = paho_->client->publish(msg, nullptr, *paho_);
    if (alias != 0 && !alias_known) topic_aliases_.emplace(topic, alias);
    // The key as on_success() sees it: the token base of the delivery token.
    return Delivery{static_cast<const mqtt::token*>(tok.get()), tok};
  } catch (const mqtt::exception& e) {
    return Error{e.what()};
  }
}

Status Connection::publish_json(const std::string& topic, const std::string& json, bool retained) {
  try {
    paho_->client->publish(topic, json, 1, retained);
    return ok_status();
  } catch (const mqtt::exception& e) {
    return Error{e.what()};
  }
}

void Connection::abort() {
  try {
    paho_->client->disconnect(0)->wait_for(std::chrono::milliseconds(100));
  } catch (const mqtt::exception&) {
  }
}

void Connection::disconnect(std::chrono::milliseconds timeout) {
  try {
    paho_->client->disconnect()->wait_for(timeout);
  } catch (const mqtt::exception&) {
  }
}

Status Connection::close(const std::string& offline_json) {
  try {
    paho_->client->publish(status_topic_, offline_json, 1, true)->wait_for(std::chrono::seconds(2));
    paho_->client->disconnect()->wait_for(std::chrono::seconds(2));
    return ok_status();
  } catch (const mqtt::exception& e) {
    return Error{e.what()};
  }
}

}  // namespace eport::uplink
