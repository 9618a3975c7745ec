// The custody event engine: runs the custody rules (pairing, seals,
// geofences, motion, reefer excursions; docs/custody-events.md) over every unit reading
// as the outbox stores it, and stores the events it derives in the same
// transaction, as readings of the gateway's custody source
// (model::custody_source_id) with their own seq. Each source's detector
// state is written in that transaction too, so a kill -9 at any moment
// neither repeats nor loses an event, and replaying the same readings gives
// the same events byte for byte. A store::Deriver: ingest hands it to
// Outbox::append(); it runs on the ingest thread under the outbox's lock.
// The custody commands (ExpectSeal, PairUnit, ReplaceZones) run through
// run_command(), in a transaction of their own on the same outbox, so their
// state and events are committed exactly like those of readings.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "eport/codec/command.h"
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
  std::uint64_t by_code[model::kEventCodeCount] = {};  // committed events per model::EventCode
  std::uint64_t commands = 0;          // custody commands carried out (committed)
  std::uint64_t commands_refused = 0;  // refused: nothing changed
  std::uint64_t units_forgotten = 0;   // units whose state was dropped with their store source (committed)
  std::uint64_t profile_changes = 0; // adaptive reporting: committed profile changes handed to the sink
};

// What the engine holds besides per-unit detector state (health).
struct EngineState {
  std::string zones_version;  // "" without zones
  std::string zones_origin;   // "file" (custody.zones_file), "command" (ReplaceZones) or "none"
  std::size_t zones = 0;
  std::size_t expected_seals = 0;   // containers with an ExpectSeal in force
  std::size_t paired_by_command = 0;
};

// The seal the cloud expects on a container (codec::ExpectSeal).
struct ExpectedSeal {
  std::string seal_id;
  model::SealClass seal_class = model::SealClass::kUnknown;
  std::vector<std::string> allowed_zones;  // opening inside one of these is no alarm
  bool operator==(const ExpectedSeal&) const = default;
};

// Bounds of the state commands build up: beyond them a command is refused.
inline constexpr std::size_t kMaxExpectedSeals = 100000;
inline constexpr std::size_t kMaxPairedByCommand = 100000;

class Engine final : public store::Deriver {
 public:
  // file_zones: custody.zones_file's zones, may be null (no geofences); a
  // ReplaceZones saved in the store wins over them. saved: the store's
  // derived state (Outbox::derived_state()); last_event_seq: the store's
  // last seq of the custody source.
  Engine(EngineOptions options, std::shared_ptr<const geofence::ZoneSet> file_zones,
         const store::DerivedState& saved, std::uint64_t last_event_seq);

  void stored(const store::Record& r, std::vector<store::Record>& out) override;
  void state_changes(store::DerivedState& out) override;
  void finished(bool committed) override;
  // A reading of a unit paired by command, without a container of its own,
  // gets that container.
  const store::Record& rewrite(const store::Record& r, store::Record& scratch) override;

  // Carries out an ExpectSeal, PairUnit or ReplaceZones command in a
  // transaction of its own on `outbox` (the one the engine derives for; any
  // thread): the JSON reply, or why it was refused (then nothing changed).
  Result<std::string> run_command(store::Outbox& outbox, const codec::Command& command);

  // Forgets the units the store forgot (MaintenanceReport::forgotten_sources,
  // store.source_expiry_s), in a transaction of its own on `outbox`: an
  // UNPAIRING for each one still paired (a unit that comes back on another
  // container is then never a silent switch) and its state row deleted.
  // Units the engine does not know are skipped. Returns how many it forgot.
  Result<std::size_t> forget_units(store::Outbox& outbox, const std::vector<std::string>& units);
  // The units the engine holds state of (for a start: those the store has
  // no source of any more are forget_units()'s).
  std::vector<std::string> units() const;

