// Building and parsing the topic names of docs/topics.md.
#include "eport/codec/topics.h"

#include <vector>

namespace eport::codec::topics {

namespace {
std::string base(std::string_view site, std::string_view gateway) {
  std::string t(kRoot);
  t += '/';
  t += site;
  t += '/';
  t += gateway;
  return t;
}
}  // namespace

std::string data(std::string_view site, std::string_view gateway, model::Priority priority) {
  return base(site, gateway) + "/data/" + std::string(model::priority_name(priority));
}

std::string evidence(std::string_view site, std::string_view gateway) { return base(site, gateway) + "/evidence"; }

std::string status(std::string_view site, std::string_view gateway) { return base(site, gateway) + "/status"; }

std::string health(std::string_view site, std::string_view gateway) { return base(site, gateway) + "/health"; }
std::string cmd(std::string_view site, std::string_view gateway) { return base(site, gateway) + "/cmd"; }
std::string reply(std::string_view site, std::string_view gateway) { return base(site, gateway) + "/reply"; }

namespace {
std::vector<std::string_view> split(std::string_view topic) {
  std::vector<std::string_view> levels;
  std::size_t start = 0;
  while (true) {
    auto slash = topic.find('/', start);
    levels.push_back(topic.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return levels;
}
}  // namespace

std::optional<GatewayTopic> parse_gateway(std::string_view topic) {
  auto levels = split(topic);
  if (levels.size() < 5 || levels[0] != "eport" || levels[1] != "v1" || levels[2].empty() || levels[3].empty()) {
    return std::nullopt;
  }
  return GatewayTopic{std::string(levels[2]), std::string(levels[3])};
}

std::optional<DataTopic> parse_data(std::string_view topic) {
  auto levels = split(topic);
  if (levels.size() != 6 || levels[0] != "eport" || levels[1] != "v1" || levels[4] != "data") return std::nullopt;
  auto p = model::priority_from_name(levels[5]);
  if (!p || levels[2].empty() || levels[3].empty()) return std::nullopt;
  return DataTopic{std::string(levels[2]), std::string(levels[3]), *p};
}

}  // namespace eport::codec::topics
