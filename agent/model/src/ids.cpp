// The topic-safe id rule of eport/model/ids.h: one function used by the
// config (site and gateway ids) and the bridge (unit ids from the HELLO).
#include "eport/model/ids.h"

#include <cstdio>

namespace eport::model {

namespace {

constexpr std::string_view kRule = "(not allowed: + # / . * > space, control and non-ASCII bytes)";

bool is_forbidden(unsigned char c) {
  if (c < 0x21 || c > 0x7E) return true;  // space, control, DEL, non-ASCII
  switch (c) {
    case '+': case '#': case '/':  // MQTT wildcards, level separator
    case '.': case '*': case '>':  // NATS separator, wildcards
      return true;
    default:
      return false;
  }
}

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned>(c));
  return buf;
}

}  // namespace

std::string topic_id_problem(std::string_view id, std::size_t max_length) {
  if (id.empty()) return "is empty";
  if (id.size() > max_length) {
    return "is " + std::to_string(id.size()) + " bytes long (at most " + std::to_string(max_length) + ")";
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    auto c = static_cast<unsigned char>(id[i]);
    if (!is_forbidden(c)) continue;
    std::string shown = (c >= 0x20 && c <= 0x7E) ? std::string(1, static_cast<char>(c)) : hex_byte(c);
    return "contains '" + shown + "' at byte " + std::to_string(i + 1) + " " + std::string(kRule);
  }
  return {};
}

std::string quoted_id(std::string_view id) {
  std::string out = "\"";
  for (char ch : id) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') {
      out += hex_byte(c);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace eport::model
