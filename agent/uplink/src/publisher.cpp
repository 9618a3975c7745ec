// Publisher thread: the uplink's loop. Connects through Connection (Paho,
// TLS, one broker per attempt) with jittered backoff, returns to the
// preferred broker, drops a link whose PUBACKs stop (watchdog), takes
// batches from the outbox when decide() (batching.h) says so, encodes them
// (envelope, compression, data budget), publishes QoS 1 and acks rows on
// PUBACK, publishes health (health.h) and answers commands (commands.h).
// Connection's events only queue for this thread and wake it.
#include "eport/uplink/publisher.h"

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "connection.h"
#include "tls.h"
#include "eport/backoff/backoff.h"
#include "eport/codec/codec.h"
#include "eport/codec/packer.h"
#include "eport/codec/topics.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"
#include "eport/uplink/batching.h"
#include "eport/uplink/budget.h"
#include "eport/uplink/health.h"
#include "eport/uplink/size_cap.h"

namespace eport::uplink {

namespace {
constexpr std::string_view kLog = "uplink";
// MQTT 5 reason code "Packet too large" (a PUBACK's, 3.4.2.1).
constexpr int kPacketTooLarge = 0x95;

using model::now_utc_ms;
using Clock = std::chrono::steady_clock;

bool has_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
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

struct Publisher::Impl : public ConnectionEvents {
  PublisherOptions opt;
  store::Outbox& outbox;
  CommandHandler* handler;
  std::function<std::string()> health_extra;
  PublisherStats stats;
  std::string status_topic, cmd_topic, reply_topic, health_topic;
  std::unique_ptr<Connection> conn;
  std::thread thread;

  std::mutex mu;  // guards the fields below; never held while calling Paho
  std::condition_variable cv;
  bool running = false;
  bool stopping = false;
  bool kicked = false;
  bool flush_requested = false;
  bool lost = false;
  bool envelope_refused = false;  // lost because an MQTT 5 PUBACK refused an envelope
  std::vector<DeliveryKey> completed;
  // MQTT 5 PUBACKs with an error reason code.
  struct Refusal {
    DeliveryKey key;
    int reason_code;
    std::size_t payload_bytes;  // 0: unknown
  };
  std::vector<Refusal> refusals;
  struct Incoming {
    std::string topic;
    std::vector<std::uint8_t> payload;
    bool retained = false;  // delivered from the broker's retained store
  };
  std::deque<Incoming> commands;

  // Publisher-thread state.
  struct Inflight {
    Delivery delivery;
    store::Lease lease;
    std::size_t rows = 0;      // outbox rows the ack deletes (undecodable ones included)
    std::size_t readings = 0;  // readings in the envelope
    std::size_t bytes = 0;     // MQTT payload
    Clock::time_point sent;
  };
  std::unordered_map<DeliveryKey, Inflight> inflight;
  std::array<std::uint64_t, model::kPriorityCount> inflight_rows{};  // per class
  codec::EnvelopePacker packer{opt.envelope_format, opt.packing_level()};
  std::vector<model::Reading> batch;
  std::vector<std::size_t> batch_rows;  // batch[i] was taken as row batch_rows[i] of its take()
  // The envelope sequence number drawn for the envelope being encoded and
  // not yet published (a split publishes the first part under it), if any.
  std::optional<std::uint64_t> pending_envelope_seq;
  // Envelopes stay at or below this once the broker refused one as too
  // large (learn_from_refusals, process_completions).
  EnvelopeSizeCap size_cap;
  std::mt19937 rng{std::random_device{}()};
  // Reconnect delay: reconnect_min doubling to reconnect_max (eport::backoff),
  // each wait drawn from 0.5 .. 1.0 of it ("equal jitter", backoff_wait).
  backoff::Backoff reconnect;
  Clock::time_point connected_since;
  Clock::time_point last_puback;
  Clock::time_point started = Clock::now();
  Clock::time_point next_health;
  std::chrono::milliseconds drain_timeout{3000};
  Budget budget;
  bool certificate_refused_wait = false;  // the last attempt's broker refused our certificate
  bool refused_since_ack = false;  // an MQTT 5 PUBACK refused an envelope and none was acknowledged since