  const std::string& source_id() const { return source_id_; }
  EngineCounters counters() const;  // any thread
  EngineState state() const;        // any thread
  // The container a unit is paired with ("" if none known); any thread.
  std::string paired_container(const std::string& unit) const;
  // Adaptive reporting (reporting.h): where committed profile changes go,
  // and each unit's current profile (for the unit server at start). Set the
  // sink before the first append; profiles() on the ingest thread or before
  // it runs.
  void on_profile(ProfileSink sink) { reporting_.set_sink(std::move(sink)); }
  std::map<std::string, custody::Profile> profiles() const { return reporting_.current(); }

 private:
  class Transaction;
  void begin_change();
  void touch(const std::string& unit);
  void emit(const std::string& subject, model::TimeSource time_source, model::CustodyEvent e,
            std::uint64_t time_utc_ms, const std::string& container, std::vector<store::Record>& out);
  void check_seal(const model::Reading& r, const model::SealEvent& seal, std::vector<store::Record>& out);
  Result<std::string> apply(const codec::Command& command, std::vector<store::Record>& out);
  Result<std::string> expect_seal(const codec::ExpectSeal& c);
  Result<std::string> pair_unit(const codec::PairUnit& c, const std::string& command_id,
                                std::vector<store::Record>& out);
  Result<std::string> replace_zones(const codec::ReplaceZones& c, const std::string& command_id,
                                    std::vector<store::Record>& out);
  void set_zones(std::shared_ptr<const geofence::ZoneSet> zones, std::string origin);
  std::vector<std::uint8_t> save(const std::string& unit) const;
  bool restore(const std::string& unit, std::span<const std::uint8_t> bytes);

  EngineOptions opt_;
  std::string source_id_;
  std::shared_ptr<const geofence::ZoneSet> file_zones_;  // custody.zones_file's (never null)
  std::string zones_geojson_;  // the ReplaceZones text in force ("" for file_zones_); before zones_: its initializer sets it
  std::shared_ptr<const geofence::ZoneSet> zones_;       // in force (never null after the constructor)
  std::string zones_origin_;                             // EngineState::zones_origin
  geofence::Tracker geofences_;
  custody::MotionDetector motion_;
  custody::ExcursionDetector excursion_;
  Reporting reporting_;                                   // adaptive reporting: its own file, reporting.cpp
  std::map<std::string, std::string> paired_;             // unit -> container (guarded by read_mu_ for readers)
  std::map<std::string, std::string> paired_by_command_;  // unit -> container, PairUnit (guarded by read_mu_)
  std::map<std::string, ExpectedSeal> expected_seals_;    // container -> seal
  std::uint64_t event_seq_ = 0;                           // last seq given to an event
  // This transaction: what it changed and how it was before (restored on
  // rollback), the event seq before it, and the events derived in it.
  bool changing_ = false;
  std::map<std::string, std::vector<std::uint8_t>> undo_;  // unit -> save() before
  std::map<std::string, std::optional<std::string>> undo_paired_by_command_;
  std::map<std::string, std::optional<ExpectedSeal>> undo_seals_;
  std::optional<std::pair<std::shared_ptr<const geofence::ZoneSet>, std::string>> undo_zones_;  // zones, origin
  std::string undo_zones_geojson_;
  std::uint64_t undo_event_seq_ = 0;
  std::set<std::string> saved_units_;  // units with a custody/<unit> row (committed)
  std::set<std::string> forgotten_;  // units forgotten in this transaction (their rows deleted)
  std::vector<model::EventCode> pending_codes_;
  std::uint64_t pending_commands_ = 0;
  mutable std::mutex read_mu_;      // paired maps and zones, as other threads read them (the engine's
                                    // own thread writes them under it, reads them without)
  mutable std::mutex counters_mu_;  // counters_ are read by the health message's thread
  EngineCounters counters_;
};

// The store's state row keys: "custody/<unit>" (a unit's detector state),
// "pair/<unit>" (its PairUnit container), "seal/<container>" (its
// ExpectSeal), "zones" (the ReplaceZones GeoJSON in force).
inline constexpr std::string_view kStateKeyPrefix = "custody/";
inline constexpr std::string_view kPairKeyPrefix = "pair/";
inline constexpr std::string_view kSealKeyPrefix = "seal/";
inline constexpr std::string_view kZonesKey = "zones";

}  // namespace eport::events
