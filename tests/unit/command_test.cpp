// [command] Cloud commands from outside: a Command whose action_type names a
// table that is absent, or that lacks a required string, passes the
// FlatBuffers Verifier (VerifyTable(nullptr) is true) and must be refused by
// parse_command with a message naming what is missing, never dereferenced.
#include "eport/codec/command.h"

#include <flatbuffers/flatbuffers.h>

#include <catch2/catch.hpp>

#include "eport/schema/command_generated.h"

using namespace eport;
namespace fc = eport::command::v1;

namespace {
constexpr const char* kGw = "gw-test-01";

struct Parts {
  bool command_id = true;
  bool gateway_id = true;
  fc::Action type = fc::Action::NONE;
  bool table = true;            // the action's table present
  const char* inner = nullptr;  // SetIntervals.unit_id / RequestPosition.source_id, nullptr: absent
  std::string id = "c-1";
  std::string gateway = kGw;
};

std::vector<std::uint8_t> build(const Parts& p) {
  flatbuffers::FlatBufferBuilder b;
  flatbuffers::Offset<void> action;
  if (p.table) {
    auto inner = p.inner ? b.CreateString(p.inner) : flatbuffers::Offset<flatbuffers::String>();
    switch (p.type) {
      case fc::Action::SetIntervals:
        action = fc::CreateSetIntervals(b, inner, 30, 0).Union();
        break;
      case fc::Action::RequestPosition:
        action = fc::CreateRequestPosition(b, inner).Union();
        break;
      case fc::Action::Flush:
        action = fc::CreateFlush(b).Union();
        break;
      case fc::Action::GetConfig:
        action = fc::CreateGetConfig(b).Union();
        break;
      case fc::Action::ExpectSeal:
        action = fc::CreateExpectSeal(b, b.CreateString("MSKU1234565"), b.CreateString("SL-1"), 2).Union();
        break;
      case fc::Action::PairUnit:
        action = fc::CreatePairUnit(b, b.CreateString("tcu-1"), b.CreateString("MSKU1234565")).Union();
        break;
      case fc::Action::ReplaceZones:
        action = fc::CreateReplaceZones(b).Union();  // empty: back to the config's zones
        break;
      default:
        break;
    }
  }
  auto id = p.command_id ? b.CreateString(p.id) : flatbuffers::Offset<flatbuffers::String>();
  auto gw = p.gateway_id ? b.CreateString(p.gateway) : flatbuffers::Offset<flatbuffers::String>();
  fc::CommandBuilder cb(b);
  if (p.command_id) cb.add_command_id(id);
  if (p.gateway_id) cb.add_gateway_id(gw);
  cb.add_issued_utc_ms(1795000000000ull);
  cb.add_action_type(p.type);  // written even when the table is not: the hostile case
  if (p.table && !action.IsNull()) cb.add_action(action);
  b.Finish(cb.Finish(), fc::CommandIdentifier());
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}
template <class F>
std::vector<std::uint8_t> cmd(F&& set) {
  Parts p;
  set(p);
  return build(p);
}
}  // namespace

TEST_CASE("a command whose action table is missing is refused for every action type", "[codec][command]") {
  for (const auto& tn :
       {std::pair{fc::Action::SetIntervals, "SetIntervals"}, std::pair{fc::Action::RequestPosition, "RequestPosition"},
        std::pair{fc::Action::Flush, "Flush"}, std::pair{fc::Action::GetConfig, "GetConfig"},
        std::pair{fc::Action::ExpectSeal, "ExpectSeal"}, std::pair{fc::Action::PairUnit, "PairUnit"},
        std::pair{fc::Action::ReplaceZones, "ReplaceZones"}}) {
    // Plain copies: clang 14 cannot capture structured bindings in lambdas.
    const auto type = tn.first;
    const std::string name = tn.second;
    CAPTURE(name);
    auto bytes = cmd([&](Parts& p) {
      p.type = type;
      p.table = false;
    });
    // It passes the Verifier: the problem is only caught by the parser.
    flatbuffers::Verifier v(bytes.data(), bytes.size());
    REQUIRE(fc::VerifyCommandBuffer(v));
    auto c = codec::parse_command(bytes, kGw);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error() == std::string(name) + " command without its " + name + " table");
    CHECK(codec::command_id_of(bytes) == "c-1");  // the error reply can still name the command
    // With the table, the same command is accepted.
    CHECK(codec::parse_command(cmd([&](Parts& p) { p.type = type; }), kGw).ok());
  }
  auto none = codec::parse_command(cmd([&](Parts& p) {
                                     p.type = fc::Action::NONE;
                                     p.table = false;
                                   }),
                                   kGw);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error() == "unknown or missing action 0");
}

