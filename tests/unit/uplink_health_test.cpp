// [uplink][health] The health message as docs/topics.md shows it: members,
// order and number formats of Health::to_json(), byte for byte; the status
// message and the last will. And the uplink's Paho boundary: only
// agent/uplink/src/connection.cpp includes Paho's headers.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "eport/codec/codec.h"
#include "eport/uplink/health.h"

using namespace eport;

TEST_CASE("the health message has the members of docs/topics.md in its order", "[uplink][health]") {
  uplink::Health h;
  h.gateway = "gw-test-01";
  h.run_id = "0123456789abcdef0123456789abcdef";
  h.time_utc_ms = 1795695650123;
  h.uptime_s = 61;
  h.broker = "tcp://127.0.0.1:1883";
  auto& tel = h.store.by_class[static_cast<std::size_t>(model::Priority::kTelemetry)];
  tel.rows = 120;
  tel.bytes = 18240;
  tel.oldest_created_ms = 1795695650123 - 2999;  // 2.999 s: printed as 2
  auto& bulk = h.store.by_class[static_cast<std::size_t>(model::Priority::kBulk)];
  bulk.evicted = 1;
  bulk.expired = 2;
  bulk.refused = 3;
  bulk.oldest_created_ms = 1795695650123 + 5000;  // ahead of the clock: age 0
  h.store.file_bytes = 4210688;
  h.store.max_bytes = 268435456;
  h.store.invalid_seq = 4;
  h.store.commands = 2;
  h.store.commands_bytes = 260;
  h.store.salvaged = 7;
  h.uplink.envelopes_published = 12;
  h.uplink.envelopes_acked = 12;
  h.uplink.envelopes_refused = 1;
  h.uplink.readings_acked = 5000;
  h.uplink.bytes_sent = 181234;
  h.uplink.connects = 3;
  h.uplink.commands_received = 2;
  h.budget = uplink::BudgetUsage{181234, 0, 181234, 0, 0};
  h.cpu_s = 0.414;
  h.rss_kib = 11820;
  CHECK(h.to_json() ==
        "{\"gateway\":\"gw-test-01\",\"run_id\":\"0123456789abcdef0123456789abcdef\",\"time_utc_ms\":1795695650123,\"uptime_s\":61,\"broker\":\"tcp://127.0.0.1:1883\","
        "\"queue\":{\"alarm\":{\"rows\":0,\"bytes\":0,\"oldest_age_s\":0,\"evicted\":0,\"expired\":0,\"refused\":0},"
        "\"event\":{\"rows\":0,\"bytes\":0,\"oldest_age_s\":0,\"evicted\":0,\"expired\":0,\"refused\":0},"
        "\"telemetry\":{\"rows\":120,\"bytes\":18240,\"oldest_age_s\":2,\"evicted\":0,\"expired\":0,\"refused\":0},"
        "\"bulk\":{\"rows\":0,\"bytes\":0,\"oldest_age_s\":0,\"evicted\":1,\"expired\":2,\"refused\":3}},"
        "\"store\":{\"file_bytes\":4210688,\"max_bytes\":268435456,\"duplicates\":0,\"commit_failures\":0,"
        "\"invalid_seq\":4,\"commands\":2,\"commands_bytes\":260,\"recovered_from\":\"\",\"salvaged\":7},"
        "\"uplink\":{\"envelopes_published\":12,\"envelopes_acked\":12,\"envelopes_refused\":1,\"readings_acked\":5000,\"bytes_sent\":181234,"
        "\"connects\":3,\"reconnects\":2,\"connect_failures\":0,\"certificate_refusals\":0,\"connection_losses\":0,"
        "\"failovers\":0,\"undecodable_rows\":0,\"commands_received\":2,\"commands_rejected\":0,\"commands_repeated\":0},"
        "\"budget\":{\"day_used\":181234,\"day_limit\":0,\"month_used\":181234,\"month_limit\":0,\"max_bytes_per_s\":0},"
        "\"process\":{\"cpu_s\":0.41,\"rss_kib\":11820}}");

  h.uplink.connects = 0;  // never connected: reconnects 0, not -1
  h.broker = "";
  h.extra = "\"ingest\":{\"stored\":5000}";
  auto j = h.to_json();
  CHECK(j.find("\"broker\":\"\",") != std::string::npos);
  CHECK(j.find("\"connects\":0,\"reconnects\":0,") != std::string::npos);
  CHECK(j.ends_with("\"process\":{\"cpu_s\":0.41,\"rss_kib\":11820},\"ingest\":{\"stored\":5000}}"));
  CHECK(j.find("\"certificate\"") == std::string::npos);  // no client certificate: no member
}

