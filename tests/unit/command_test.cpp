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
        std::pair{fc::Action::Flush, "Flush"}, std::pair{fc::Action::GetConfig, "GetConfig"}}) {
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
  std::vector<codec::Action> actions = {codec::SetIntervals{"tcu-1", 30, 120}, codec::RequestPosition{""},
                                        codec::Flush{}, codec::GetConfig{}};
  for (const auto& a : actions) {
    codec::Command c{"c-42", kGw, 1795000000000ull, a};
    auto back = codec::parse_command(codec::encode_command(c), kGw);
    REQUIRE(back.ok());
    CHECK(back->command_id == "c-42");
    CHECK(back->action.index() == a.index());
  }
}