TEST_CASE("a command without a required string is refused with a message naming it", "[codec][command]") {
  auto no_id = codec::parse_command(cmd([&](Parts& p) {
                                      p.command_id = false;
                                      p.type = fc::Action::Flush;
                                    }),
                                    kGw);
  REQUIRE_FALSE(no_id.ok());
  CHECK(no_id.error() == "command without command_id");
  CHECK(codec::command_id_of(cmd([&](Parts& p) {
          p.command_id = false;
          p.type = fc::Action::Flush;
        })).empty());
  auto no_gw = codec::parse_command(cmd([&](Parts& p) {
                                      p.gateway_id = false;
                                      p.type = fc::Action::Flush;
                                    }),
                                    kGw);
  REQUIRE_FALSE(no_gw.ok());
  CHECK(no_gw.error() == "command without gateway_id");
  auto empty_id = codec::parse_command(cmd([&](Parts& p) {
                                         p.type = fc::Action::Flush;
                                         p.id = "";
                                       }),
                                       kGw);
  REQUIRE_FALSE(empty_id.ok());
  CHECK(empty_id.error() == "command_id must be 1-64 bytes");
  auto long_gw = codec::parse_command(cmd([&](Parts& p) {
                                        p.type = fc::Action::Flush;
                                        p.gateway = std::string(33, 'g');
                                      }),
                                      kGw);
  REQUIRE_FALSE(long_gw.ok());
  CHECK(long_gw.error() == "command gateway_id of 33 bytes > 32");
}

TEST_CASE("optional command strings: absent means all and over-long is refused", "[codec][command]") {
  // Absent unit_id / source_id: documented as "every unit" / "the gateway" (schema/command.fbs).
  auto all = codec::parse_command(cmd([&](Parts& p) { p.type = fc::Action::SetIntervals; }), kGw);
  REQUIRE(all.ok());
  CHECK(std::get<codec::SetIntervals>(all->action).unit_id.empty());
  auto gw = codec::parse_command(cmd([&](Parts& p) { p.type = fc::Action::RequestPosition; }), kGw);
  REQUIRE(gw.ok());
  CHECK(std::get<codec::RequestPosition>(gw->action).source_id.empty());
  auto one = codec::parse_command(cmd([&](Parts& p) {
                                    p.type = fc::Action::SetIntervals;
                                    p.inner = "tcu-0002";
                                  }),
                                  kGw);
  REQUIRE(one.ok());
  CHECK(std::get<codec::SetIntervals>(one->action).unit_id == "tcu-0002");

  std::string long_id(33, 'u');
  auto bad_unit = codec::parse_command(cmd([&](Parts& p) {
                                         p.type = fc::Action::SetIntervals;
                                         p.inner = long_id.c_str();
                                       }),
                                       kGw);
  REQUIRE_FALSE(bad_unit.ok());
  CHECK(bad_unit.error() == "SetIntervals: unit_id of 33 bytes > 32");
  auto bad_src = codec::parse_command(cmd([&](Parts& p) {
                                        p.type = fc::Action::RequestPosition;
                                        p.inner = long_id.c_str();
                                      }),
                                      kGw);
  REQUIRE_FALSE(bad_src.ok());
  CHECK(bad_src.error() == "RequestPosition: source_id of 33 bytes > 32");
}

TEST_CASE("encode_command and parse_command round-trip every action", "[codec][command]") {
  std::vector<codec::Action> actions = {codec::SetIntervals{"tcu-1", 30, 120},
                                        codec::RequestPosition{""},
                                        codec::Flush{},
                                        codec::GetConfig{},
                                        codec::ExpectSeal{"MSKU1234565", "SL-1", 3, {"yangshan-1", "waigaoqiao-2"}},
                                        codec::PairUnit{"tcu-1", ""},
                                        codec::ReplaceZones{"{}", std::string(64, 'a')}};
  for (const auto& a : actions) {
    codec::Command c{"c-42", kGw, 1795000000000ull, a};
    auto back = codec::parse_command(codec::encode_command(c), kGw);
    REQUIRE(back.ok());
    CHECK(back->command_id == "c-42");
    CHECK(back->action.index() == a.index());
  }
}

