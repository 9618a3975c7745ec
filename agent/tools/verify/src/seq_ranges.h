// Seq ranges as eport-verify prints them ("1001..1300, 1302"): one writer for
// the report and the problems' details, as eport_verify.py's _ranges. Internal
// to eport::verify.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace eport::verify::detail {

inline std::string ranges(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& rs) {
  std::string out;
  for (const auto& [a, b] : rs) {
    if (!out.empty()) out += ", ";
    out += a == b ? std::to_string(a) : std::to_string(a) + ".." + std::to_string(b);
  }
  return out;
}

}  // namespace eport::verify::detail
