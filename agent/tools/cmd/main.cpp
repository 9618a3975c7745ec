// eport-cmd: the reference cloud-side command sender. Publishes one command
// (schema/command.fbs) to eport/v1/<site>/<gateway>/cmd and prints the JSON
// reply from eport/v1/<site>/<gateway>/reply. Exit 0 if the reply says ok.
#include <mqtt/async_client.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/codec/command.h"
#include "eport/codec/topics.h"
#include "eport/flags/flags.h"
#include "tls_flags.h"
#include "eport/model/clock.h"
#include "eport/model/reading.h"

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "eport-cmd: %s\n"
               "usage: eport-cmd --broker URI --site SITE --gateway GW [--id COMMAND_ID] [--timeout S] ACTION\n"
               "                 [--ca-file FILE [--cert-file FILE --key-file FILE]]   (ssl:// brokers)\n"
               "  ACTION: get-config | flush | position [SOURCE] | intervals [--unit UNIT] [--position S] [--sensor S]\n"
               "        | expect-seal CONTAINER SEAL [--class indicative|security|high_security] [--allow ZONE]...\n"
               "        | expect-seal CONTAINER --none | pair UNIT CONTAINER | unpair UNIT\n"
               "        | zones FILE (a zones GeoJSON: docs/geofences.md) | zones --from-config\n",
               why.c_str());
  std::exit(64);
}

// Lowercase hex SHA-256 (the integrity check ReplaceZones carries).
std::string sha256_hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string hex;
  char two[3];
  for (auto b : digest) {
    std::snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  return hex;
}

}  // namespace

int main(int argc, char** argv) {
  std::string broker = "tcp://127.0.0.1:1883", site, gateway, id, action, unit, seal_class;
  std::vector<std::string> operands, allowed_zones;
  bool none = false, from_config = false;
  double timeout_s = 10;
  std::uint32_t pos_s = 0, sensor_s = 0;
  eport::tools::TlsFlags tls;
  eport::flags::Args args(argc, argv, [](const std::string& why) { usage(why); });
  while (args.more()) {
    const std::string a = args.next();
    if (a == "--broker") args.take(broker);
    else if (a == "--site") args.take(site);
    else if (a == "--gateway") args.take(gateway);
    else if (a == "--id") args.take(id);
    else if (a == "--timeout") args.take(timeout_s);
    else if (a == "--unit") args.take(unit);
    else if (a == "--position") args.take(pos_s);
    else if (a == "--sensor") args.take(sensor_s);
    else if (a == "--class") args.take(seal_class);
    else if (a == "--allow") args.take(allowed_zones.emplace_back());
    else if (a == "--none") none = true;
    else if (a == "--from-config") from_config = true;
    else if (tls.take(a, args)) continue;
    else if (action.empty()) action = a;
    else operands.push_back(a);
  }
  // The operands each action takes.
  auto operands_of = [&](std::size_t n) {
    if (operands.size() != n) usage(action + " takes " + std::to_string(n) + " operand(s), got " + std::to_string(operands.size()));
    return operands;
  };
  if (site.empty() || gateway.empty() || action.empty()) usage("--site, --gateway and an ACTION are required");
  if (auto problem = tls.problem(broker); !problem.empty()) usage(problem);
  eport::codec::Command cmd;
  cmd.command_id = id.empty() ? "cmd-" + std::to_string(::getpid()) + "-" +
                                    std::to_string(std::chrono::system_clock::now().time_since_epoch().count())
                              : id;
  cmd.gateway_id = gateway;
  cmd.issued_utc_ms = eport::model::now_utc_ms();
  if (action == "get-config") cmd.action = eport::codec::GetConfig{};
  else if (action == "flush") cmd.action = eport::codec::Flush{};
  else if (action == "position") cmd.action = eport::codec::RequestPosition{operands.empty() ? "" : operands_of(1)[0]};
  else if (action == "intervals") cmd.action = eport::codec::SetIntervals{unit, pos_s, sensor_s};
  else if (action == "expect-seal") {
    auto o = operands_of(none ? 1 : 2);
    auto cls = seal_class.empty() ? std::optional(eport::model::SealClass::kUnknown)
                                  : eport::model::seal_class_from_name(seal_class);
    if (!cls) usage("--class " + seal_class + ": indicative, security or high_security");
    cmd.action = eport::codec::ExpectSeal{o[0], none ? "" : o[1], static_cast<std::uint8_t>(*cls), allowed_zones};
  } else if (action == "pair") {
    auto o = operands_of(2);
    cmd.action = eport::codec::PairUnit{o[0], o[1]};
  } else if (action == "unpair") {
    cmd.action = eport::codec::PairUnit{operands_of(1)[0], ""};
  } else if (action == "zones") {
    if (from_config) {
      operands_of(0);
      cmd.action = eport::codec::ReplaceZones{};
    } else {
      auto path = operands_of(1)[0];
      std::ifstream in(path, std::ios::binary);
      if (!in) usage("cannot read " + path);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.empty()) usage(path + " is empty");
      cmd.action = eport::codec::ReplaceZones{text, sha256_hex(text)};
    }
  } else usage("unknown action " + action);
  if (action != "position" && action != "expect-seal" && action != "pair" && action != "unpair" &&
      action != "zones" && !operands.empty()) {
    usage("unexpected argument " + operands.front());
  }
  auto payload = eport::codec::encode_command(cmd);
  if (eport::tools::TlsFlags::is_tls_uri(broker)) eport::tools::TlsFlags::init_openssl();
  try {
    mqtt::async_client client(broker, "eport-cmd-" + std::to_string(::getpid()));
    mqtt::connect_options co;
    co.set_clean_session(true);
    tls.apply(broker, co);
    client.start_consuming();
    client.connect(co)->wait();
    client.subscribe(eport::codec::topics::reply(site, gateway), 1)->wait();
    client.publish(eport::codec::topics::cmd(site, gateway), payload.data(), payload.size(), 1, false)->wait();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      mqtt::const_message_ptr msg;
      if (!client.try_consume_message_for(&msg, std::chrono::milliseconds(200)) || !msg) continue;
      auto reply = msg->to_string();
      // Replies of other commands (other senders) are not ours.
      if (reply.find("\"command_id\":" + eport::codec::json_string(cmd.command_id)) == std::string::npos) continue;
      std::printf("%s\n", reply.c_str());
      client.disconnect()->wait();
      return reply.find("\"ok\":true") != std::string::npos ? 0 : 1;
    }
    std::fprintf(stderr, "eport-cmd: no reply within %.0f s\n", timeout_s);
    client.disconnect()->wait();
    return 2;
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "eport-cmd: %s: %s\n", broker.c_str(), e.what());
    return 1;
  }
}
