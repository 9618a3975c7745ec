// [ingest] Group commit over a real outbox in a temporary file: readings that
// arrive within commit_interval of the first are committed in one
// transaction and not before the interval has passed; commit_max_readings
// readings commit at once; every reading's outcome is reported once, in
// submission order, after its commit; a reading the store refuses is
// reported refused, and so is every later reading of the same unit in that
// commit, while other units' readings go on being stored.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/ingest/ingest.h"
#include "eport/store/outbox.h"
#include "test_util.h"

using namespace eport;
using namespace std::chrono_literals;
using ingest::Outcome;
using Clock = std::chrono::steady_clock;

namespace {

struct Done {
  std::uint64_t token;
  Outcome outcome;
  Clock::time_point at;
};

// Records outcomes (on the ingest thread) for the test thread to wait on.
class Sink : public ingest::CompletionSink {
 public:
  void completed(std::uint64_t token, Outcome outcome) override {
    std::lock_guard l(mu_);
    done_.push_back({token, outcome, Clock::now()});
  }
  void batch_done() override {
    {
      std::lock_guard l(mu_);
      ++batches_;
    }
    cv_.notify_all();
  }
  // Waits until n outcomes are in (at most `timeout`); returns them all.
  std::vector<Done> wait_for(std::size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, timeout, [&] { return done_.size() >= n; });
    return done_;
  }
  std::vector<Done> now() {
    std::lock_guard l(mu_);
    return done_;
  }
  int batches() {
    std::lock_guard l(mu_);
    return batches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Done> done_;
  int batches_ = 0;
};

model::Reading door(const std::string& unit, std::uint64_t seq) {
  model::Reading r;
  r.source_id = unit;
  r.container_id = "MSKU1234565";
  r.seq = seq;
  r.time_utc_ms = 1'800'000'000'000 + seq;
  r.payload = model::DoorEvent{model::DoorState::kClosed};
  return r;
}

model::Reading seal(const std::string& unit, std::uint64_t seq) {
  auto r = door(unit, seq);
  r.payload = model::SealEvent{std::string(32, 'S'), model::SealState::kSealed};
  return r;
}

std::unique_ptr<store::Outbox> open(const test::TempDir& dir, std::uint64_t max_bytes = 256ull << 20) {
  store::OutboxOptions o;
  o.path = dir.file("outbox.db");
  o.min_free_bytes = 0;
  o.max_bytes = max_bytes;
  o.when_full = store::WhenFull::kRefuse;
  o.source_row_bytes = 0;
  auto ob = store::Outbox::open(o);
  REQUIRE(ob.ok());
  return std::move(ob).value();
}

ingest::IngestOptions options(std::chrono::milliseconds interval, std::size_t max_readings) {
  ingest::IngestOptions o;
  o.commit_interval = interval;
  o.commit_max_readings = max_readings;
  return o;
}

// The stats once `commits` commits are counted (they are counted just after
// the outcomes are reported), or after 5 s.
ingest::IngestStats stats_after(const ingest::Ingest& in, std::uint64_t commits) {
  auto until = Clock::now() + 5s;
  while (in.stats().commits < commits && Clock::now() < until) std::this_thread::sleep_for(1ms);
  return in.stats();
}

std::vector<std::uint64_t> tokens(const std::vector<Done>& done) {
  std::vector<std::uint64_t> t;
  for (const auto& d : done) t.push_back(d.token);
  return t;
}

}  // namespace

TEST_CASE("readings arriving within commit_interval commit together, not before it has passed", "[ingest]") {
  test::TempDir dir;
  auto ob = open(dir);
  int committed = 0;
  ingest::Ingest in(options(400ms, 1000), *ob, [&] { ++committed; });
  in.start();
  Sink sink;
  auto t0 = Clock::now();
  for (std::uint64_t s = 1; s <= 3; ++s) REQUIRE(in.submit(door("u-1", s), model::Priority::kEvent, &sink, s));
  auto done = sink.wait_for(3);
  REQUIRE(done.size() == 3);
  CHECK(done.front().at - t0 >= 400ms);  // the window was waited out
  CHECK(tokens(done) == std::vector<std::uint64_t>{1, 2, 3});
  for (const auto& d : done) CHECK(d.outcome == Outcome::kStored);
  CHECK(stats_after(in, 1).commits == 1);
  CHECK(sink.batches() == 1);
  CHECK(ob->stats().total_rows() == 3);
  in.stop();
  CHECK(committed == 1);  // on_committed, once per commit that stored something
}

