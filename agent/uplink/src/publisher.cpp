// Publisher thread: connect (TLS, failover, backoff), batch from the outbox,
// publish QoS 1, ack rows on PUBACK, health, budget, commands. Paho's
// callbacks only queue events for this thread.
#include "eport/uplink/publisher.h"

#include <mqtt/async_client.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "budget.h"
#include "tls.h"
#include "eport/codec/codec.h"
#include "eport/codec/topics.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"

namespace eport::uplink {

namespace {
constexpr std::string_view kLog = "uplink";

using model::now_utc_ms;

bool has_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool is_tls_uri(std::string_view uri) { return has_prefix(uri, "ssl://") || has_prefix(uri, "mqtts://"); }

// Paho C accepts tcp:// and ssl://; mqtt:// and mqtts:// are the same.
std::string paho_uri(const std::string& uri) {
  if (has_prefix(uri, "mqtt://")) return "tcp://" + uri.substr(7);
  if (has_prefix(uri, "mqtts://")) return "ssl://" + uri.substr(8);
  return uri;
}

std::uint64_t rss_kib() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
}
}  // namespace

bool is_broker_uri(std::string_view uri) {
  for (std::string_view scheme : {"tcp://", "mqtt://", "ssl://", "mqtts://"}) {
    if (!has_prefix(uri, scheme)) continue;
    auto hp = uri.substr(scheme.size());
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    auto port = hp.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    long v = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    return v >= 1 && v <= 65535;
  }
  return false;
}

struct Publisher::Impl : public mqtt::callback, public mqtt::iaction_listener {
  PublisherOptions opt;
  store::Outbox& outbox;
  CommandHandler* handler;
  std::function<std::string()> health_extra;
  PublisherStats stats;
  std::unique_ptr<mqtt::async_client> client;
  std::thread thread;
  std::string status_topic, cmd_topic, reply_topic, health_topic;

  std::mutex mu;  // guards the fields below; never held while calling Paho
  std::condition_variable cv;
  bool running = false;
  bool stopping = false;
  bool kicked = false;
  bool flush_requested = false;
  bool lost = false;
  std::vector<mqtt::token*> completed;
  struct Incoming {
    std::string topic;
    std::vector<std::uint8_t> payload;
    bool retained = false;  // delivered from the broker's retained store
  };
  std::deque<Incoming> commands;

  // Publisher-thread state.
  struct Inflight {
    mqtt::delivery_token_ptr token;
    store::Lease lease;
    std::size_t rows = 0;
    std::chrono::steady_clock::time_point sent;
  };
  std::unordered_map<mqtt::token*, Inflight> inflight;
  std::size_t inflight_rows = 0;
  std::size_t inflight_alarm_rows = 0;
  codec::EnvelopeEncoder encoder;
  std::vector<model::Reading> batch;
  std::mt19937 rng{std::random_device{}()};
  std::string connected_uri;
  std::chrono::steady_clock::time_point connected_since;
  std::chrono::steady_clock::time_point last_puback;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point next_health;
  std::chrono::milliseconds drain_timeout{3000};
  Budget budget;

  Impl(PublisherOptions o, store::Outbox& ob, CommandHandler* h, std::function<std::string()> extra)
      : opt(std::move(o)), outbox(ob), handler(h), health_extra(std::move(extra)), budget(opt.budget, ob) {
    if (opt.client_id.empty()) opt.client_id = opt.gateway_id;
    status_topic = codec::topics::status(opt.site_id, opt.gateway_id);
    cmd_topic = codec::topics::cmd(opt.site_id, opt.gateway_id);
    reply_topic = codec::topics::reply(opt.site_id, opt.gateway_id);
    health_topic = codec::topics::health(opt.site_id, opt.gateway_id);
  }