  Impl(PublisherOptions o, store::Outbox& ob, CommandHandler* h, std::function<std::string()> extra)
      : opt(std::move(o)),
        outbox(ob),
        handler(h),
        health_extra(std::move(extra)),
        reconnect(backoff::Options{opt.reconnect_min, opt.reconnect_max, 0}),
        budget(opt.budget, ob) {
    if (opt.client_id.empty()) opt.client_id = opt.gateway_id;
    if (opt.run_id.empty()) opt.run_id = new_run_id();
    if (!opt.tls.cert_file.empty()) {
      stats.certificate_not_after_s = tls::certificate_not_after(opt.tls.cert_file);
      warn_certificate_expiry();
    }
    status_topic = codec::topics::status(opt.site_id, opt.gateway_id);
    cmd_topic = codec::topics::cmd(opt.site_id, opt.gateway_id);
    reply_topic = codec::topics::reply(opt.site_id, opt.gateway_id);
    health_topic = codec::topics::health(opt.site_id, opt.gateway_id);
    conn = std::make_unique<Connection>(opt, status_topic, offline_json(opt.gateway_id, opt.run_id, false), cmd_topic,
                                        *this);
  }

  // The gateway's own certificate expires within mqtt.certificate_warn_days
  // (or has expired): logged at start and with each health message at most
  // once a day.
  void warn_certificate_expiry() {
    const auto not_after = stats.certificate_not_after_s.load();
    if (not_after <= 0 || opt.certificate_warn_days == 0) return;
    const auto now_s = static_cast<std::int64_t>(now_utc_ms() / 1000);
    const auto left_s = not_after - now_s;
    if (left_s > static_cast<std::int64_t>(opt.certificate_warn_days) * 86400) return;
    if (last_certificate_warning_s != 0 && now_s - last_certificate_warning_s < 86400) return;
    last_certificate_warning_s = now_s;
    if (left_s <= 0) {
      log::error(kLog, "this gateway's certificate " + opt.tls.cert_file + " has expired: the broker will refuse it");
    } else {
      log::warn(kLog, "this gateway's certificate " + opt.tls.cert_file + " expires in " +
                          std::to_string(left_s / 86400) + " days (mqtt.certificate_warn_days = " +
                          std::to_string(opt.certificate_warn_days) + "): rotate it (docs/operators.md)");
    }
  }
  std::int64_t last_certificate_warning_s = 0;

  std::size_t total_inflight_rows() const {
    std::size_t n = 0;
    for (auto r : inflight_rows) n += r;
    return n;
  }

  // --- Connection events (Paho's thread): record and wake, nothing else. ---
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
  void delivered(DeliveryKey key) override {
    {
      std::lock_guard l(mu);
      completed.push_back(key);
    }
    cv.notify_all();
  }
  void delivery_failed(DeliveryKey key, int reason_code, std::size_t payload_bytes) override {
    // The connection went, or an MQTT 5 broker refused the envelope in its
    // PUBACK: either way nothing of it is acknowledged; reconnect, then
    // resend (the rows stay in the outbox).
    if (reason_code >= 0x80) {
      ++stats.envelopes_refused;
      log::warn(kLog, "the broker refused an envelope (PUBACK reason code " + std::to_string(reason_code) +
                          "): its readings stay in the outbox; reconnecting after the backoff");
    }
    {
      std::lock_guard l(mu);
      lost = true;
      if (reason_code >= 0x80) {
        envelope_refused = true;
        refusals.push_back(Refusal{key, reason_code, payload_bytes});
      }
    }
    cv.notify_all();
  }
  void message(std::string topic, std::vector<std::uint8_t> payload, bool retained) override {
    {
      std::lock_guard l(mu);
      if (commands.size() < 64) {  // a flood of commands is dropped, not queued without bound
        commands.push_back(Incoming{std::move(topic), std::move(payload), retained});
      }
    }
    cv.notify_all();
  }

