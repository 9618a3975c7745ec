// Group commit: a queue of readings drained by one thread into outbox
// transactions; outcomes go back to each reading's source after the commit.
#include "eport/ingest/ingest.h"

#include <pthread.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/log/log.h"
#include "eport/model/clock.h"

namespace eport::ingest {

namespace {
using model::now_utc_ms;
}  // namespace

struct Ingest::Impl {
  struct Pending {
    store::Record record;
    CompletionSink* sink;
    std::uint64_t token;
  };

  IngestOptions opt;
  store::Outbox& outbox;
  std::function<void()> on_committed;
  std::function<void(const model::Reading&)> on_submit;
  store::Deriver* deriver = nullptr;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> queue;
  std::uint64_t arrived = 0;  // readings ever queued (the window watches it grow)
  bool running = false;
  bool stopping = false;
  IngestStats stats;
  std::thread thread;

  Impl(IngestOptions o, store::Outbox& ob, std::function<void()> cb, std::function<void(const model::Reading&)> os,
       store::Deriver* d)
      : opt(o), outbox(ob), on_committed(std::move(cb)), on_submit(std::move(os)), deriver(d) {}

  void run() {
    std::vector<Pending> batch;
    std::vector<store::Record> records;
    while (true) {
      {
        std::unique_lock l(mu);
        cv.wait(l, [&] { return stopping || !queue.empty(); });
        if (queue.empty() && stopping) return;
        // Group commit: once something is waiting, give others up to
        // commit_interval to join, unless the batch is already full.
        auto full = [&] { return stopping || queue.size() >= opt.commit_max_readings; };
        if (!full() && opt.commit_interval.count() > 0) {
          const auto start = std::chrono::steady_clock::now();
          auto seen = arrived;
          cv.wait_until(l, start + opt.commit_interval, full);
          // Under load (readings still arriving), lengthen the window one
          // commit_interval at a time up to commit_interval_max: each commit
          // costs at least a page on the device whatever it holds.
          const auto last = start + std::max(opt.commit_interval, opt.commit_interval_max);
          while (!full() && arrived != seen && std::chrono::steady_clock::now() < last) {
            seen = arrived;  // readings came in the last interval: give the next one a chance too
            cv.wait_until(l, std::min(std::chrono::steady_clock::now() + opt.commit_interval, last), full);
          }
        }
        std::size_t n = std::min(queue.size(), opt.commit_max_readings);
        batch.clear();
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      records.clear();
      records.reserve(batch.size());
      for (auto& p : batch) records.push_back(std::move(p.record));
      auto result = outbox.append(records, deriver);
      commit_outcomes(batch, result);
    }
  }

  void commit_outcomes(std::vector<Pending>& batch,
                       const Result<store::AppendResult>& result) {
    std::set<CompletionSink*> sinks;
    if (!result) {
      log::error("ingest", "commit of " + std::to_string(batch.size()) + " readings failed: " + result.error());
      for (auto& p : batch) p.sink->completed(p.token, Outcome::kFailed);
    } else {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        Outcome o = Outcome::kStored;
        if (result->outcome[i] == store::AppendOutcome::kDuplicate) o = Outcome::kDuplicate;
        if (result->outcome[i] == store::AppendOutcome::kRefused) o = Outcome::kRefused;
        batch[i].sink->completed(batch[i].token, o);
      }
    }
    for (auto& p : batch) sinks.insert(p.sink);
    for (auto* s : sinks) s->batch_done();
    {
      std::lock_guard l(mu);
      ++stats.commits;
      if (result) {
        stats.stored += result->stored;
        stats.duplicates += result->duplicates;
        stats.refused += result->refused;
        stats.derived += result->derived;
      } else {
        stats.failed += batch.size();
      }
    }
    if (result && result->stored > 0 && on_committed) on_committed();
  }

};

Ingest::Ingest(IngestOptions options, store::Outbox& outbox, std::function<void()> on_committed,
               std::function<void(const model::Reading&)> on_submit, store::Deriver* deriver)
    : impl_(std::make_unique<Impl>(options, outbox, std::move(on_committed), std::move(on_submit), deriver)) {}

Ingest::~Ingest() { stop(); }

void Ingest::start() {
  std::lock_guard l(impl_->mu);
  if (impl_->running) return;
  impl_->running = true;
  impl_->thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "ep-ingest");  // in top, perf and /proc/PID/task/*/comm
    impl_->run();
  });
}

void Ingest::stop() {
  {
    std::lock_guard l(impl_->mu);
    if (!impl_->running) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  std::lock_guard l(impl_->mu);
  impl_->running = false;
  impl_->stopping = false;
}

bool Ingest::submit(model::Reading reading, model::Priority priority, CompletionSink* sink, std::uint64_t token) {
  if (impl_->on_submit) impl_->on_submit(reading);
  store::Record rec;
  rec.source_id = reading.source_id;
  rec.seq = reading.seq;
  rec.priority = priority;
  rec.created_utc_ms = now_utc_ms();
  rec.body = codec::encode_reading(reading);
  {
    std::lock_guard l(impl_->mu);
    if (impl_->queue.size() >= impl_->opt.queue_limit) {
      ++impl_->stats.rejected_queue_full;
      return false;
    }
    impl_->queue.push_back({std::move(rec), sink, token});
    ++impl_->arrived;
    ++impl_->stats.submitted;
  }
  impl_->cv.notify_all();
  return true;
}

std::size_t Ingest::queued() const {
  std::lock_guard l(impl_->mu);
  return impl_->queue.size();
}

std::size_t Ingest::high_water() const { return impl_->opt.commit_max_readings; }

IngestStats Ingest::stats() const {
  std::lock_guard l(impl_->mu);
  return impl_->stats;
}

}  // namespace eport::ingest
