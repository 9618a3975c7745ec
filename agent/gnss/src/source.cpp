// The loop shared by every gnss::Source: poll until stop is requested or the
// source fails, and hand out the open epoch either way.
#include "eport/gnss/source.h"

#include <utility>

namespace eport::gnss {

std::optional<Error> Source::run(std::stop_token stop, std::chrono::milliseconds poll) {
  while (!stop.stop_requested()) {
    auto r = poll_once(poll);
    if (!r) {
      flush();
      return Error{r.error()};
    }
  }
  flush();
  return std::nullopt;
}

}  // namespace eport::gnss