TEST_CASE("malformed custody commands are refused with a message naming the field", "[codec][command]") {
  const std::string long_zone(65, 'z');
  struct Case {
    const char* what;
    codec::Action action;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"no container", codec::ExpectSeal{"", "SL-1", 0, {}}, "ExpectSeal without container_id"},
      {"container too long", codec::ExpectSeal{"MSKU12345650", "SL-1", 0, {}},
       "ExpectSeal: container_id of 12 bytes > 11"},
      {"seal too long", codec::ExpectSeal{"MSKU1234565", std::string(33, 's'), 0, {}},
       "ExpectSeal: seal_id of 33 bytes > 32"},
      {"class 4", codec::ExpectSeal{"MSKU1234565", "SL-1", 4, {}},
       "ExpectSeal: seal_class 4 is not an ISO 17712 class (0 unknown, 1 indicative, 2 security, 3 high security)"},
      {"17 zones", codec::ExpectSeal{"MSKU1234565", "SL-1", 0, std::vector<std::string>(17, "z")},
       "ExpectSeal: 17 allowed_zones > 16"},
      {"empty zone", codec::ExpectSeal{"MSKU1234565", "SL-1", 0, {""}}, "ExpectSeal: an empty allowed zone id"},
      {"zone too long", codec::ExpectSeal{"MSKU1234565", "SL-1", 0, {long_zone}},
       "ExpectSeal: an allowed zone id of 65 bytes > 64"},
      {"no unit", codec::PairUnit{"", "MSKU1234565"}, "PairUnit without unit_id"},
      {"unit too long", codec::PairUnit{std::string(33, 'u'), ""}, "PairUnit: unit_id of 33 bytes > 32"},
      {"pair container too long", codec::PairUnit{"u", "MSKU12345650"}, "PairUnit: container_id of 12 bytes > 11"},
      {"short sha256", codec::ReplaceZones{"{}", "abc"},
       "ReplaceZones: sha256 must be the 64 hex digits of the geojson's SHA-256"},
      {"sha256 too long", codec::ReplaceZones{"{}", std::string(65, 'a')}, "ReplaceZones: sha256 of 65 bytes > 64"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto r = codec::parse_command(codec::encode_command(codec::Command{"c-1", kGw, 0, c.action}), kGw);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == c.error);
  }
}

TEST_CASE("only ReplaceZones may exceed 4096 bytes, up to its own bound", "[codec][command]") {
  std::string geojson(100000, ' ');
  auto zones = codec::encode_command(codec::Command{"c-1", kGw, 0, codec::ReplaceZones{geojson, std::string(64, 'a')}});
  REQUIRE(zones.size() > codec::kMaxCommandBytes);
  CHECK(codec::parse_command(zones, kGw).ok());
  auto big = codec::encode_command(
      codec::Command{"c-1", kGw, 0, codec::ReplaceZones{std::string(codec::kMaxZonesGeojsonBytes + 1, ' '), std::string(64, 'a')}});
  auto refused = codec::parse_command(big, kGw);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error() == "ReplaceZones: geojson of 262145 bytes > 262144");
  auto huge = codec::encode_command(
      codec::Command{"c-1", kGw, 0, codec::ReplaceZones{std::string(codec::kMaxZonesCommandBytes, ' '), std::string(64, 'a')}});
  auto too_large = codec::parse_command(huge, kGw);
  REQUIRE_FALSE(too_large.ok());
  CHECK(too_large.error().rfind("command too large: ", 0) == 0);
  // Any other action over 4096 bytes is refused as before.
  auto other = codec::encode_command(codec::Command{"c-1", kGw, 0, codec::SetIntervals{std::string(5000, 'u'), 30, 0}});
  auto refused_other = codec::parse_command(other, kGw);
  REQUIRE_FALSE(refused_other.ok());
  CHECK(refused_other.error() == "command too large: " + std::to_string(other.size()) + " bytes > 4096");
}