  // Tries the brokers in order until one accepts, as Paho did when it was
  // given the whole list, but one URI per connect (connection.cpp). A
  // broker that accepted and then failed ends the round, as before.
  bool connect_once(const std::vector<std::string>& uris) {
    std::string error;
    auto result = Connection::Attempt::kFailed;
    auto birth = [&] { return birth_json(opt, now_utc_ms()); };
    for (const auto& u : uris) {
      result = conn->connect_to(u, birth, error);
      if (result != Connection::Attempt::kFailed) break;
    }
    if (result != Connection::Attempt::kConnected) {
      ++stats.connect_failures;
      std::string to;
      for (const auto& u : uris) to += (to.empty() ? "" : ", ") + u;
      if (const auto& refused = conn->certificate_refused(); !refused.empty()) {
        // Waiting does not cure this one: say what it is and wait longer.
        ++stats.certificate_refusals;
        certificate_refused_wait = true;
        log::error(kLog, "the broker refused this gateway's certificate (" + refused + "; " +
                             opt.tls.cert_file + "): it was revoked, has expired or is not from the broker's CA. "
                             "Nothing is delivered until the gateway has a valid certificate (docs/operators.md, "
                             "rotation); next attempt in " + std::to_string(opt.certificate_refused_retry.count()) +
                             " s (mqtt.certificate_refused_retry_s)");
        return false;
      }
      log::warn(kLog, "connect to " + to + " failed: " + error);
      return false;
    }
    {
      std::lock_guard l(mu);
      lost = false;
      envelope_refused = false;
    }
    stats.connected = true;
    ++stats.connects;
    connected_since = last_puback = Clock::now();
    bool preferred = paho_uri(opt.server_uris.front()) == conn->connected_uri();
    if (!preferred) ++stats.failovers;
    log::info(kLog, "connected to " + conn->connected_uri() + " as " + opt.client_id +
                        (preferred ? "" : " (not the preferred broker; will return to it)"));
    return true;
  }

  // Sleeps for the next reconnect delay unless stopping. Returns false when stopping.
  bool backoff_wait() {
    std::uniform_real_distribution<double> jitter(0.5, 1.0);  // "equal jitter"
    auto step = reconnect.next();
    auto d = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(step.count()) * jitter(rng)));
    if (certificate_refused_wait) {
      // The wait the log announced, at least: mqtt.certificate_refused_retry_s.
      certificate_refused_wait = false;
      d = std::max<std::chrono::milliseconds>(d, opt.certificate_refused_retry);
    }
    std::unique_lock l(mu);
    cv.wait_for(l, d, [&] { return stopping; });
    return !stopping;
  }

  // True when something has waited longer than the keep-alive for its PUBACK
  // and no PUBACK at all arrived meanwhile (a slow but live link keeps
  // acknowledging, so it does not trip this).
  bool puback_overdue(Clock::time_point now) const {
    if (inflight.empty() || now - last_puback <= opt.keepalive) return false;
    for (const auto& [key, f] : inflight) {
      if (now - f.sent > opt.keepalive) return true;
    }
    return false;
  }

