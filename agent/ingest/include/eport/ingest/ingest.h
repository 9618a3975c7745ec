// Ingest: the group-commit stage between sources (units over the bridge, the
// gateway's GNSS) and the outbox. Sources submit readings; one thread commits
// them in batches (one SQLite transaction for up to commit_max_readings, or
// whatever arrived within commit_interval) and then reports each reading's
// outcome, so that a source acknowledges a reading only once it is durable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "eport/model/reading.h"
#include "eport/store/outbox.h"

namespace eport::ingest {

enum class Outcome {
  kStored,     // committed: acknowledge it
  kDuplicate,  // already stored earlier (a resend): acknowledge it
  kRefused,    // not stored: the store is full for its class (backpressure); resend later
  kFailed,     // not stored (store error): do not acknowledge; the unit resends
};

// Receives outcomes on the ingest thread, once per submitted reading, in
// submission order. Must not block. A source implements it once and must
// outlive the Ingest (or at least every reading it submitted).
class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  virtual void completed(std::uint64_t token, Outcome outcome) = 0;
  // After a batch of completed() calls: a chance to wake the source's thread.
  virtual void batch_done() {}
};

struct IngestOptions {
  std::chrono::milliseconds commit_interval{10};
  std::size_t commit_max_readings = 2000;
  std::size_t queue_limit = 100000;  // readings waiting for a commit; submit() fails beyond
  // Longest a transaction may wait for readings while they keep arriving:
  // after commit_interval, the window is extended by commit_interval at a
  // time as long as readings arrived in the last one, up to this much in
  // all (fewer, larger commits under load: less flash wear, docs/store.md).
  // Zero, or not above commit_interval: off (the window is commit_interval).
  std::chrono::milliseconds commit_interval_max{0};
};

struct IngestStats {
  std::uint64_t submitted = 0;
  std::uint64_t stored = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t refused = 0;
  std::uint64_t failed = 0;
  std::uint64_t commits = 0;
  std::uint64_t derived = 0;  // records the deriver added (committed)
  std::uint64_t rejected_queue_full = 0;
};

class Ingest {
 public:
  // on_committed runs on the ingest thread after each successful commit
  // (the publisher's notify()). on_submit, if set, sees every reading as it
  // is submitted, on the submitting thread; it must be cheap.
  // deriver, if set, derives records in each commit's transaction
  // (store::Deriver; the custody event engine); it must outlive the Ingest.
  Ingest(IngestOptions options, store::Outbox& outbox, std::function<void()> on_committed,
         std::function<void(const model::Reading&)> on_submit = nullptr, store::Deriver* deriver = nullptr);
  ~Ingest();  // stop()
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  void start();
  // Commits what is queued, then stops the thread.
  void stop();

  // Queues a reading. `token` is handed back to `sink` with the outcome.
  // Returns false (and never calls the sink) when the queue is full.
  bool submit(model::Reading reading, model::Priority priority, CompletionSink* sink, std::uint64_t token);

  IngestStats stats() const;

  // Readings waiting for a commit. Sources stop reading from their inputs
  // while this is above high_water(), so that a burst waits in the units and
  // the kernel's socket buffers, not in the agent's memory.
  std::size_t queued() const;
  std::size_t high_water() const;  // commit_max_readings: one commit waits while one is written

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eport::ingest
