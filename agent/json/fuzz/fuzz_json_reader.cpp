// libFuzzer target for the bounded JSON reader: arbitrary bytes into
// json::parse() must never crash, overflow the stack, leak or hit UB; a
// refusal must say where ("at byte N (line L, column C)"), and a parsed
// document must respect the limits it was parsed under.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "eport/json/reader.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr std::size_t kDepth = 16;
constexpr std::size_t kValues = 4096;

// Walks the DOM; returns the number of values, checks depth and that every
// object's keys are unique and strings are valid.
std::size_t walk(const eport::json::Value& v, std::size_t depth) {
  check(depth <= kDepth);
  std::size_t n = 1;
  if (v.is_array()) {
    for (const auto& item : v.items()) n += walk(item, depth + 1);
  } else if (v.is_object()) {
    for (std::size_t i = 0; i < v.members().size(); ++i) {
      const auto& m = v.members()[i];
      check(v.find(m.key) == &v.members()[i].value);  // first match is itself: keys are unique
      n += walk(m.value, depth + 1);
    }
  } else if (v.is_number()) {
    check(!v.text().empty());
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  eport::json::ReaderLimits limits;
  limits.max_depth = kDepth;
  limits.max_values = kValues;
  auto r = eport::json::parse(in, limits);
  if (!r.ok()) {
    check(r.error().find(" at byte ") != std::string::npos || r.error().find("bytes (at most") != std::string::npos);
    return 0;
  }
  check(walk(*r, 0) <= kValues);
  return 0;
}