  // MQTT 5 PUBACK 0x95 (packet too large): the broker takes less than that
  // envelope. Later envelopes are split to half its size at most, so a
  // limit the agent was not told of (mosquitto's message_size_limit is not
  // in the CONNACK) costs one refused envelope, not a class that never
  // drains. drop_inflight() calls it before it forgets what was in flight,
  // on every path; a refusal that Paho reports after the lost connection
  // (its callbacks may come in either order) still carries the envelope's
  // size. Returns true if there were refusals.
  bool learn_from_refusals() {
    std::vector<Refusal> refused;
    {
      std::lock_guard l(mu);
      refused.swap(refusals);
    }
    if (refused.empty()) return false;
    refused_since_ack = true;  // the reconnect backoff keeps growing (run())
    for (const auto& r : refused) {
      if (r.reason_code != kPacketTooLarge) continue;
      const auto it = inflight.find(r.key);
      // Still in flight: what was sent; else only the size Paho reported.
      const Inflight* sent = it != inflight.end() ? &it->second : nullptr;
      const std::size_t bytes = sent != nullptr ? sent->bytes : r.payload_bytes;
      switch (size_cap.refused(bytes, sent != nullptr ? sent->readings : 0)) {
        case EnvelopeSizeCap::Refusal::kNothingToLearn: break;
        case EnvelopeSizeCap::Refusal::kOneReading:  // only from an envelope still in flight
          log::error(kLog, "the broker refused an envelope of one reading (" + std::to_string(bytes) +
                               " bytes) as too large: its class (" +
                               std::string(model::priority_name(sent->lease.priority)) +
                               ") cannot drain until the broker's message size limit is raised (docs/operators.md)");
          break;
        case EnvelopeSizeCap::Refusal::kCapLowered:
          log::warn(kLog, "the broker refused a " + std::to_string(bytes) +
                              "-byte envelope as too large: envelopes are split to at most " +
                              std::to_string(size_cap.limit()) + " bytes from now on");
          break;
      }
    }
    return true;
  }

  // Forgets what is in flight, after learning from its refusals; returns
  // true if the broker had refused any of it (learn_from_refusals).
  bool drop_inflight() {
    const bool refused = learn_from_refusals();
    inflight.clear();
    inflight_rows.fill(0);
    outbox.release_all();  // whatever was in flight will be sent again
    return refused;
  }

  void process_completions() {
    std::vector<DeliveryKey> done;
    {
      std::lock_guard l(mu);
      done.swap(completed);
    }
    std::vector<store::Lease> leases;
    std::size_t rows = 0;
    for (auto key : done) {
      auto it = inflight.find(key);
      if (it == inflight.end()) continue;  // from a previous connection
      leases.push_back(it->second.lease);
      rows += it->second.rows;
      inflight_rows[static_cast<std::size_t>(it->second.lease.priority)] -= it->second.rows;
      size_cap.acknowledged(it->second.bytes);
      inflight.erase(it);
    }
    if (leases.empty()) return;
    last_puback = Clock::now();
    refused_since_ack = false;
    if (auto s = outbox.ack(leases); !s) {
      // The rows stay and are re-sent after the next release: duplicates, never loss.
      log::error(kLog, "ack of " + std::to_string(rows) + " rows failed: " + s.error());
      return;
    }
    stats.envelopes_acked += leases.size();
    stats.readings_acked += rows;
  }

  // Takes one batch (at most max_readings, of min_priority or higher) and
  // publishes it, as one envelope or, when that is larger than the broker
  // takes, as several (publish_part). Returns false if nothing was waiting
  // (or nothing the budget allows).
  bool publish_one(std::size_t max_readings, model::Priority min_priority) {
    auto rows = outbox.take(max_readings, opt.max_bytes, min_priority);
    if (!rows) {
      log::error(kLog, "take from outbox failed: " + rows.error());
      return false;
    }
    if (rows->empty()) {
      if (min_priority == model::Priority::kAlarm) ++stats.budget_held;
      return false;
    }
    batch.clear();
    batch_rows.clear();
    for (std::size_t i = 0; i < rows->size(); ++i) {
      const auto& r = (*rows)[i];
      auto reading = codec::decode_reading(r.body);
      if (!reading) {
        // Cannot be published in any form; it leaves with its batch's ack.
        ++stats.undecodable_rows;
        log::error(kLog, "dropping undecodable stored row " + std::to_string(r.id) + " (" + r.source_id + " seq " +
                             std::to_string(r.seq) + "): " + reading.error());
        continue;
      }
      reading->class_seq = r.class_seq;
      reading->class_priority = r.priority;
      batch.push_back(std::move(reading).value());
      batch_rows.push_back(i);
    }
    if (batch.empty()) {
      auto lease = store::Lease::of(*rows);
      (void)outbox.ack(std::span(&lease, 1));
      return true;
    }
    // A batch is all evidence or none (Outbox::take).
    const auto priority = rows->front().priority;
    const auto topic = model::is_evidence_source(rows->front().source_id)
                           ? codec::topics::evidence(opt.site_id, opt.gateway_id)
                           : codec::topics::data(opt.site_id, opt.gateway_id, priority);
    publish_part(*rows, 0, batch.size(), 0, rows->size(), priority, topic);
    return true;
  }

