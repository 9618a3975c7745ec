// [uplink][budget] The data budget's UTC calendar: a day's use is forgotten
// at 00:00:00.000 UTC and not a millisecond earlier, a month's at the first
// of the next month (Dec 31 -> Jan 1 across the year, Feb 28 -> Feb 29 in a
// leap year stays in the month, Feb 28 -> Mar 1 otherwise; the same month a
// year later is a new one), and the use is kept in the outbox across a
// reopen. Alarms are exempt: allows_only_alarms() says when only they may go.
#include <catch2/catch.hpp>

#include <ctime>

#include "eport/store/outbox.h"
#include "eport/uplink/budget.h"
#include "test_util.h"

using namespace eport;

namespace {

// Milliseconds since the epoch of a UTC calendar time.
std::uint64_t utc_ms(int year, int month, int day, int h, int m, int s, int ms) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  return static_cast<std::uint64_t>(timegm(&tm)) * 1000 + static_cast<std::uint64_t>(ms);
}

std::unique_ptr<store::Outbox> open(const test::TempDir& dir) {
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.min_free_bytes = 0;
  auto ob = store::Outbox::open(o);
  REQUIRE(ob.ok());
  return std::move(ob).value();
}

uplink::BudgetOptions per_day(std::uint64_t bytes) {
  uplink::BudgetOptions o;
  o.bytes_per_day = bytes;
  return o;
}

uplink::BudgetOptions per_month(std::uint64_t bytes) {
  uplink::BudgetOptions o;
  o.bytes_per_month = bytes;
  return o;
}

}  // namespace

TEST_CASE("the day's budget renews at 00:00:00.000 UTC, not at 23:59:59.999", "[uplink][budget]") {
  test::TempDir dir;
  auto ob = open(dir);
  uplink::Budget b(per_day(1000), *ob);
  auto last_ms = utc_ms(2027, 6, 14, 23, 59, 59, 999);
  auto midnight = utc_ms(2027, 6, 15, 0, 0, 0, 0);
  REQUIRE(midnight == last_ms + 1);

  CHECK_FALSE(b.allows_only_alarms(utc_ms(2027, 6, 14, 0, 0, 0, 0)));
  b.spend(999, utc_ms(2027, 6, 14, 12, 0, 0, 0));
  CHECK_FALSE(b.allows_only_alarms(last_ms));
  b.spend(1, last_ms);
  CHECK(b.allows_only_alarms(last_ms));
  CHECK(b.usage(last_ms).day_used == 1000);

  CHECK_FALSE(b.allows_only_alarms(midnight));
  auto u = b.usage(midnight);
  CHECK(u.day_used == 0);
  CHECK(u.day_limit == 1000);
  CHECK(u.month_used == 1000);  // same month: kept
}

TEST_CASE("the month's budget renews on the first at 00:00:00.000 UTC, also across the year",
          "[uplink][budget]") {
  test::TempDir dir;
  auto ob = open(dir);
  uplink::Budget b(per_month(5000), *ob);
  b.spend(3000, utc_ms(2026, 12, 1, 0, 0, 0, 0));
  b.spend(2000, utc_ms(2026, 12, 31, 23, 59, 59, 999));
  CHECK(b.allows_only_alarms(utc_ms(2026, 12, 31, 23, 59, 59, 999)));
  CHECK(b.usage(utc_ms(2026, 12, 31, 23, 59, 59, 999)).month_used == 5000);

  auto new_year = utc_ms(2027, 1, 1, 0, 0, 0, 0);
  CHECK_FALSE(b.allows_only_alarms(new_year));
  CHECK(b.usage(new_year).month_used == 0);
  CHECK(b.usage(new_year).month_limit == 5000);
}

TEST_CASE("the same month a year later is a new month, also after a reopen", "[uplink][budget]") {
  test::TempDir dir;
  {
    auto ob = open(dir);
    uplink::Budget b(per_month(100), *ob);
    b.spend(100, utc_ms(2026, 6, 30, 12, 0, 0, 0));  // used up: persisted at once
    CHECK(b.allows_only_alarms(utc_ms(2026, 6, 30, 23, 59, 59, 999)));
  }
  auto ob = open(dir);
  uplink::Budget b(per_month(100), *ob);
  CHECK(b.allows_only_alarms(utc_ms(2026, 6, 30, 23, 59, 59, 999)));
  CHECK_FALSE(b.allows_only_alarms(utc_ms(2027, 6, 1, 0, 0, 0, 0)));
}

TEST_CASE("February 29 is in February: a leap year's budget renews on March 1", "[uplink][budget]") {
  test::TempDir dir;
  auto ob = open(dir);
  uplink::Budget b(per_month(100), *ob);
  b.spend(100, utc_ms(2028, 2, 28, 23, 59, 59, 999));
  CHECK(b.allows_only_alarms(utc_ms(2028, 2, 28, 23, 59, 59, 999)));
  CHECK(b.allows_only_alarms(utc_ms(2028, 2, 29, 0, 0, 0, 0)));  // still February
  CHECK(b.allows_only_alarms(utc_ms(2028, 2, 29, 23, 59, 59, 999)));
  CHECK_FALSE(b.allows_only_alarms(utc_ms(2028, 3, 1, 0, 0, 0, 0)));
}

TEST_CASE("in a common year the budget renews from February 28 straight to March 1", "[uplink][budget]") {
  test::TempDir dir;
  auto ob = open(dir);
  uplink::Budget b(per_month(100), *ob);
  auto last_ms = utc_ms(2027, 2, 28, 23, 59, 59, 999);
  b.spend(100, last_ms);
  CHECK(b.allows_only_alarms(last_ms));
  auto march = utc_ms(2027, 3, 1, 0, 0, 0, 0);
  REQUIRE(march == last_ms + 1);
  CHECK_FALSE(b.allows_only_alarms(march));
}

TEST_CASE("no budget never holds anything; the use is kept across a reopen", "[uplink][budget]") {
  test::TempDir dir;
  auto now = utc_ms(2027, 6, 14, 10, 0, 0, 0);
  {
    auto ob = open(dir);
    uplink::Budget unlimited(uplink::BudgetOptions{}, *ob);
    unlimited.spend(1ull << 40, now);
    CHECK_FALSE(unlimited.allows_only_alarms(now));
  }
  {
    auto ob = open(dir);
    uplink::Budget b(per_day(1000), *ob);
    b.spend(1000, now);  // used up: persisted at once
  }
  auto ob = open(dir);
  uplink::Budget again(per_day(1000), *ob);
  CHECK(again.allows_only_alarms(now + 1000));
  CHECK(again.usage(now).day_used == 1000);
  CHECK_FALSE(again.allows_only_alarms(utc_ms(2027, 6, 15, 0, 0, 0, 0)));
}
