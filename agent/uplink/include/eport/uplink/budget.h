// The uplink's data budget: bytes allowed per UTC day and per UTC month, and a
// bandwidth cap. When a budget is used up only alarms are published; the rest
// waits in the outbox. Use is kept in the outbox's named values, so a restart
// does not reset it (a crash forgets at most the last 10 s of use).
// Time is passed in as UTC milliseconds, so tests can stand at any instant.
// Publisher-thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "eport/store/outbox.h"
#include "eport/uplink/publisher.h"

namespace eport::uplink {

// The "budget" member of the health message.
struct BudgetUsage {
  std::uint64_t day_used = 0;  // bytes this UTC day
  std::uint64_t day_limit = 0;
  std::uint64_t month_used = 0;  // bytes this UTC calendar month
  std::uint64_t month_limit = 0;
  std::uint64_t max_bytes_per_s = 0;
};

class Budget {
 public:
  Budget(const BudgetOptions& options, store::Outbox& outbox);

  // True when the day's or the month's budget is used up.
  bool allows_only_alarms(std::uint64_t now_utc_ms);
  // Records bytes sent (persisted).
  void spend(std::uint64_t bytes, std::uint64_t now_utc_ms);
  // How long to wait before sending `bytes` under the bandwidth cap.
  std::chrono::milliseconds delay_for(std::uint64_t bytes);
  // Use so far in the UTC day and month of now_utc_ms.
  BudgetUsage usage(std::uint64_t now_utc_ms);

 private:
  void roll(std::uint64_t now_utc_ms);

  BudgetOptions opt_;
  store::Outbox& outbox_;
  std::int64_t day_ = -1, month_ = -1;  // current UTC day number and year*12+month
  std::uint64_t day_used_ = 0, month_used_ = 0;
  double tokens_ = 0;  // bandwidth cap bucket, bytes
  std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point persisted_{};  // last write of the use to the store
};

}  // namespace eport::uplink
