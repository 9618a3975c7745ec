// The store subcommands of eport-agent: stats (table or --json), verify and
// dump, each on a store opened with the agent's own options.
#include "store_commands.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "eport/codec/codec.h"
#include "settings.h"
#include "eport/flags/flags.h"
#include "eport/json/json.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"
#include "settings.h"
#include "usage.h"

namespace eport::app {

namespace {

double oldest_age_s(const store::ClassStats& c, std::uint64_t now_utc_ms) {
  return c.oldest_created_ms > 0 && now_utc_ms > c.oldest_created_ms ? (now_utc_ms - c.oldest_created_ms) / 1000.0
                                                                      : 0.0;
}

template <class... Args>
void appendf(std::string& out, const char* format, Args... args) {
  char line[256];
  int n = std::snprintf(line, sizeof line, format, args...);
  if (n > 0) out.append(line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
}

std::string u64(std::uint64_t v) { return std::to_string(v); }

}  // namespace

std::string store_stats_table(const std::string& path, const store::OutboxStats& s, std::uint64_t now_utc_ms) {
  std::string out = "store " + path + ": ";
  appendf(out, "%llu bytes on disk, limit %llu bytes\n", static_cast<unsigned long long>(s.file_bytes),
          static_cast<unsigned long long>(s.max_bytes));
  appendf(out, "%-10s %10s %12s %14s %10s %10s %10s\n", "class", "rows", "bytes", "oldest_age_s", "evicted", "expired",
          "refused");
  for (int p = model::kPriorityCount - 1; p >= 0; --p) {
    const auto& c = s.by_class[static_cast<std::size_t>(p)];
    appendf(out, "%-10s %10llu %12llu %14.1f %10llu %10llu %10llu\n",
            std::string(model::priority_name(static_cast<model::Priority>(p))).c_str(),
            static_cast<unsigned long long>(c.rows), static_cast<unsigned long long>(c.bytes),
            oldest_age_s(c, now_utc_ms), static_cast<unsigned long long>(c.evicted),
            static_cast<unsigned long long>(c.expired), static_cast<unsigned long long>(c.refused));
  }
  appendf(out, "total      %10llu %12llu\n", static_cast<unsigned long long>(s.total_rows()),
          static_cast<unsigned long long>(s.total_bytes()));
  if (!s.recovered_from.empty()) out += "recovered: damaged store moved to " + s.recovered_from + "\n";
  return out;
}

std::string store_stats_json(const std::string& path, const store::OutboxStats& s, std::uint64_t now_utc_ms) {
  std::string out = "{\"path\":" + codec::json_string(path) + ",\"file_bytes\":" + u64(s.file_bytes) +
                    ",\"max_bytes\":" + u64(s.max_bytes) + ",\"classes\":{";
  // Highest class first, as in the table and the drain order.
  for (int p = model::kPriorityCount - 1; p >= 0; --p) {
    const auto& c = s.by_class[static_cast<std::size_t>(p)];
    if (p != model::kPriorityCount - 1) out += ',';
    out += codec::json_string(model::priority_name(static_cast<model::Priority>(p))) + ":{\"rows\":" + u64(c.rows) +
           ",\"bytes\":" + u64(c.bytes) + ",\"oldest_age_s\":";
    appendf(out, "%.1f", oldest_age_s(c, now_utc_ms));
    out += ",\"oldest_created_utc_ms\":" + u64(c.oldest_created_ms) + ",\"evicted\":" + u64(c.evicted) +
           ",\"expired\":" + u64(c.expired) + ",\"refused\":" + u64(c.refused) + "}";
  }
  out += "},\"total\":{\"rows\":" + u64(s.total_rows()) + ",\"bytes\":" + u64(s.total_bytes()) +
         "},\"sources\":{\"rows\":" + u64(s.sources) + ",\"bytes\":" + u64(s.sources_bytes) +
         "},\"commands\":{\"rows\":" + u64(s.commands) + ",\"bytes\":" + u64(s.commands_bytes) +
         "},\"recovered_from\":" + codec::json_string(s.recovered_from) + ",\"salvaged\":" + u64(s.salvaged) + "}\n";
  return out;
}

// eport-agent store stats|verify|dump --config FILE [--limit N] [--json]
int store_command(int argc, char** argv) {
  std::string sub = argc > 2 ? argv[2] : "";
  std::string config_path;
  long long limit = -1;
  bool json = false;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--limit" && i + 1 < argc) {
      auto v = flags::parse<long long>("--limit", argv[++i]);
      if (!v) {
        std::fprintf(stderr, "%s\n", v.error().c_str());
        return kUsageExit;
      }
      limit = *v;
    } else if (a == "--json" && sub == "stats") {
      json = true;
    } else {
      std::fputs(kUsage, stderr);
      return kUsageExit;
    }
  }
  if ((sub != "stats" && sub != "verify" && sub != "dump") || config_path.empty()) {
    std::fputs(kUsage, stderr);
    return kUsageExit;
  }
  auto cfg = load_config_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().c_str());
    return 2;
  }
  log::set_level(cfg->log_level);
  auto ob = store::Outbox::open(cfg->store);
  if (!ob) {
    std::fprintf(stderr, "%s\n", ob.error().c_str());
    return 1;
  }
  if (sub == "verify") {
    auto v = (*ob)->verify();
    if (!v) {
      std::fprintf(stderr, "%s\n", v.error().c_str());
      return 1;
    }
    std::printf("%s: %s\n", cfg->store.path.c_str(), v->c_str());
    return *v == "ok" ? 0 : 1;
  }
  if (sub == "dump") {
    long long n = 0;
    auto st = (*ob)->for_each([&](const store::StoredRecord& r) {
      auto reading = codec::decode_reading(r.body);
      std::string body = reading ? codec::reading_to_json(*reading)
                                 : "{\"error\":" + eport::json::quote("undecodable body: " + reading.error()) + "}";
      std::printf("{\"id\":%lld,\"priority\":\"%s\",\"created_utc_ms\":%llu,\"reading\":%s}\n",
                  static_cast<long long>(r.id), std::string(model::priority_name(r.priority)).c_str(),
                  static_cast<unsigned long long>(r.created_utc_ms), body.c_str());
      return limit < 0 || ++n < limit;
    });
    if (!st) {
      std::fprintf(stderr, "%s\n", st.error().c_str());
      return 1;
    }
    return 0;
  }
  auto s = (*ob)->stats();
  auto now = model::now_utc_ms();
  auto text = json ? store_stats_json(cfg->store.path, s, now) : store_stats_table(cfg->store.path, s, now);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace eport::app