  // The envelope of batch[begin, end) under its sequence number, packed as configured.
  std::vector<std::uint8_t> encode_part(std::size_t begin, std::size_t end, model::Priority priority) {
    if (!pending_envelope_seq) pending_envelope_seq = outbox.next_envelope_seq();
    codec::EnvelopeHeader h{opt.site_id, opt.gateway_id, *pending_envelope_seq, now_utc_ms(), priority};
    return packer.pack(std::move(h), std::span<const model::Reading>(batch.data() + begin, end - begin));
  }

  // Publishes batch[begin, end), which covers rows [first_row, end_row) of
  // the take (undecodable rows between readings go with the part before
  // them), as one envelope within the broker's limit (announced, or learned
  // from its refusals), or halves it until each part fits; one reading is
  // published whatever its size (a refusal is logged by learn_from_refusals).
  // Returns false once not connected: the rest stays leased until the
  // reconnect releases it.
  bool publish_part(const std::vector<store::StoredRecord>& rows, std::size_t begin, std::size_t end,
                    std::size_t first_row, std::size_t end_row, model::Priority priority, const std::string& topic) {
    auto bytes = encode_part(begin, end, priority);
    // The broker's announced limit, and the cap learned from its refusals.
    const auto announced = conn->payload_limit(topic);
    const auto limit = std::min(announced, size_cap.limit());
    if (bytes.size() > limit && end - begin > 1) {
      const auto mid = begin + (end - begin) / 2;
      return publish_part(rows, begin, mid, first_row, batch_rows[mid], priority, topic) &&
             publish_part(rows, mid, end, batch_rows[mid], end_row, priority, topic);
    }
    // One reading above the limit the CONNACK announced: the broker will
    // close the connection for it. Above a cap learned from refusals only,
    // it goes without a word: an acknowledgement raises the cap to it, a
    // refusal says so (learn_from_refusals).
    if (bytes.size() > announced) {
      log::error(kLog, "an envelope of one reading is " + std::to_string(bytes.size()) + " bytes, above the " +
                           std::to_string(announced) + " the broker takes on " + topic +
                           ": sent anyway; raise the broker's message size limit (docs/operators.md)");
    }
    // The bandwidth cap delays everything but alarms.
    if (priority != model::Priority::kAlarm) {
      auto wait = budget.delay_for(bytes.size());
      if (wait.count() > 0) {
        std::unique_lock l(mu);
        cv.wait_for(l, wait, [&] { return stopping; });
      }
    }
    auto delivery = conn->publish_data(topic, bytes);
    if (!delivery) {
      // Not connected any more: the rows stay leased until the reconnect releases them.
      log::warn(kLog, std::string("publish failed: ") + delivery.error());
      std::lock_guard l(mu);
      lost = true;
      return false;
    }
    pending_envelope_seq.reset();
    const auto n_rows = end_row - first_row;
    const auto lease = store::Lease::of(std::span(rows.data() + first_row, n_rows));
    inflight_rows[static_cast<std::size_t>(priority)] += n_rows;
    auto key = delivery->key;
    inflight.emplace(key, Inflight{std::move(delivery).value(), lease, n_rows, end - begin, bytes.size(), Clock::now()});
    ++stats.envelopes_published;
    stats.bytes_published += bytes.size();
    budget.spend(bytes.size(), now_utc_ms());
    return true;
  }