TEST_CASE("commit_max_readings readings commit at once; the rest waits for the interval or stop()", "[ingest]") {
  test::TempDir dir;
  auto ob = open(dir);
  ingest::Ingest in(options(30s, 4), *ob, nullptr);
  in.start();
  Sink sink;
  auto t0 = Clock::now();
  REQUIRE(in.submit(door("u-1", 1), model::Priority::kEvent, &sink, 1));
  std::this_thread::sleep_for(100ms);  // the ingest thread is in its 30 s window now
  for (std::uint64_t s = 2; s <= 9; ++s) REQUIRE(in.submit(door("u-1", s), model::Priority::kEvent, &sink, s));
  auto done = sink.wait_for(8);
  REQUIRE(done.size() == 8);  // two full batches, without waiting 30 s
  CHECK(Clock::now() - t0 < 10s);
  CHECK(stats_after(in, 2).commits == 2);
  std::this_thread::sleep_for(200ms);
  CHECK(sink.now().size() == 8);  // the ninth waits for more company
  CHECK(in.queued() == 1);
  in.stop();  // commits what it holds
  done = sink.now();
  REQUIRE(done.size() == 9);
  CHECK(tokens(done) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(in.stats().commits == 3);
  CHECK(in.stats().stored == 9);
}

TEST_CASE("outcomes are reported in submission order, to each reading's own sink", "[ingest]") {
  test::TempDir dir;
  auto ob = open(dir);
  ingest::Ingest in(options(300ms, 1000), *ob, nullptr);
  in.start();
  Sink a, b;
  // Interleaved units; u-1 seq 1 resent within the same commit.
  REQUIRE(in.submit(door("u-1", 1), model::Priority::kEvent, &a, 10));
  REQUIRE(in.submit(door("u-2", 1), model::Priority::kEvent, &b, 20));
  REQUIRE(in.submit(door("u-1", 2), model::Priority::kEvent, &a, 11));
  REQUIRE(in.submit(door("u-1", 1), model::Priority::kEvent, &a, 12));
  REQUIRE(in.submit(door("u-2", 2), model::Priority::kAlarm, &b, 21));
  REQUIRE(in.submit(door("u-3", 7), model::Priority::kTelemetry, &a, 13));
  auto da = a.wait_for(4);
  auto db = b.wait_for(2);
  REQUIRE(da.size() == 4);
  REQUIRE(db.size() == 2);
  CHECK(tokens(da) == std::vector<std::uint64_t>{10, 11, 12, 13});
  CHECK(tokens(db) == std::vector<std::uint64_t>{20, 21});
  CHECK(da[0].outcome == Outcome::kStored);
  CHECK(da[1].outcome == Outcome::kStored);
  CHECK(da[2].outcome == Outcome::kDuplicate);
  CHECK(da[3].outcome == Outcome::kStored);
  CHECK(db[0].outcome == Outcome::kStored);
  CHECK(db[1].outcome == Outcome::kStored);
  auto st = stats_after(in, 1);
  CHECK(st.commits == 1);
  CHECK(st.stored == 5);
  CHECK(st.duplicates == 1);

  // A resend after the commit is a duplicate too.
  REQUIRE(in.submit(door("u-2", 2), model::Priority::kAlarm, &b, 22));
  db = b.wait_for(3);
  REQUIRE(db.size() == 3);
  CHECK(db[2].token == 22);
  CHECK(db[2].outcome == Outcome::kDuplicate);
  in.stop();
}

TEST_CASE("a refused reading is reported refused with the later ones of its unit; other units go on",
          "[ingest]") {
  const auto small = codec::encode_reading(door("u-1", 1)).size() + store::kRowOverheadBytes;
  const auto big = codec::encode_reading(seal("u-1", 2)).size() + store::kRowOverheadBytes;
  REQUIRE(big > small);
  // Room for three small rows, not for two small and a big one.
  test::TempDir dir;
  auto ob = open(dir, 3 * small);
  ingest::Ingest in(options(300ms, 1000), *ob, nullptr);
  in.start();
  Sink sink;
  REQUIRE(in.submit(door("u-1", 1), model::Priority::kEvent, &sink, 1));  // stored
  REQUIRE(in.submit(door("u-2", 1), model::Priority::kEvent, &sink, 2));  // stored
  REQUIRE(in.submit(seal("u-1", 2), model::Priority::kEvent, &sink, 3));  // does not fit: refused
  REQUIRE(in.submit(door("u-1", 3), model::Priority::kEvent, &sink, 4));  // fits, but behind a refused one
  REQUIRE(in.submit(door("u-2", 2), model::Priority::kEvent, &sink, 5));  // fits: stored
  auto done = sink.wait_for(5);
  REQUIRE(done.size() == 5);
  CHECK(tokens(done) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
  CHECK(done[0].outcome == Outcome::kStored);
  CHECK(done[1].outcome == Outcome::kStored);
  CHECK(done[2].outcome == Outcome::kRefused);
  CHECK(done[3].outcome == Outcome::kRefused);
  CHECK(done[4].outcome == Outcome::kStored);
  auto st = stats_after(in, 1);
  CHECK(st.commits == 1);
  CHECK(st.stored == 3);
  CHECK(st.refused == 2);
  CHECK(ob->last_seq("u-1") == 1);  // the unit resends from seq 2
  in.stop();
}

TEST_CASE("with commit_interval_max the window grows while readings keep arriving, up to that bound; "
          "a lone reading still waits commit_interval only",
          "[ingest]") {
  test::TempDir dir;
  auto ob = open(dir);
  auto o = options(50ms, 100000);
  o.commit_interval_max = 400ms;
  ingest::Ingest in(o, *ob, nullptr);
  in.start();
  Sink sink;
  // A lone reading: nothing else arrives, the window stays 50 ms.
  auto t0 = Clock::now();
  REQUIRE(in.submit(door("u-1", 1), model::Priority::kEvent, &sink, 1));
  auto done = sink.wait_for(1);
  REQUIRE(done.size() == 1);
  CHECK(done.front().at - t0 < 300ms);
  // A steady stream (a reading every 10 ms for 1 s): windows of up to
  // 400 ms, so about 3 commits, never one per 50 ms (about 20).
  auto base = stats_after(in, 1).commits;
  for (std::uint64_t s = 2; s <= 101; ++s) {
    REQUIRE(in.submit(door("u-1", s), model::Priority::kEvent, &sink, s));
    std::this_thread::sleep_for(10ms);
  }
  done = sink.wait_for(101);
  REQUIRE(done.size() == 101);
  auto commits = stats_after(in, base + 1).commits - base;
  INFO(commits << " commits for 100 readings over about 1 s");
  CHECK(commits >= 2);   // the bound holds: never one window for the whole second
  CHECK(commits <= 8);   // and it grew well beyond commit_interval
  in.stop();
}
