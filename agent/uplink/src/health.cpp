// Health and status JSON of the uplink (health.h): member names and order are
// the contract of docs/topics.md.
#include "eport/uplink/health.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <random>

#include "eport/codec/codec.h"

namespace eport::uplink {

UplinkCounters UplinkCounters::of(const PublisherStats& s) {
  UplinkCounters c;
  c.envelopes_published = s.envelopes_published.load();
  c.envelopes_acked = s.envelopes_acked.load();
  c.envelopes_refused = s.envelopes_refused.load();
  c.readings_acked = s.readings_acked.load();
  c.bytes_sent = s.bytes_published.load();
  c.connects = s.connects.load();
  c.connect_failures = s.connect_failures.load();
  c.certificate_refusals = s.certificate_refusals.load();
  c.certificate_not_after_s = s.certificate_not_after_s.load();
  c.connection_losses = s.connection_losses.load();
  c.failovers = s.failovers.load();
  c.undecodable_rows = s.undecodable_rows.load();
  c.commands_received = s.commands_received.load();
  c.commands_rejected = s.commands_rejected.load();
  c.commands_repeated = s.commands_repeated.load();
  return c;
}

void Health::sample_process() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
          static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  rss_kib = static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
}

namespace {
// "2029-03-05T18:40:49Z" of Unix seconds.
std::string utc_iso(std::int64_t unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace

std::string Health::to_json() const {
  const auto now = time_utc_ms;
  const auto& s = store;
  std::string out = "{\"gateway\":" + codec::json_string(gateway) + ",\"run_id\":" + codec::json_string(run_id) +
                    ",\"time_utc_ms\":" + std::to_string(now) +
                    ",\"uptime_s\":" + std::to_string(uptime_s) + ",\"broker\":" + codec::json_string(broker) +
                    ",\"queue\":{";
  for (int p = model::kPriorityCount - 1; p >= 0; --p) {
    const auto& c = s.by_class[static_cast<std::size_t>(p)];
    std::uint64_t age_ms = c.oldest_created_ms > 0 && now > c.oldest_created_ms ? now - c.oldest_created_ms : 0;
    out += codec::json_string(model::priority_name(static_cast<model::Priority>(p))) + ":{\"rows\":" +
           std::to_string(c.rows) + ",\"bytes\":" + std::to_string(c.bytes) +
           ",\"oldest_age_s\":" + std::to_string(age_ms / 1000) + ",\"evicted\":" + std::to_string(c.evicted) +
           ",\"expired\":" + std::to_string(c.expired) + ",\"refused\":" + std::to_string(c.refused) + "}" +
           (p > 0 ? "," : "");
  }
  char cpu[32];
  std::snprintf(cpu, sizeof cpu, "%.2f", cpu_s);
  out += "},\"store\":{\"file_bytes\":" + std::to_string(s.file_bytes) + ",\"max_bytes\":" +
         std::to_string(s.max_bytes) + ",\"duplicates\":" + std::to_string(s.duplicates) +
         ",\"commit_failures\":" + std::to_string(s.commit_failures) + ",\"invalid_seq\":" + std::to_string(s.invalid_seq) +
         ",\"commands\":" + std::to_string(s.commands) + ",\"commands_bytes\":" + std::to_string(s.commands_bytes) +
         ",\"recovered_from\":" + codec::json_string(s.recovered_from) + ",\"salvaged\":" + std::to_string(s.salvaged) +
         "}";
  const auto& u = uplink;
  out += ",\"uplink\":{\"envelopes_published\":" + std::to_string(u.envelopes_published) +
         ",\"envelopes_acked\":" + std::to_string(u.envelopes_acked) +
         ",\"envelopes_refused\":" + std::to_string(u.envelopes_refused) +
         ",\"readings_acked\":" + std::to_string(u.readings_acked) + ",\"bytes_sent\":" + std::to_string(u.bytes_sent) +
         ",\"connects\":" + std::to_string(u.connects) +
         ",\"reconnects\":" + std::to_string(u.connects > 0 ? u.connects - 1 : 0) +
         ",\"connect_failures\":" + std::to_string(u.connect_failures) +
         ",\"certificate_refusals\":" + std::to_string(u.certificate_refusals) +
         ",\"connection_losses\":" + std::to_string(u.connection_losses) +
         ",\"failovers\":" + std::to_string(u.failovers) +
         ",\"undecodable_rows\":" + std::to_string(u.undecodable_rows) +
         ",\"commands_received\":" + std::to_string(u.commands_received) +
         ",\"commands_rejected\":" + std::to_string(u.commands_rejected) +
         ",\"commands_repeated\":" + std::to_string(u.commands_repeated);
  if (u.certificate_not_after_s > 0) {
    // The gateway's own certificate: when it expires and how many whole days are left (negative: expired).
    const auto now_s = static_cast<std::int64_t>(now / 1000);
    const auto left = u.certificate_not_after_s - now_s;
    out += ",\"certificate\":{\"not_after\":" + codec::json_string(utc_iso(u.certificate_not_after_s)) +
           ",\"days_left\":" + std::to_string(left >= 0 ? left / 86400 : -((-left + 86399) / 86400)) + "}";
  }
  out += "}";
  out += ",\"budget\":{\"day_used\":" + std::to_string(budget.day_used) +
         ",\"day_limit\":" + std::to_string(budget.day_limit) + ",\"month_used\":" + std::to_string(budget.month_used) +
         ",\"month_limit\":" + std::to_string(budget.month_limit) +
         ",\"max_bytes_per_s\":" + std::to_string(budget.max_bytes_per_s) + "}";
  out += ",\"process\":{\"cpu_s\":" + std::string(cpu) + ",\"rss_kib\":" + std::to_string(rss_kib) + "}";
  if (!extra.empty()) out += "," + extra;
  return out + "}";
}

std::string new_run_id() {
  std::random_device rd;
  std::uniform_int_distribution<unsigned long long> draw;
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", draw(rd), draw(rd));
  return buf;
}

std::string birth_json(const PublisherOptions& opt, std::uint64_t now_utc_ms) {
  return "{\"state\":\"online\",\"gateway\":" + codec::json_string(opt.gateway_id) +
         ",\"site\":" + codec::json_string(opt.site_id) + ",\"run_id\":" + codec::json_string(opt.run_id) +
         ",\"agent_version\":" + codec::json_string(opt.agent_version) +
         ",\"schema_version\":" + std::to_string(codec::kSchemaVersion) +
         ",\"config_hash\":" + codec::json_string(opt.config_hash) +
         ",\"compression\":" + (opt.packing_level() > 0 ? "\"zstd\"" : "\"none\"") +
         ",\"time_utc_ms\":" + std::to_string(now_utc_ms) + "}";
}

std::string offline_json(std::string_view gateway_id, std::string_view run_id, bool clean) {
  return "{\"state\":\"offline\",\"gateway\":" + codec::json_string(gateway_id) +
         ",\"run_id\":" + codec::json_string(run_id) + ",\"clean\":" + (clean ? "true" : "false") + "}";
}

}  // namespace eport::uplink