  // --- Paho callbacks: record and wake, nothing else. ---
  void connection_lost(const std::string& cause) override {
    {
      std::lock_guard l(mu);
      lost = true;
    }
    stats.connected = false;
    ++stats.connection_losses;
    log::warn(kLog, "connection lost" + (cause.empty() ? std::string() : ": " + cause));
    cv.notify_all();
  }
  // Completion of one publish, through the token's own action listener.
  // (Not callback::delivery_complete: Paho 1.2 looks that token up by message
  // id, which races with a fast PUBACK on loopback and then never fires.)
  void on_success(const mqtt::token& tok) override {
    {
      std::lock_guard l(mu);
      completed.push_back(const_cast<mqtt::token*>(&tok));
    }
    cv.notify_all();
  }
  void on_failure(const mqtt::token&) override {
    // Only happens when the connection goes: reconnect, then resend.
    {
      std::lock_guard l(mu);
      lost = true;
    }
    cv.notify_all();
  }
  void message_arrived(mqtt::const_message_ptr msg) override {
    const auto& p = msg->get_payload_ref();
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(p.data());
    {
      std::lock_guard l(mu);
      if (commands.size() < 64) {  // a flood of commands is dropped, not queued without bound
        commands.push_back(
            Incoming{msg->get_topic(), std::vector<std::uint8_t>(bytes, bytes + p.size()), msg->is_retained()});
      }
    }
    cv.notify_all();
  }

  std::string status_json(std::string_view state) const {
    return std::string("{\"state\":\"") + std::string(state) + "\",\"gateway\":" + codec::json_string(opt.gateway_id) +
           ",\"site\":" + codec::json_string(opt.site_id) + ",\"agent_version\":" +
           codec::json_string(opt.agent_version) + ",\"schema_version\":" + std::to_string(codec::kSchemaVersion) +
           ",\"config_hash\":" + codec::json_string(opt.config_hash) +
           ",\"compression\":" + (opt.zstd_level > 0 ? "\"zstd\"" : "\"none\"") +
           ",\"time_utc_ms\":" + std::to_string(now_utc_ms()) + "}";
  }

