// Publisher thread: connect/backoff, batch from the outbox, publish QoS 1,
// ack rows on PUBACK. Paho's callbacks only queue events for this thread.
#include "eport/uplink/publisher.h"

#include <mqtt/async_client.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/codec/topics.h"
#include "eport/log/log.h"

namespace eport::uplink {

namespace {
constexpr std::string_view kLog = "uplink";

std::uint64_t now_utc_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}
}  // namespace

struct Publisher::Impl : public mqtt::callback, public mqtt::iaction_listener {
  PublisherOptions opt;
  store::Outbox& outbox;
  PublisherStats stats;
  std::unique_ptr<mqtt::async_client> client;
  std::thread thread;

  std::mutex mu;  // guards the fields below; never held while calling Paho
  std::condition_variable cv;
  bool running = false;
  bool stopping = false;
  bool kicked = false;
  bool lost = false;
  std::vector<mqtt::token*> completed;

  // Publisher-thread state.
  struct Inflight {
    mqtt::delivery_token_ptr token;
    store::Lease lease;
    std::size_t rows = 0;
  };
  std::unordered_map<mqtt::token*, Inflight> inflight;
  std::size_t inflight_rows = 0;
  codec::EnvelopeEncoder encoder;
  std::vector<model::Reading> batch;
  std::mt19937 rng{std::random_device{}()};

