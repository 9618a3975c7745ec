// The custody event engine: runs the custody rules (pairing, geofences,
// motion, reefer excursions; docs/custody-events.md) over every unit reading
// as the outbox stores it, and stores the events it derives in the same
// transaction, as readings of the gateway's custody source
// (model::custody_source_id) with their own seq. Each source's detector
// state is written in that transaction too, so a kill -9 at any moment
// neither repeats nor loses an event, and replaying the same readings gives
// the same events byte for byte. A store::Deriver: ingest hands it to
// Outbox::append(); it runs on the ingest thread under the outbox's lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "eport/custody/excursion.h"
#include "eport/custody/motion.h"
#include "eport/events/reporting.h"
#include "eport/geofence/tracker.h"
#include "eport/geofence/zones.h"
#include "eport/model/reading.h"
#include "eport/model/result.h"
#include "eport/store/outbox.h"

namespace eport::events {

// [custody] (config_keys.h); every default is here.
struct EngineOptions {
  bool enabled = false;    // custody.enabled
  std::string zones_file;  // custody.zones_file: GeoJSON zones (docs/geofences.md); "": no geofences
  custody::MotionOptions motion;
  custody::ExcursionOptions excursion;
  std::string gateway_id;          // the custody source is model::custody_source_id(gateway_id)
  model::PriorityRules priority;   // classes of the derived events (priority.custody_*)
  ReportingOptions reporting;      // adaptive reporting (reporting.h)
};

// Health figures since the engine was built.
struct EngineCounters {
  std::uint64_t readings = 0;        // unit readings the rules ran over
  std::uint64_t events = 0;          // events derived (committed)
  std::uint64_t rollbacks = 0;       // transactions rolled back: their events and state forgotten
  std::uint64_t undecodable = 0;     // stored bodies that did not decode (skipped)
  std::uint64_t bad_state = 0;       // saved state rows that did not restore (the source starts afresh)
  std::uint64_t by_code[9] = {};     // committed events per model::EventCode
  std::uint64_t profile_changes = 0; // adaptive reporting: committed profile changes handed to the sink
};

class Engine final : public store::Deriver {
 public:
  // zones may be null (no geofences). saved: the store's derived state
  // (Outbox::derived_state()); last_event_seq: the store's last seq of the
  // custody source.
  Engine(EngineOptions options, std::shared_ptr<const geofence::ZoneSet> zones, const store::DerivedState& saved,
         std::uint64_t last_event_seq);

  void stored(const store::Record& r, std::vector<store::Record>& out) override;
  void state_changes(store::DerivedState& out) override;
  void finished(bool committed) override;

  const std::string& source_id() const { return source_id_; }
  const std::string& zones_version() const;  // "" without zones
  EngineCounters counters() const;  // any thread
  // The container a unit is paired with ("" if none known).
  std::string paired_container(const std::string& unit) const;
  // Adaptive reporting (reporting.h): where committed profile changes go,
  // and each unit's current profile (for the unit server at start). Set the
  // sink before the first append; profiles() on the ingest thread or before
  // it runs.
  void on_profile(ProfileSink sink) { reporting_.set_sink(std::move(sink)); }
  std::map<std::string, custody::Profile> profiles() const { return reporting_.current(); }

 private:
  struct Undo;  // a source's state as the last commit left it
  void touch(const std::string& unit);
  void emit(const model::Reading& cause, model::CustodyEvent e, std::uint64_t time_utc_ms,
            const std::string& container, std::vector<store::Record>& out);
  std::vector<std::uint8_t> save(const std::string& unit) const;
  bool restore(const std::string& unit, std::span<const std::uint8_t> bytes);

  EngineOptions opt_;
  std::string source_id_;
  std::shared_ptr<const geofence::ZoneSet> zones_;
  geofence::Tracker geofences_;
  custody::MotionDetector motion_;
  custody::ExcursionDetector excursion_;
  Reporting reporting_;                        // adaptive reporting: its own file, reporting.cpp
  std::map<std::string, std::string> paired_;  // unit -> container
  std::uint64_t event_seq_ = 0;                // last seq given to an event
  // This transaction: the units whose state it changed, their state before
  // it, the event seq before it, and the events derived in it.
  std::map<std::string, std::vector<std::uint8_t>> undo_;
  std::uint64_t undo_event_seq_ = 0;
  std::vector<model::EventCode> pending_codes_;
  mutable std::mutex counters_mu_;  // counters_ are read by the health message's thread
  EngineCounters counters_;
};

// The prefix of the store's state row keys ("custody/<unit>").
inline constexpr std::string_view kStateKeyPrefix = "custody/";

}  // namespace eport::events
