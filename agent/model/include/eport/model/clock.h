// The wall clock in the unit every reading and envelope uses: milliseconds
// since the Unix epoch, UTC.
#pragma once

#include <chrono>
#include <cstdint>

namespace eport::model {

inline std::uint64_t now_utc_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace eport::model
