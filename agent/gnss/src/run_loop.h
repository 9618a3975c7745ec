// The loop shared by the serial and gpsd sources: poll until stop is
// requested or the source fails, and hand out the open epoch either way.
// Private to the gnss library.
#pragma once

#include <chrono>
#include <optional>
#include <stop_token>

#include "eport/model/result.h"

namespace eport::gnss::detail {

template <class Source>
std::optional<Error> run_until_stopped(Source& source, std::stop_token stop, std::chrono::milliseconds poll) {
  while (!stop.stop_requested()) {
    auto r = source.poll_once(poll);
    if (!r) {
      source.flush();
      return Error{r.error()};
    }
  }
  source.flush();
  return std::nullopt;
}

}  // namespace eport::gnss::detail