  // Options for one connect attempt to exactly one broker, always MQTT 3.1.1.
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
  mqtt::connect_options connect_options(const std::string& uri) {
    mqtt::will_options will(status_topic,
                            std::string("{\"state\":\"offline\",\"gateway\":" + codec::json_string(opt.gateway_id) + "}"),
                            1, true);
    mqtt::connect_options co;
    co.set_mqtt_version(MQTTVERSION_3_1_1);  // as the client was created; no 3.1 fallback (see above)
    // The outbox, not the broker session, is what survives: a clean session,
    // and everything unacknowledged is published again after a reconnect.
    co.set_clean_session(true);
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

  enum class Attempt { kConnected, kFailed, kFailedAfterConnect };

  // One attempt at one broker: connect, send the online status, subscribe to
  // commands. On failure, what() of the error is left in `error`.
  Attempt connect_to(const std::string& uri, std::string& error) {
    bool connected = false;
    try {
      auto tok = client->connect(connect_options(uri));
      tok->wait();
      connected = true;
      connected_uri = tok->get_connect_response().get_server_uri();
      client->publish(status_topic, status_json("online"), 1, true);
      if (opt.commands) client->subscribe(cmd_topic, 1);
      return Attempt::kConnected;
    } catch (const mqtt::exception& e) {
      error = e.what();
      if (!connected && is_tls_uri(uri)) {
        // Paho does not say why a handshake failed (a host name mismatch is a
        // bare SSL_FATAL): repeat it with the same settings to name the reason.
        auto why = tls::diagnose(uri, opt.tls, std::min<std::chrono::milliseconds>(opt.connect_timeout,
                                                                                    std::chrono::seconds(5)));
        if (!why.empty()) {
          log::warn(kLog, "TLS handshake with " + uri + " refused: " + why);
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

  // Tries the brokers in order until one accepts, as Paho did when it was
  // given the whole list, but one URI per connect (see connect_options). A
  // broker that accepted and then failed ends the round, as before.
  bool connect_once(const std::vector<std::string>& uris) {
    std::string error;
    auto result = Attempt::kFailed;
    for (const auto& u : uris) {
      result = connect_to(u, error);
      if (result != Attempt::kFailed) break;
    }
    if (result != Attempt::kConnected) {
      ++stats.connect_failures;
      std::string to;
      for (const auto& u : uris) to += (to.empty() ? "" : ", ") + u;
      log::warn(kLog, "connect to " + to + " failed: " + error);
      return false;
    }
    {
      std::lock_guard l(mu);
      lost = false;
    }
    stats.connected = true;
    ++stats.connects;
    connected_since = last_puback = std::chrono::steady_clock::now();
    bool preferred = paho_uri(opt.server_uris.front()) == connected_uri;
    if (!preferred) ++stats.failovers;
    log::info(kLog, "connected to " + connected_uri + " as " + opt.client_id +
                        (preferred ? "" : " (not the preferred broker; will return to it)"));
    return true;
  }

  // Sleeps for the backoff delay unless stopping. Returns false when stopping.
  bool backoff_wait(std::chrono::milliseconds& delay) {
    std::uniform_real_distribution<double> jitter(0.5, 1.0);  // "equal jitter"
    auto d = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(delay.count()) * jitter(rng)));
    std::unique_lock l(mu);
    cv.wait_for(l, d, [&] { return stopping; });
    delay = std::min(delay * 2, opt.reconnect_max);
    return !stopping;
  }

  // True when something has waited longer than the keep-alive for its PUBACK
  // and no PUBACK at all arrived meanwhile (a slow but live link keeps
  // acknowledging, so it does not trip this).
  bool puback_overdue(std::chrono::steady_clock::time_point now) const {
    if (inflight.empty() || now - last_puback <= opt.keepalive) return false;
    for (const auto& [tok, f] : inflight) {
      if (now - f.sent > opt.keepalive) return true;
    }
    return false;
  }

  void drop_inflight() {
    inflight.clear();
    inflight_rows = 0;
    inflight_alarm_rows = 0;
    outbox.release_all();  // whatever was in flight will be sent again
  }

  void process_completions() {
    std::vector<mqtt::token*> done;
    {
      std::lock_guard l(mu);
      done.swap(completed);
    }
    std::vector<store::Lease> leases;
    std::size_t rows = 0;
    for (auto* t : done) {
      auto it = inflight.find(t);
      if (it == inflight.end()) continue;  // a status/health/reply message, or from a previous connection
      leases.push_back(it->second.lease);
      rows += it->second.rows;
      inflight_rows -= it->second.rows;
      if (it->second.lease.priority == model::Priority::kAlarm) inflight_alarm_rows -= it->second.rows;
      inflight.erase(it);
    }
    if (leases.empty()) return;
    last_puback = std::chrono::steady_clock::now();
    if (auto s = outbox.ack(leases); !s) {
      // The rows stay and are re-sent after the next release: duplicates, never loss.
      log::error(kLog, "ack of " + std::to_string(rows) + " rows failed: " + s.error());
      return;
    }
    stats.envelopes_acked += leases.size();
    stats.readings_acked += rows;
  }

  // Takes one batch and publishes it. Returns false if nothing was waiting
  // (or nothing the budget allows).
  bool publish_one() {
    auto allowed = budget.allows_only_alarms(now_utc_ms()) ? model::Priority::kAlarm : model::Priority::kBulk;
    auto rows = outbox.take(opt.max_readings, opt.max_bytes, allowed);
    if (!rows) {
      log::error(kLog, "take from outbox failed: " + rows.error());
      return false;
    }
    if (rows->empty()) {
      if (allowed == model::Priority::kAlarm) ++stats.budget_held;
      return false;
    }
    batch.clear();
    for (auto& r : *rows) {
      auto reading = codec::decode_reading(r.body);
      if (!reading) {
        // Cannot be published in any form; it leaves with its batch's ack.
        ++stats.undecodable_rows;
        log::error(kLog, "dropping undecodable stored row " + std::to_string(r.id) + " (" + r.source_id + " seq " +
                             std::to_string(r.seq) + "): " + reading.error());
        continue;
      }
      batch.push_back(std::move(reading).value());
    }
    auto lease = store::Lease::of(*rows);
    if (batch.empty()) {
      (void)outbox.ack(std::span(&lease, 1));
      return true;
    }
    auto priority = rows->front().priority;
    codec::EnvelopeHeader h{opt.site_id, opt.gateway_id, outbox.next_envelope_seq(), now_utc_ms(), priority};
    auto bytes = encoder.encode(h, batch);
    std::vector<std::uint8_t> packed;
    if (opt.zstd_level > 0) {
      packed = codec::compress(bytes, opt.zstd_level);
      bytes = packed;
    }
    // The bandwidth cap delays everything but alarms.
    if (priority != model::Priority::kAlarm) {
      auto wait = budget.delay_for(bytes.size());
      if (wait.count() > 0) {
        std::unique_lock l(mu);
        cv.wait_for(l, wait, [&] { return stopping; });
      }
    }
    auto topic = codec::topics::data(opt.site_id, opt.gateway_id, priority);
    try {
      auto msg = mqtt::make_message(topic, bytes.data(), bytes.size(), 1, false);
      auto tok = client->publish(msg, nullptr, *this);
      inflight_rows += rows->size();
      if (priority == model::Priority::kAlarm) inflight_alarm_rows += rows->size();
      inflight.emplace(tok.get(), Inflight{tok, lease, rows->size(), std::chrono::steady_clock::now()});
      ++stats.envelopes_published;
      stats.bytes_published += bytes.size();
      budget.spend(bytes.size(), now_utc_ms());
    } catch (const mqtt::exception& e) {
      // Not connected any more: the rows stay leased until the reconnect releases them.
      log::warn(kLog, std::string("publish failed: ") + e.what());
      std::lock_guard l(mu);
      lost = true;
    }
    return true;
  }

  void publish_json(const std::string& topic, const std::string& json, bool retained) {
    try {
      client->publish(topic, json, 1, retained);
    } catch (const mqtt::exception& e) {
      log::warn(kLog, "publish to " + topic + " failed: " + e.what());
    }
  }

  // Why a command is too old or too new to run (commands.max_age_s), or "".
  std::string freshness_problem(const codec::Command& cmd) const {
    if (opt.command_max_age.count() <= 0) return "";
    constexpr std::uint64_t kFutureSkewMs = 60000;
    auto now = now_utc_ms();
    auto max_age_ms = static_cast<std::uint64_t>(opt.command_max_age.count()) * 1000;
    if (cmd.issued_utc_ms == 0) return "stale command refused: it has no issued_utc_ms";
    if (cmd.issued_utc_ms + max_age_ms < now) {
      return "stale command refused: issued " + std::to_string((now - cmd.issued_utc_ms) / 1000) +
             " s ago, more than commands.max_age_s (" + std::to_string(opt.command_max_age.count()) + ")";
    }
    if (cmd.issued_utc_ms > now + kFutureSkewMs) {
      return "command refused: issued " + std::to_string((cmd.issued_utc_ms - now) / 1000) +
             " s in the future (the sender's clock and this gateway's differ by more than 60 s)";
    }
    return "";
  }

  void process_commands() {
    std::deque<Incoming> todo;
    {
      std::lock_guard l(mu);
      todo.swap(commands);
    }
    for (auto& [topic, payload, retained] : todo) {
      ++stats.commands_received;
      if (topic != cmd_topic) {  // cannot happen with our one subscription; checked anyway
        ++stats.commands_rejected;
        log::warn(kLog, "command on unexpected topic " + topic + " ignored");
        continue;
      }
      if (retained) {
        // A retained command would be delivered again after every reconnect
        // and restart, and executed each time: never executed, answered.
        // (The broker sets the flag only on messages from its retained store:
        // docs/topics.md.)
        ++stats.commands_rejected;
        std::string why =
            "retained command refused: commands must be published without the retain flag (the broker "
            "delivers a retained one again at every reconnect); clear it with an empty retained message";
        auto id = codec::command_id_of(payload);
        log::warn(kLog, "command " + (id.empty() ? std::string("(no readable id)") : id) + " rejected: " + why);
        publish_json(reply_topic, reply_json(id, Result<std::string>(Error{why})), false);
        continue;
      }
      auto cmd = codec::parse_command(payload, opt.gateway_id);
      if (!cmd) {
        ++stats.commands_rejected;
        log::warn(kLog, "command rejected: " + cmd.error());
        publish_json(reply_topic, reply_json(codec::command_id_of(payload), Result<std::string>(Error{cmd.error()})),
                     false);
        continue;
      }
      if (auto stale = freshness_problem(*cmd); !stale.empty()) {
        ++stats.commands_rejected;
        log::warn(kLog, "command " + cmd->command_id + " rejected: " + stale);
        publish_json(reply_topic, reply_json(cmd->command_id, Result<std::string>(Error{stale})), false);
        continue;
      }
      // At most once per command id, also across restarts: the id is
      // committed to the store before the command runs (answer_once()).
      auto answer = answer_once(outbox, *cmd, now_utc_ms(), [&]() -> Result<std::string> {
        if (std::holds_alternative<codec::Flush>(cmd->action)) {
          auto waiting = outbox.stats().total_rows();
          std::lock_guard l(mu);
          flush_requested = true;
          return std::string("{\"waiting\":" + std::to_string(waiting) + "}");
        }
        if (handler != nullptr) return handler->execute(*cmd);
        return Error{"no command handler in this agent"};
      });
      switch (answer.what) {
        case Answered::kExecuted:
          if (!answer.ok) ++stats.commands_rejected;
          if (answer.ok) {
            log::info(kLog, "command " + cmd->command_id + " done" + (answer.note.empty() ? "" : "; " + answer.note));
          } else {
            log::info(kLog, "command " + cmd->command_id + " failed: " + answer.note);
          }
          break;
        case Answered::kRepeat:
          ++stats.commands_repeated;
          log::info(kLog, "command " + cmd->command_id + " repeated: " + answer.note);
          break;
        case Answered::kRepeatUnknown:
          ++stats.commands_repeated;
          ++stats.commands_rejected;
          log::warn(kLog, "command " + cmd->command_id + " repeated: " + answer.note);
          break;
        case Answered::kNotRecorded:
          ++stats.commands_rejected;
          log::error(kLog, "command " + cmd->command_id + " rejected: " + answer.note);
          break;
      }
      publish_json(reply_topic, answer.reply, false);
    }
  }

  std::string health() {
    auto s = outbox.stats();
    auto now = now_utc_ms();
    std::string out = "{\"gateway\":" + codec::json_string(opt.gateway_id) + ",\"time_utc_ms\":" + std::to_string(now) +
                      ",\"uptime_s\":" +
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()) +
                      ",\"broker\":" + codec::json_string(stats.connected ? connected_uri : "") + ",\"queue\":{";
    for (int p = model::kPriorityCount - 1; p >= 0; --p) {
      const auto& c = s.by_class[static_cast<std::size_t>(p)];
      std::uint64_t age_ms = c.oldest_created_ms > 0 && now > c.oldest_created_ms ? now - c.oldest_created_ms : 0;
      out += codec::json_string(model::priority_name(static_cast<model::Priority>(p))) + ":{\"rows\":" +
             std::to_string(c.rows) + ",\"bytes\":" + std::to_string(c.bytes) +
             ",\"oldest_age_s\":" + std::to_string(age_ms / 1000) + ",\"evicted\":" + std::to_string(c.evicted) +
             ",\"expired\":" + std::to_string(c.expired) + ",\"refused\":" + std::to_string(c.refused) + "}" +
             (p > 0 ? "," : "");
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                   static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    char cpu[32];
    std::snprintf(cpu, sizeof cpu, "%.2f", cpu_s);
    out += "},\"store\":{\"file_bytes\":" + std::to_string(s.file_bytes) + ",\"max_bytes\":" +
           std::to_string(s.max_bytes) + ",\"duplicates\":" + std::to_string(s.duplicates) +
           ",\"commit_failures\":" + std::to_string(s.commit_failures) + ",\"invalid_seq\":" + std::to_string(s.invalid_seq) +
           ",\"commands\":" + std::to_string(s.commands) + ",\"commands_bytes\":" + std::to_string(s.commands_bytes) +
           ",\"recovered_from\":" + codec::json_string(s.recovered_from) + "}";
    out += ",\"uplink\":{\"envelopes_published\":" + std::to_string(stats.envelopes_published.load()) +
           ",\"envelopes_acked\":" + std::to_string(stats.envelopes_acked.load()) +
           ",\"readings_acked\":" + std::to_string(stats.readings_acked.load()) +
           ",\"bytes_sent\":" + std::to_string(stats.bytes_published.load()) +
           ",\"connects\":" + std::to_string(stats.connects.load()) +
           ",\"reconnects\":" + std::to_string(stats.connects.load() > 0 ? stats.connects.load() - 1 : 0) +
           ",\"connect_failures\":" + std::to_string(stats.connect_failures.load()) +
           ",\"connection_losses\":" + std::to_string(stats.connection_losses.load()) +
           ",\"failovers\":" + std::to_string(stats.failovers.load()) +
           ",\"undecodable_rows\":" + std::to_string(stats.undecodable_rows.load()) +
           ",\"commands_received\":" + std::to_string(stats.commands_received.load()) +
           ",\"commands_rejected\":" + std::to_string(stats.commands_rejected.load()) +
           ",\"commands_repeated\":" + std::to_string(stats.commands_repeated.load()) + "}";
    out += ",\"budget\":" + budget.json(now);
    out += ",\"process\":{\"cpu_s\":" + std::string(cpu) + ",\"rss_kib\":" + std::to_string(rss_kib()) + "}";
    if (health_extra) {
      auto extra = health_extra();
      if (!extra.empty()) out += "," + extra;
    }
    return out + "}";
  }

  void run() {
    auto delay = opt.reconnect_min;
    auto waiting_since = std::chrono::steady_clock::time_point::max();
    next_health = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (true) {
      {
        std::lock_guard l(mu);
        if (stopping) break;
      }
      if (!stats.connected) {
        if (connect_once(opt.server_uris)) {
          delay = opt.reconnect_min;
          drop_inflight();
        } else if (!backoff_wait(delay)) {
          break;
        }
        continue;
      }
      process_completions();
      process_commands();
      bool was_lost;
      {
        std::lock_guard l(mu);
        was_lost = lost;
      }
      if (was_lost) {
        stats.connected = false;
        drop_inflight();
        continue;
      }
      auto now = std::chrono::steady_clock::now();
      // PUBACK watchdog: a link that swallows everything (a blackhole, a
      // half-open TCP connection) shows first as publishes that are never
      // acknowledged. Paho's keep-alive alone needs up to twice the interval.
      if (puback_overdue(now)) {
        log::warn(kLog, "connection lost: no PUBACK for " + std::to_string(opt.keepalive.count()) +
                            " s (keep-alive), the link is presumed dead; reconnecting");
        ++stats.connection_losses;
        try {
          client->disconnect(0)->wait_for(std::chrono::milliseconds(100));
        } catch (const mqtt::exception&) {
        }
        stats.connected = false;
        drop_inflight();
        continue;
      }
      if (opt.health_interval.count() > 0 && now >= next_health) {
        publish_json(health_topic, health(), false);
        next_health = now + opt.health_interval;
      }
      // Back to the preferred broker after a while elsewhere: stop sending,
      // let what is in flight be acknowledged, disconnect cleanly; the
      // reconnect tries the list in order.
      bool returning = opt.server_uris.size() > 1 && paho_uri(opt.server_uris.front()) != connected_uri &&
                       now - connected_since >= opt.failover_return;
      if (returning && inflight.empty()) {
        log::info(kLog, "trying to return to the preferred broker " + opt.server_uris.front());
        try {
          client->disconnect()->wait_for(std::chrono::seconds(2));
        } catch (const mqtt::exception&) {
        }
        stats.connected = false;
        drop_inflight();
        continue;
      }
      // Publish while there is room in flight and enough is waiting (or it
      // has waited max_age, or a flush was asked for).
      auto rows = outbox.rows_by_class();
      std::uint64_t total = 0;
      for (auto n : rows) total += n;
      auto waiting = total - inflight_rows;
      // Alarms never wait for a fuller envelope.
      bool alarm_waiting = rows[static_cast<std::size_t>(model::Priority::kAlarm)] > inflight_alarm_rows;
      if (waiting > 0 && waiting_since == std::chrono::steady_clock::time_point::max()) waiting_since = now;
      bool flushing;
      {
        std::lock_guard l(mu);
        flushing = flush_requested;
        if (waiting == 0) flush_requested = false;
      }
      bool full = waiting >= opt.max_readings;
      bool aged = waiting > 0 && now - waiting_since >= opt.max_age;
      if (!returning && inflight.size() < opt.max_inflight &&
          (full || aged || alarm_waiting || (flushing && waiting > 0))) {
        if (publish_one()) continue;
        waiting_since = std::chrono::steady_clock::time_point::max();
      }
      if (waiting == 0) waiting_since = std::chrono::steady_clock::time_point::max();
      std::unique_lock l(mu);
      auto deadline = waiting > 0 && waiting_since != std::chrono::steady_clock::time_point::max()
                          ? waiting_since + opt.max_age
                          : now + std::chrono::seconds(1);
      if (waiting > 0 && inflight.size() < opt.max_inflight && budget.allows_only_alarms(now_utc_ms())) {
        deadline = now + std::chrono::seconds(5);  // budget exhausted: re-check now and then
      }
      deadline = std::min(deadline, next_health);
      if (!inflight.empty()) deadline = std::min(deadline, now + std::chrono::seconds(1));  // watchdog tick
      cv.wait_until(l, deadline,
                    [&] { return stopping || kicked || lost || !completed.empty() || !commands.empty() || flush_requested; });
      kicked = false;
    }
    shutdown_connection();
  }

  void shutdown_connection() {
    if (!stats.connected) return;
    auto deadline = std::chrono::steady_clock::now() + drain_timeout;
    while (!inflight.empty() && std::chrono::steady_clock::now() < deadline) {
      process_completions();
      std::unique_lock l(mu);
      if (lost) break;
      cv.wait_until(l, deadline, [&] { return lost || !completed.empty(); });
    }
    process_completions();
    try {
      client->publish(status_topic, status_json("offline"), 1, true)->wait_for(std::chrono::seconds(2));
      client->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception& e) {
      log::warn(kLog, std::string("clean disconnect failed: ") + e.what());
    }
    stats.connected = false;
    log::info(kLog, "disconnected; " + std::to_string(inflight_rows) + " readings unacknowledged stay in the outbox");
  }
};

Publisher::Publisher(PublisherOptions options, store::Outbox& outbox, CommandHandler* commands,
                     std::function<std::string()> health_extra)
    : impl_(std::make_unique<Impl>(std::move(options), outbox, commands, std::move(health_extra))) {
  // The TLS floor goes in before Paho creates any SSL_CTX (tls.h).
  bool any_tls = false;
  for (const auto& u : impl_->opt.server_uris) any_tls |= is_tls_uri(u);
  if (any_tls) log::info(kLog, "TLS floor: " + tls::install_floor().text);
  // No Paho file persistence and no offline buffer: the outbox is the only
  // durable copy, and nothing is handed to Paho while disconnected.
  impl_->client = std::make_unique<mqtt::async_client>(paho_uri(impl_->opt.server_uris.front()), impl_->opt.client_id,
                                                       mqtt::create_options(MQTTVERSION_3_1_1));
  impl_->client->set_callback(*impl_);
}

Publisher::~Publisher() { stop(); }

void Publisher::start() {
  std::lock_guard l(impl_->mu);
  if (impl_->running) return;
  impl_->running = true;
  impl_->stopping = false;
  impl_->thread = std::thread([this] { impl_->run(); });
}

void Publisher::notify() {
  {
    std::lock_guard l(impl_->mu);
    impl_->kicked = true;
  }
  impl_->cv.notify_all();
}

void Publisher::flush() {
  {
    std::lock_guard l(impl_->mu);
    impl_->flush_requested = true;
  }
  impl_->cv.notify_all();
}

void Publisher::stop(std::chrono::milliseconds drain_timeout) {
  {
    std::lock_guard l(impl_->mu);
    if (!impl_->running) return;
    impl_->stopping = true;
    impl_->drain_timeout = drain_timeout;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  std::lock_guard l(impl_->mu);
  impl_->running = false;
}

const PublisherStats& Publisher::stats() const { return impl_->stats; }

}  // namespace eport::uplink
