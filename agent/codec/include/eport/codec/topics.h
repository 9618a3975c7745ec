// The MQTT topic scheme, part of the contract with cloud subscribers
// (docs/topics.md). Every topic of a gateway lives under
// eport/v1/<site>/<gateway>/.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "eport/model/reading.h"

namespace eport::codec::topics {

inline constexpr std::string_view kRoot = "eport/v1";

// eport/v1/<site>/<gateway>/data/<class>: FlatBuffers envelopes, QoS 1.
std::string data(std::string_view site, std::string_view gateway, model::Priority priority);
// eport/v1/<site>/<gateway>/evidence: FlatBuffers envelopes (priority Alarm)
// holding only units' evidence checkpoints (docs/evidence.md section 13), QoS 1.
std::string evidence(std::string_view site, std::string_view gateway);
// eport/v1/<site>/<gateway>/status: retained JSON, birth and last will.
std::string status(std::string_view site, std::string_view gateway);
// eport/v1/<site>/<gateway>/health: JSON, periodic.
std::string health(std::string_view site, std::string_view gateway);
// eport/v1/<site>/<gateway>/cmd: FlatBuffers commands, cloud -> gateway.
std::string cmd(std::string_view site, std::string_view gateway);
// eport/v1/<site>/<gateway>/reply: JSON replies, gateway -> cloud.
std::string reply(std::string_view site, std::string_view gateway);
// Subscription filter for every gateway's data on every site.
inline constexpr std::string_view kAllData = "eport/v1/+/+/data/#";

struct DataTopic {
  std::string site;
  std::string gateway;
  model::Priority priority;
};
struct GatewayTopic {
  std::string site;
  std::string gateway;
};
// The site and gateway of any topic under eport/v1/<site>/<gateway>/...;
// nullopt if the topic is not one.
std::optional<GatewayTopic> parse_gateway(std::string_view topic);

// Parses a data topic; nullopt if the topic is not one.
std::optional<DataTopic> parse_data(std::string_view topic);

}  // namespace eport::codec::topics