TEST_CASE("health says when the gateway's own certificate expires, in whole days left", "[uplink][health]") {
  uplink::Health h;
  h.time_utc_ms = 1795695650123;  // 2026-11-26T12:20:50Z
  h.uplink.certificate_not_after_s = 1795695650 + 10 * 86400 + 5;
  auto j = h.to_json();
  CHECK(j.find("\"commands_repeated\":0,\"certificate\":{\"not_after\":\"2026-12-06T12:20:55Z\",\"days_left\":10}}") !=
        std::string::npos);
  h.uplink.certificate_not_after_s = 1795695650 - 1;  // expired a second ago: -1, never 0
  CHECK(h.to_json().find("\"days_left\":-1}") != std::string::npos);
}

TEST_CASE("health samples this process's CPU time and resident size", "[uplink][health]") {
  uplink::Health h;
  h.sample_process();
  CHECK(h.rss_kib > 0);
  CHECK(h.cpu_s >= 0);
}

TEST_CASE("the birth message, and the two offline messages with the same members", "[uplink][health]") {
  uplink::PublisherOptions o;
  o.site_id = "cnsha";
  o.gateway_id = "gw-\"1\"";
  o.agent_version = "1.2.3";
  o.config_hash = "abc";
  o.run_id = "0123456789abcdef0123456789abcdef";
  o.compression = uplink::Compression::kZstd;
  CHECK(uplink::birth_json(o, 42) ==
        "{\"state\":\"online\",\"gateway\":\"gw-\\\"1\\\"\",\"site\":\"cnsha\","
        "\"run_id\":\"0123456789abcdef0123456789abcdef\",\"agent_version\":\"1.2.3\","
        "\"schema_version\":" + std::to_string(codec::kSchemaVersion) +
            ",\"config_hash\":\"abc\",\"compression\":\"zstd\",\"time_utc_ms\":42}");
  o.compression = uplink::Compression::kNone;
  CHECK(uplink::birth_json(o, 1).find("\"compression\":\"none\"") != std::string::npos);
  // The will (registered at connect) and the clean offline differ only in "clean".
  CHECK(uplink::offline_json("gw-yangshan-01", o.run_id, false) ==
        "{\"state\":\"offline\",\"gateway\":\"gw-yangshan-01\",\"run_id\":\"0123456789abcdef0123456789abcdef\","
        "\"clean\":false}");
  CHECK(uplink::offline_json("gw-yangshan-01", o.run_id, true) ==
        "{\"state\":\"offline\",\"gateway\":\"gw-yangshan-01\",\"run_id\":\"0123456789abcdef0123456789abcdef\","
        "\"clean\":true}");
}

TEST_CASE("a run id is 32 lower-case hex digits, new each time", "[uplink][health]") {
  auto a = uplink::new_run_id(), b = uplink::new_run_id();
  CHECK(a.size() == 32);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a != b);
}

TEST_CASE("only the uplink's connection.cpp includes Paho", "[uplink]") {
  namespace fs = std::filesystem;
  std::vector<std::string> includers;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(EPORT_SOURCE_DIR) / "agent" / "uplink")) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find("#include <mqtt/") != std::string::npos) {
      includers.push_back(fs::relative(e.path(), EPORT_SOURCE_DIR).string());
    }
  }
  CHECK(includers == std::vector<std::string>{"agent/uplink/src/connection.cpp"});
}
