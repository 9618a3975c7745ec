// The geofence tracker: deterministic zone ENTRY / EXIT per source from its
// position readings, on event time only (never the wall clock), so a backlog
// replayed at any speed and in any interleaving of sources gives the same
// transitions as live. The rules, with their numbers: docs/geofences.md.
//
// In short, per source and zone, for each fix in seq order:
// - a fix with seq <= the last processed one is a no-op (duplicate, resend);
//   a fix without a valid fix (FixQuality::kNoFix), or whose time is before
//   the last used fix's (stale), changes nothing (counted);
// - a fix whose HDOP is above the zone's max_hdop changes nothing for that
//   zone (a fix without HDOP is not gated);
// - hysteresis: a fix is "in" when more than buffer_m inside the boundary
//   (signed distance <= -buffer_m), "out" when more than buffer_m outside
//   (> +buffer_m), else in the band, where nothing changes;
// - outside -> pending on an "in" fix; pending -> inside, reporting ENTRY at
//   the time of the first "in" fix, on an "in" fix at least dwell_s later;
//   pending -> outside (nothing reported) on an "out" fix; inside -> outside,
//   reporting EXIT at the fix's time, on an "out" fix;
// - crossing: while outside, if the great-circle segment from the previous
//   used fix to this one (at most kMaxCrossingSegmentM long, both fixes
//   passing the zone's HDOP gate, this one not "in") passes more than
//   buffer_m deep into the zone, ENTRY and EXIT are reported at the times
//   interpolated where it crosses the boundary, flagged interpolated. Such
//   a crossing bypasses dwell_s: sparse fixes cannot show a stay.
// Thread-safety: one Tracker per thread (no internal locking).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eport/geofence/source_state.h"
#include "eport/geofence/zones.h"
#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::geofence {

enum class TransitionKind : std::uint8_t { kEntry = 0, kExit = 1 };
std::string_view transition_kind_name(TransitionKind k);  // "ENTRY", "EXIT"

struct Transition {
  std::string source_id;
  std::string zone_id;
  TransitionKind kind = TransitionKind::kEntry;
  std::uint64_t time_utc_ms = 0;  // event time (see the rules above), never the wall clock
  // The fixes that caused it: ENTRY after dwell: the first "in" fix .. the
  // fix that completed the dwell; EXIT: the "out" fix (first == last);
  // crossing: the fixes at the two ends of the segment; zone_removed: the
  // source's last processed seq (first == last).
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  bool interpolated = false;  // a crossing: time interpolated between two fixes
  bool zone_removed = false;  // an EXIT because the zone is no longer in the zone set
  bool operator==(const Transition&) const = default;
};

// One position reading of a source.
struct Fix {
  std::uint64_t seq = 0;
  std::uint64_t time_utc_ms = 0;
  model::Position position;
};

// Health figures since the Tracker was built (not part of any source's state).
struct TrackerCounters {
  std::uint64_t fixes = 0;          // every process() call with a position
  std::uint64_t duplicates = 0;     // seq <= the last processed seq: ignored
  std::uint64_t no_fix = 0;         // FixQuality::kNoFix: ignored
  std::uint64_t stale = 0;          // time before the last used fix: not used for transitions
  std::uint64_t hdop_gated = 0;     // fixes above the max_hdop of at least one nearby zone
  std::uint64_t entries = 0;        // ENTRY transitions, crossings included
  std::uint64_t exits = 0;          // EXIT transitions, crossings and zone_removed included
  std::uint64_t crossings = 0;      // interpolated ENTRY+EXIT pairs
  std::uint64_t zone_removed = 0;   // EXITs because a zone left the zone set
};

struct TrackerOptions {
  // false: test every zone on every fix instead of asking the spatial index
  // (the benchmark's baseline; the transitions are the same).
  bool use_spatial_index = true;
};

class Tracker {
 public:
  explicit Tracker(std::shared_ptr<const ZoneSet> zones, TrackerOptions options = {});

  // Processes one fix of source_id; appends the transitions it causes to
  // out, sorted by time, then zone id (an ENTRY after dwell carries the time
  // of its first "in" fix, so it can be older than transitions returned by
  // earlier calls). Fixes of one source must come in increasing seq order;
  // sources may interleave freely.
  void process(std::string_view source_id, const Fix& fix, std::vector<Transition>& out);
  std::vector<Transition> process(std::string_view source_id, const Fix& fix);
  // A reading of any kind: positions are processed, the rest is ignored.
  std::vector<Transition> process(const model::Reading& reading);

  // Puts a new zone set in force. Memberships of zones whose id is gone are
  // dropped; a source inside such a zone gets an EXIT flagged zone_removed
  // at the time of its last used fix (pending entries vanish silently). A
  // zone whose id remains keeps its memberships under its new shape and
  // rules. Returned sorted by source id, then zone id.
  std::vector<Transition> replace_zones(std::shared_ptr<const ZoneSet> zones);

  // The state of one source, to commit with the readings that changed it
  // (an unknown source gives the encoding of the empty state).
  std::vector<std::uint8_t> save_state(std::string_view source_id) const;
  const SourceState* state(std::string_view source_id) const;
  // Replaces the state of one source with a saved one. Memberships of zones
  // not in the current zone set are dropped as replace_zones() does, and
  // their zone_removed EXITs returned (commit them with the new state).
  [[nodiscard]] Result<std::vector<Transition>> restore_state(std::string_view source_id,
                                                              std::span<const std::uint8_t> bytes);
  void forget(std::string_view source_id);

  // The sources inside or pending in at least one zone (those whose state
  // replace_zones() may change), ascending.
  std::vector<std::string> sources_in_zones() const;
  const ZoneSet& zones() const { return *zones_; }
  std::shared_ptr<const ZoneSet> zone_set() const { return zones_; }
  const TrackerCounters& counters() const { return counters_; }
  std::size_t source_count() const { return sources_.size(); }

 private:
  void drop_removed_zones(std::string_view source_id, SourceState& s, std::vector<Transition>& out);

  std::shared_ptr<const ZoneSet> zones_;
  TrackerOptions options_;
  std::map<std::string, SourceState, std::less<>> sources_;
  TrackerCounters counters_;
  // Scratch buffers reused across calls (no allocation per fix once warm).
  std::vector<std::uint32_t> near_, along_, relevant_;
};

}  // namespace eport::geofence
