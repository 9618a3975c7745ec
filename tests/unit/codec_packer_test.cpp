// [codec] EnvelopePacker (eport/codec/packer.h), the one place that turns a
// batch into the payload the agent publishes: every format and compression
// decodes back on its topic to the batch; v2 leaves the site and gateway to
// the topic, v1 carries them; compressed v2 names the v2 dictionary, v1 none.
#include <catch2/catch.hpp>

#include <zstd.h>

#include "eport/codec/packer.h"
#include "eport/codec/topics.h"
#include "fleet.h"

using namespace eport;

TEST_CASE("packer: every format and level decodes back on its topic to the batch", "[codec]") {
  const auto mix = sim::standard_mix(10, 20);
  const auto topic = codec::topics::data("cnsha", "gw-01", model::Priority::kTelemetry);
  struct Case {
    codec::EnvelopeFormat format;
    int level;
  };
  for (auto [format, level] : {Case{codec::EnvelopeFormat::kV1, 0}, Case{codec::EnvelopeFormat::kV1, 3},
                               Case{codec::EnvelopeFormat::kV2, 0}, Case{codec::EnvelopeFormat::kV2, 6}}) {
    const bool v2 = format == codec::EnvelopeFormat::kV2;
    CAPTURE(v2, level);
    codec::EnvelopePacker packer(format, level);
    const codec::EnvelopeHeader h{"cnsha", "gw-01", 7, 1795000000123ull, model::Priority::kTelemetry};
    auto payload = packer.pack(h, mix);
    REQUIRE(codec::is_compressed(payload) == (level > 0));
    if (level > 0) {
      // A v2 frame names the v2 dictionary; a v1 frame none (docs/schema.md).
      CHECK(ZSTD_getDictID_fromFrame(payload.data(), payload.size()) == (v2 ? codec::kV2DictionaryId : 0u));
    }
    auto on_topic = codec::decode_payload_on(topic, payload);
    REQUIRE(on_topic);
    CHECK(on_topic->header.envelope_seq == 7);
    CHECK(on_topic->header.sent_utc_ms == 1795000000123ull);
    CHECK(on_topic->header.site_id == "cnsha");
    CHECK(on_topic->header.gateway_id == "gw-01");
    CHECK(on_topic->header.schema_version == (v2 ? codec::kSchemaVersionV2 : codec::kSchemaVersion));
    CHECK(on_topic->readings == (v2 ? codec::v2_order(mix) : mix));
    // Without the topic: a v2 envelope carries no ids (the topic does), v1 does.
    auto alone = codec::decode_payload(payload);
    REQUIRE(alone);
    CHECK(alone->header.site_id == (v2 ? "" : "cnsha"));
    CHECK(alone->header.gateway_id == (v2 ? "" : "gw-01"));
  }
}

TEST_CASE("packer: one packer packs batch after batch without carrying anything over", "[codec]") {
  const auto mix = sim::standard_mix(5, 10);
  const std::span<const model::Reading> all(mix);
  codec::EnvelopePacker reused(codec::EnvelopeFormat::kV2, 6);
  for (std::size_t begin = 0; begin < mix.size(); begin += 7) {
    const auto part = all.subspan(begin, std::min<std::size_t>(7, mix.size() - begin));
    const codec::EnvelopeHeader h{"cnsha", "gw-01", begin + 1, 1795000000000ull + begin, model::Priority::kEvent};
    codec::EnvelopePacker fresh(codec::EnvelopeFormat::kV2, 6);
    CHECK(reused.pack(h, part) == fresh.pack(h, part));
  }
}
