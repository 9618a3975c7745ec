// [app] `eport-agent store stats`: the --json object carries every figure of
// the human table (file size, limit, per class rows, bytes, oldest age and
// the lifetime counters, totals, recovery) plus the sources and commands
// rows, and both render an empty store.
#include <catch2/catch.hpp>

#include <string>

#include "store_commands.h"

using namespace eport;
using eport::model::Priority;

namespace {

store::OutboxStats sample() {
  store::OutboxStats s;
  s.file_bytes = 4096000;
  s.max_bytes = 268435456;
  auto& alarm = s.by_class[static_cast<std::size_t>(Priority::kAlarm)];
  alarm.rows = 3;
  alarm.bytes = 420;
  alarm.oldest_created_ms = 1'700'000'000'000;
  auto& tele = s.by_class[static_cast<std::size_t>(Priority::kTelemetry)];
  tele.rows = 1200;
  tele.bytes = 98000;
  tele.oldest_created_ms = 1'700'000'100'000;
  tele.evicted = 17;
  tele.expired = 2;
  tele.refused = 5;
  s.sources = 40;
  s.sources_bytes = 2600;
  s.commands = 3;
  s.commands_bytes = 510;
  s.recovered_from = "/var/lib/eport-agent/outbox.db.corrupt-20260101T000000Z";
  s.salvaged = 99;
  return s;
}

}  // namespace

TEST_CASE("store stats --json carries every figure of the table plus sources and commands", "[app][store]") {
  const std::uint64_t now = 1'700'000'200'000;
  auto json = app::store_stats_json("/var/lib/eport-agent/outbox.db", sample(), now);
  CHECK(json ==
        "{\"path\":\"/var/lib/eport-agent/outbox.db\",\"file_bytes\":4096000,\"max_bytes\":268435456,\"classes\":{"
        "\"alarm\":{\"rows\":3,\"bytes\":420,\"oldest_age_s\":200.0,\"oldest_created_utc_ms\":1700000000000,"
        "\"evicted\":0,\"expired\":0,\"refused\":0},"
        "\"event\":{\"rows\":0,\"bytes\":0,\"oldest_age_s\":0.0,\"oldest_created_utc_ms\":0,\"evicted\":0,"
        "\"expired\":0,\"refused\":0},"
        "\"telemetry\":{\"rows\":1200,\"bytes\":98000,\"oldest_age_s\":100.0,\"oldest_created_utc_ms\":1700000100000,"
        "\"evicted\":17,\"expired\":2,\"refused\":5},"
        "\"bulk\":{\"rows\":0,\"bytes\":0,\"oldest_age_s\":0.0,\"oldest_created_utc_ms\":0,\"evicted\":0,"
        "\"expired\":0,\"refused\":0}},"
        "\"total\":{\"rows\":1203,\"bytes\":98420},\"sources\":{\"rows\":40,\"bytes\":2600},"
        "\"commands\":{\"rows\":3,\"bytes\":510},"
        "\"recovered_from\":\"/var/lib/eport-agent/outbox.db.corrupt-20260101T000000Z\",\"salvaged\":99}\n");

  auto table = app::store_stats_table("/var/lib/eport-agent/outbox.db", sample(), now);
  CHECK(table ==
        "store /var/lib/eport-agent/outbox.db: 4096000 bytes on disk, limit 268435456 bytes\n"
        "class            rows        bytes   oldest_age_s    evicted    expired    refused\n"
        "alarm               3          420          200.0          0          0          0\n"
        "event               0            0            0.0          0          0          0\n"
        "telemetry        1200        98000          100.0         17          2          5\n"
        "bulk                0            0            0.0          0          0          0\n"
        "total            1203        98420\n"
        "recovered: damaged store moved to /var/lib/eport-agent/outbox.db.corrupt-20260101T000000Z\n");
}

TEST_CASE("store stats --json escapes the paths and renders an empty store", "[app][store]") {
  store::OutboxStats empty;
  auto json = app::store_stats_json("/tmp/a \"b\"\n.db", empty, 0);
  CHECK(json.rfind("{\"path\":\"/tmp/a \\\"b\\\"\\u000a.db\",\"file_bytes\":0,", 0) == 0);
  CHECK(json.find("\"total\":{\"rows\":0,\"bytes\":0}") != std::string::npos);
  CHECK(json.find("\"recovered_from\":\"\",\"salvaged\":0}") != std::string::npos);
  CHECK(json.find('\n') == json.size() - 1);  // one line
}