  void publish_json(const std::string& topic, const std::string& json, bool retained) {
    if (auto s = conn->publish_json(topic, json, retained); !s) {
      log::warn(kLog, "publish to " + topic + " failed: " + s.error());
    }
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
      auto r = answer_command(payload, retained, opt.gateway_id, opt.command_max_age, outbox, now_utc_ms(),
                              [&](const codec::Command& cmd) -> Result<std::string> {
                                if (std::holds_alternative<codec::Flush>(cmd.action)) {
                                  auto waiting = outbox.stats().total_rows();
                                  std::lock_guard l(mu);
                                  flush_requested = true;
                                  return std::string("{\"waiting\":" + std::to_string(waiting) + "}");
                                }
                                if (handler != nullptr) return handler->execute(cmd);
                                return Error{"no command handler in this agent"};
                              });
      if (r.rejected) ++stats.commands_rejected;
      if (r.repeated) ++stats.commands_repeated;
      publish_json(reply_topic, r.reply, false);
    }
  }

  Health health() {
    Health h;
    h.gateway = opt.gateway_id;
    h.run_id = opt.run_id;
    h.store = outbox.stats();
    h.time_utc_ms = now_utc_ms();
    h.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count();
    h.broker = stats.connected ? conn->connected_uri() : "";
    h.uplink = UplinkCounters::of(stats);
    h.budget = budget.usage(h.time_utc_ms);
    h.sample_process();
    if (health_extra) h.extra = health_extra();
    return h;
  }

  void run() {
    auto waiting_since = Clock::time_point::max();
    const BatchingOptions batching{opt.max_inflight, opt.max_readings, opt.max_age};
    // The first health message goes out right after the first birth message
    // (the loop publishes only while connected), then every health_interval.
    next_health = Clock::now();
    while (true) {
      {
        std::lock_guard l(mu);
        if (stopping) break;
      }
      if (!stats.connected) {
        // The connection went right after a refusal (the broker or Paho
        // closed it before the refusal was handled below): wait as then.
        if (drop_inflight() && !backoff_wait()) break;
        if (connect_once(opt.server_uris)) {
          // A broker that keeps refusing envelopes (an ACL, a quota) accepts
          // the connection every time: the backoff grows until it acknowledges one.
          if (!refused_since_ack) reconnect.reset();
          drop_inflight();
        } else if (!backoff_wait()) {
          break;
        }
        continue;
      }
      process_completions();
      process_commands();
      bool was_lost, was_refused;
      {
        std::lock_guard l(mu);
        was_lost = lost;
        was_refused = envelope_refused;
      }
      if (was_lost) {
        stats.connected = false;
        drop_inflight();
        // After a refused envelope, or a publish Paho refused, the connection
        // may still be up: close it (at once if it is gone already), then
        // send everything unacknowledged again.
        conn->disconnect(std::chrono::seconds(1));
        if (was_refused) {
          refused_since_ack = true;
          if (!backoff_wait()) break;
        }
        continue;
      }
      auto now = Clock::now();
      // PUBACK watchdog: a link that swallows everything (a blackhole, a
      // half-open TCP connection) shows first as publishes that are never
      // acknowledged. Paho's keep-alive alone needs up to twice the interval.
      if (puback_overdue(now)) {
        log::warn(kLog, "connection lost: no PUBACK for " + std::to_string(opt.keepalive.count()) +
                            " s (keep-alive), the link is presumed dead; reconnecting");
        ++stats.connection_losses;
        conn->abort();
        stats.connected = false;
        drop_inflight();
        continue;
      }
      if (opt.health_interval.count() > 0 && now >= next_health) {
        publish_json(health_topic, health().to_json(), false);
        warn_certificate_expiry();
        next_health = now + opt.health_interval;
      }
      // Back to the preferred broker after a while elsewhere: stop sending,
      // let what is in flight be acknowledged, disconnect cleanly; the
      // reconnect tries the list in order.
      bool returning = opt.server_uris.size() > 1 && paho_uri(opt.server_uris.front()) != conn->connected_uri() &&
                       now - connected_since >= opt.failover_return;
      if (returning && inflight.empty()) {
        log::info(kLog, "trying to return to the preferred broker " + opt.server_uris.front());
        conn->disconnect(std::chrono::seconds(2));
        stats.connected = false;
        drop_inflight();
        continue;
      }
      // Publish while there is room in flight and enough is waiting (or it
      // has waited max_age, or a flush was asked for): decide() (batching.h).
      BatchingInput in;
      in.stored = outbox.rows_by_class();
      in.inflight_rows = inflight_rows;
      in.inflight_envelopes = inflight.size();
      in.now = now;
      in.returning = returning;
      auto waiting = waiting_rows(in);
      if (waiting > 0 && waiting_since == Clock::time_point::max()) waiting_since = now;
      in.waiting_since = waiting_since;
      {
        std::lock_guard l(mu);
        in.flushing = flush_requested;
        if (waiting == 0) flush_requested = false;
      }
      in.only_alarms = budget.allows_only_alarms(now_utc_ms());
      auto d = decide(batching, in);
      if (d.publish) {
        if (publish_one(d.max_readings, d.min_priority)) continue;
      } else if (d.why == Wait::kBudget) {
        ++stats.budget_held;
      }
      if (d.publish || d.why == Wait::kBudget) {
        // Nothing taken: look again after the wait below, the age restarting.
        waiting_since = Clock::time_point::max();
        in.waiting_since = waiting_since;
        d = decide(batching, in);
      }
      if (waiting == 0) waiting_since = Clock::time_point::max();
      auto deadline = std::min(d.wait_until, next_health);
      if (!inflight.empty()) deadline = std::min(deadline, now + std::chrono::seconds(1));  // watchdog tick
      std::unique_lock l(mu);
      cv.wait_until(l, deadline,
                    [&] { return stopping || kicked || lost || !completed.empty() || !commands.empty() || flush_requested; });
      kicked = false;
    }
    shutdown_connection();
  }

  void shutdown_connection() {
    if (!stats.connected) return;
    auto deadline = Clock::now() + drain_timeout;
    while (!inflight.empty() && Clock::now() < deadline) {
      process_completions();
      std::unique_lock l(mu);
      if (lost) break;
      cv.wait_until(l, deadline, [&] { return lost || !completed.empty(); });
    }
    process_completions();
    if (auto s = conn->close(offline_json(opt.gateway_id, opt.run_id, true)); !s) {
      log::warn(kLog, std::string("clean disconnect failed: ") + s.error());
    }
    stats.connected = false;
    log::info(kLog, "disconnected; " + std::to_string(total_inflight_rows()) +
                        " readings unacknowledged stay in the outbox");
  }
};

Publisher::Publisher(PublisherOptions options, store::Outbox& outbox, CommandHandler* commands,
                     std::function<std::string()> health_extra)
    : impl_(std::make_unique<Impl>(std::move(options), outbox, commands, std::move(health_extra))) {}

Publisher::~Publisher() { stop(); }

void Publisher::start() {
  std::lock_guard l(impl_->mu);
  if (impl_->running) return;
  impl_->running = true;
  impl_->stopping = false;
  impl_->thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "ep-publish");  // in top, perf and /proc/PID/task/*/comm
    impl_->run();
  });
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
