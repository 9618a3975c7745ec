// Day and month byte budgets (UTC calendar) and a token-bucket bandwidth cap.
#include "eport/uplink/budget.h"

#include <ctime>

#include "eport/log/log.h"

namespace eport::uplink {

namespace {
std::int64_t day_of(std::uint64_t utc_ms) { return static_cast<std::int64_t>(utc_ms / 86400000ull); }
std::int64_t month_of(std::uint64_t utc_ms) {
  std::time_t t = static_cast<std::time_t>(utc_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return static_cast<std::int64_t>(tm.tm_year) * 12 + tm.tm_mon;
}
}  // namespace

Budget::Budget(const BudgetOptions& options, store::Outbox& outbox) : opt_(options), outbox_(outbox) {
  day_ = outbox_.get_value("budget.day");
  day_used_ = static_cast<std::uint64_t>(outbox_.get_value("budget.day_used"));
  month_ = outbox_.get_value("budget.month");
  month_used_ = static_cast<std::uint64_t>(outbox_.get_value("budget.month_used"));
  tokens_ = static_cast<double>(opt_.max_bytes_per_s);
}

void Budget::roll(std::uint64_t now) {
  if (day_of(now) != day_) {
    day_ = day_of(now);
    day_used_ = 0;
  }
  if (month_of(now) != month_) {
    month_ = month_of(now);
    month_used_ = 0;
  }
}

bool Budget::allows_only_alarms(std::uint64_t now) {
  if (opt_.bytes_per_day == 0 && opt_.bytes_per_month == 0) return false;
  roll(now);
  return (opt_.bytes_per_day > 0 && day_used_ >= opt_.bytes_per_day) ||
         (opt_.bytes_per_month > 0 && month_used_ >= opt_.bytes_per_month);
}

void Budget::spend(std::uint64_t bytes, std::uint64_t now) {
  roll(now);
  bool was_open = !allows_only_alarms(now);
  day_used_ += bytes;
  month_used_ += bytes;
  tokens_ -= static_cast<double>(bytes);
  if (opt_.bytes_per_day == 0 && opt_.bytes_per_month == 0) return;
  // Persisted at most every 10 s (and when the budget runs out): each write is
  // a synced commit. A crash forgets at most 10 s of use.
  bool exhausted = was_open && allows_only_alarms(now);
  auto steady = std::chrono::steady_clock::now();
  if (exhausted || steady - persisted_ >= std::chrono::seconds(10)) {
    (void)outbox_.set_value("budget.day", day_);
    (void)outbox_.set_value("budget.day_used", static_cast<std::int64_t>(day_used_));
    (void)outbox_.set_value("budget.month", month_);
    (void)outbox_.set_value("budget.month_used", static_cast<std::int64_t>(month_used_));
    persisted_ = steady;
  }
  if (exhausted) {
    log::warn("uplink", "data budget used up (" + std::to_string(day_used_) + " bytes today, " +
                            std::to_string(month_used_) + " this month): only alarms go out until it renews");
  }
}

std::chrono::milliseconds Budget::delay_for(std::uint64_t bytes) {
  if (opt_.max_bytes_per_s == 0) return std::chrono::milliseconds(0);
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  double cap = static_cast<double>(opt_.max_bytes_per_s);
  tokens_ = std::min(cap, tokens_ + elapsed * cap);
  if (tokens_ >= static_cast<double>(bytes)) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<std::int64_t>((static_cast<double>(bytes) - tokens_) / cap * 1000.0) + 1);
}

BudgetUsage Budget::usage(std::uint64_t now) {
  roll(now);
  return BudgetUsage{day_used_, opt_.bytes_per_day, month_used_, opt_.bytes_per_month, opt_.max_bytes_per_s};
}

}  // namespace eport::uplink
