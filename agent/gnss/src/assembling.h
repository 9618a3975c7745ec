// What SerialSource and GpsdSource share behind gnss::Source: their
// assembler under one mutex, flush() and counters(), and handing readings to
// the ReadingHandler after the lock is released (so the handler may call
// counters()). Private to the gnss library.
#pragma once

#include <mutex>
#include <utility>
#include <vector>

#include "eport/gnss/counters.h"
#include "eport/gnss/source.h"
#include "eport/model/reading.h"

namespace eport::gnss::detail {

template <class Assembler>
struct Assembling {
  template <class... Args>
  explicit Assembling(ReadingHandler handler, Args&&... args)
      : assembler(std::forward<Args>(args)...), on_reading(std::move(handler)) {}

  // Hands out `out` (call without holding mu) and empties it.
  void deliver(std::vector<model::Reading>& out) {
    for (auto& r : out) {
      if (on_reading) on_reading(std::move(r));
    }
    out.clear();
  }

  // Source::flush(): the open epoch's reading, if any.
  void flush() {
    std::vector<model::Reading> ready;
    {
      std::lock_guard lock(mu);
      if (auto r = assembler.flush()) ready.push_back(std::move(*r));
    }
    deliver(ready);
  }

  // Source::counters().
  GnssCounters counters() const {
    std::lock_guard lock(mu);
    return assembler.counters();
  }

  mutable std::mutex mu;  // guards assembler (and the serial source's framer)
  Assembler assembler;
  ReadingHandler on_reading;
};

}  // namespace eport::gnss::detail
