// The one rule for ids that become MQTT topic levels (site and gateway ids in
// eport/v1/<site>/<gateway>/..., unit ids from the firmware HELLO). A clustered
// broker (NATS's MQTT gateway) drops the connection on a topic level with '.'
// or a space, and the client then resends that message after every reconnect,
// for ever; so such ids are refused where they enter: the config, the HELLO
// and the broker-config inventory (broker-config/lib/eport_broker/inventory.py
// implements the same rule). See docs/topics.md.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace eport::model {

// Longest site or gateway id, in bytes. Unit ids have their own limit (32, the
// HELLO's field size), passed as max_length.
inline constexpr std::size_t kMaxTopicIdLength = 64;

// A topic-safe id is 1..max_length bytes, every byte printable ASCII
// (0x21..0x7E) and none of '+' '#' '/' (MQTT wildcards and level separator)
// or '.' '*' '>' (NATS subject separator and wildcards).
//
// Empty when `id` is topic-safe; otherwise why not, naming the offending byte
// and its position, e.g. "contains '.' at byte 4 (not allowed: + # / . * >
// space, control and non-ASCII bytes)" or "is empty" or "is 70 bytes long (at
// most 64)". A byte that is not printable is shown as \xNN, never raw.
std::string topic_id_problem(std::string_view id, std::size_t max_length = kMaxTopicIdLength);

// `id` in double quotes for a message, bytes outside 0x20..0x7E (and '"',
// '\\') escaped as \xNN, so an error never carries raw control bytes.
std::string quoted_id(std::string_view id);

}  // namespace eport::model