  Impl(PublisherOptions o, store::Outbox& ob) : opt(std::move(o)), outbox(ob) {
    if (opt.client_id.empty()) opt.client_id = opt.gateway_id;
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

  std::string status_json(std::string_view state) const {
    return std::string("{\"state\":\"") + std::string(state) + "\",\"gateway\":\"" + opt.gateway_id +
           "\",\"site\":\"" + opt.site_id + "\",\"agent_version\":\"" + opt.agent_version +
           "\",\"schema_version\":" + std::to_string(codec::kSchemaVersion) + ",\"config_hash\":\"" +
           opt.config_hash + "\",\"time_utc_ms\":" + std::to_string(now_utc_ms()) + "}";
  }

  bool connect_once() {
    auto status_topic = codec::topics::status(opt.site_id, opt.gateway_id);
    mqtt::will_options will(status_topic, std::string("{\"state\":\"offline\",\"gateway\":\"" + opt.gateway_id + "\"}"), 1,
                            true);
    mqtt::connect_options co;
    co.set_clean_session(true);  // the outbox, not the broker session, is what survives
    co.set_keep_alive_interval(opt.keepalive);
    co.set_connect_timeout(opt.connect_timeout);
    co.set_automatic_reconnect(false);
    co.set_will(will);
    co.set_max_inflight(static_cast<int>(opt.max_inflight) + 4);
    try {
      client->connect(co)->wait();
      client->publish(status_topic, status_json("online"), 1, true)->wait_for(opt.connect_timeout);
    } catch (const mqtt::exception& e) {
      log::warn(kLog, "connect to " + opt.server_uri + " failed: " + e.what());
      try {
        if (client->is_connected()) client->disconnect()->wait_for(std::chrono::seconds(1));
      } catch (const mqtt::exception&) {
      }
      return false;
    }
    {
      std::lock_guard l(mu);
      lost = false;
    }
    stats.connected = true;
    ++stats.connects;
    log::info(kLog, "connected to " + opt.server_uri + " as " + opt.client_id);
    return true;
  }

  // Sleeps for the backoff delay unless stopping. Returns false when stopping.
  bool backoff_wait(std::chrono::milliseconds& delay) {
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    auto d = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(delay.count()) * jitter(rng)));
    std::unique_lock l(mu);
    cv.wait_for(l, d, [&] { return stopping; });
    delay = std::min(delay * 2, opt.reconnect_max);
    return !stopping;
  }

  void drop_inflight() {
    inflight.clear();
    inflight_rows = 0;
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
      if (it == inflight.end()) continue;  // from a previous connection: its rows were re-leased
      leases.push_back(it->second.lease);
      rows += it->second.rows;
      inflight_rows -= it->second.rows;
      inflight.erase(it);
    }
    if (leases.empty()) return;
    if (auto s = outbox.ack(leases); !s) {
      // The rows stay and are re-sent after the next release: duplicates, never loss.
      log::error(kLog, "ack of " + std::to_string(rows) + " rows failed: " + s.error());
      return;
    }
    stats.envelopes_acked += leases.size();
    stats.readings_acked += rows;
  }

  // Takes one batch and publishes it. Returns false if nothing was waiting.
  bool publish_one() {
    auto rows = outbox.take(opt.max_readings, opt.max_bytes);
    if (!rows) {
      log::error(kLog, "take from outbox failed: " + rows.error());
      return false;
    }
    if (rows->empty()) return false;
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
    auto topic = codec::topics::data(opt.site_id, opt.gateway_id, priority);
    try {
      auto msg = mqtt::make_message(topic, bytes.data(), bytes.size(), 1, false);
      auto tok = client->publish(msg, nullptr, *this);
      inflight_rows += rows->size();
      inflight.emplace(tok.get(), Inflight{tok, lease, rows->size()});
      ++stats.envelopes_published;
      stats.bytes_published += bytes.size();
    } catch (const mqtt::exception& e) {
      // Not connected any more: the rows stay leased until the reconnect releases them.
      log::warn(kLog, std::string("publish failed: ") + e.what());
      std::lock_guard l(mu);
      lost = true;
    }
    return true;
  }

  void run() {
    auto delay = opt.reconnect_min;
    auto waiting_since = std::chrono::steady_clock::time_point::max();
    while (true) {
      {
        std::lock_guard l(mu);
        if (stopping) break;
      }
      if (!stats.connected) {
        if (connect_once()) {
          delay = opt.reconnect_min;
          drop_inflight();
        } else if (!backoff_wait(delay)) {
          break;
        }
        continue;
      }
      process_completions();
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
      // Publish while there is room in flight and enough is waiting (or it
      // has waited max_age).
      auto waiting = outbox.stats().total_rows() - inflight_rows;
      auto now = std::chrono::steady_clock::now();
      if (waiting > 0 && waiting_since == std::chrono::steady_clock::time_point::max()) waiting_since = now;
      bool full = waiting >= opt.max_readings;
      bool aged = waiting > 0 && now - waiting_since >= opt.max_age;
      if (inflight.size() < opt.max_inflight && (full || aged)) {
        if (publish_one()) continue;
        waiting_since = std::chrono::steady_clock::time_point::max();
      }
      if (waiting == 0) waiting_since = std::chrono::steady_clock::time_point::max();
      std::unique_lock l(mu);
      auto deadline = waiting > 0 ? waiting_since + opt.max_age : now + std::chrono::seconds(1);
      cv.wait_until(l, deadline, [&] { return stopping || kicked || lost || !completed.empty(); });
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
      client->publish(codec::topics::status(opt.site_id, opt.gateway_id), status_json("offline"), 1, true)
          ->wait_for(std::chrono::seconds(2));
      client->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception& e) {
      log::warn(kLog, std::string("clean disconnect failed: ") + e.what());
    }
    stats.connected = false;
    log::info(kLog, "disconnected; " + std::to_string(inflight_rows) + " readings unacknowledged stay in the outbox");
  }

  std::chrono::milliseconds drain_timeout{3000};
};

Publisher::Publisher(PublisherOptions options, store::Outbox& outbox)
    : impl_(std::make_unique<Impl>(std::move(options), outbox)) {
  // No Paho file persistence and no offline buffer: the outbox is the only
  // durable copy, and nothing is handed to Paho while disconnected.
  impl_->client = std::make_unique<mqtt::async_client>(impl_->opt.server_uri, impl_->opt.client_id,
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
