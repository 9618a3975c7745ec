// The uplink's JSON messages about the gateway itself: the periodic health
// message (docs/topics.md "Health") as a plain struct with one to_json(),
// and the retained status (birth, clean offline) and last will. No I/O: the
// publisher fills a Health from the outbox, its counters and the budget, and
// publishes to_json(); tests build one by hand.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "eport/store/outbox.h"
#include "eport/uplink/budget.h"
#include "eport/uplink/publisher.h"

namespace eport::uplink {

// The "uplink" member: PublisherStats at one moment.
struct UplinkCounters {
  std::uint64_t envelopes_published = 0;
  std::uint64_t envelopes_acked = 0;
  std::uint64_t envelopes_refused = 0;
  std::uint64_t readings_acked = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t connects = 0;  // "reconnects" is connects - 1
  std::uint64_t connect_failures = 0;
  std::uint64_t certificate_refusals = 0;
  std::int64_t certificate_not_after_s = 0;  // 0: no client certificate
  std::uint64_t connection_losses = 0;
  std::uint64_t failovers = 0;
  std::uint64_t undecodable_rows = 0;
  std::uint64_t commands_received = 0;
  std::uint64_t commands_rejected = 0;
  std::uint64_t commands_repeated = 0;

  static UplinkCounters of(const PublisherStats& stats);
};

struct Health {
  std::string gateway;
  std::string run_id;             // PublisherOptions::run_id: this agent process
  std::uint64_t time_utc_ms = 0;  // also the reference for the queue's oldest_age_s
  std::int64_t uptime_s = 0;
  std::string broker;             // "" when not connected
  store::OutboxStats store;       // "queue" (by_class, highest class first) and "store"
  UplinkCounters uplink;
  BudgetUsage budget;
  double cpu_s = 0;               // user + system, printed with 2 decimals
  std::uint64_t rss_kib = 0;
  std::string extra;              // more members ("\"bridge\":{...}") appended as they are; "" = none

  // This process's CPU time and resident size, into cpu_s and rss_kib.
  void sample_process();
  // One JSON object, members in the order of docs/topics.md.
  std::string to_json() const;
};

// A new run id: 32 lower-case hex digits (128 bits from std::random_device),
// drawn once per agent process. Birth, offline and health messages carry it,
// so that a consumer tells one run's counters from the next run's.
std::string new_run_id();

// The retained birth message: {"state":"online","gateway":..,"site":..,
// "run_id":..,"agent_version":..,"schema_version":..,"config_hash":..,
// "compression":..,"time_utc_ms":..} (schema/json/status.schema.json).
std::string birth_json(const PublisherOptions& options, std::uint64_t now_utc_ms);
// Both retained offline messages, the same members: the last will (clean
// false, registered at connect, published by the broker) and the agent's own
// before a clean disconnect (clean true):
// {"state":"offline","gateway":..,"run_id":..,"clean":..}.
std::string offline_json(std::string_view gateway_id, std::string_view run_id, bool clean);

}  // namespace eport::uplink
