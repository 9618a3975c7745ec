// FixAssembler: epoch bookkeeping and the field-precedence rules listed in
// fix_assembler.h. The receiver's own UTC decides epochs and intervals, never
// the host clock, so a replayed log gives the same readings as the live run.
#include "eport/gnss/fix_assembler.h"

#include <algorithm>
#include <utility>

namespace eport::gnss {
namespace {

constexpr std::uint64_t kDayMs = 86'400'000ULL;

model::FixQuality fix_from_rmc_mode(std::optional<char> mode) {
  using model::FixQuality;
  switch (mode.value_or('A')) {
    case 'A': return FixQuality::kGps;
    case 'D': return FixQuality::kDgps;
    case 'E': return FixQuality::kEstimated;
    case 'F': return FixQuality::kRtkFloat;
    case 'M': return FixQuality::kManual;
    case 'P': return FixQuality::kPps;
    case 'R': return FixQuality::kRtkFixed;
    case 'S': return FixQuality::kSimulated;
    default: return FixQuality::kNoFix;  // 'N'
  }
}

std::optional<std::uint32_t> time_of(const Sentence& s) {
  if (const auto* g = std::get_if<Gga>(&s.body)) return g->time_ms;
  if (const auto* r = std::get_if<Rmc>(&s.body)) return r->time_ms;
  return std::nullopt;
}

}  // namespace

FixAssembler::FixAssembler(AssemblerOptions options, SeqSource next_seq)
    : options_(std::move(options)), next_seq_(std::move(next_seq)) {}

std::optional<model::Reading> FixAssembler::feed_line(std::string_view line) {
  ++counters_.lines;
  auto parsed = parse_sentence(line, options_.parse);
  if (!parsed) {
    ++counters_.rejected[static_cast<std::size_t>(parsed.error().reason)];
    return std::nullopt;
  }
  ++counters_.sentences;
  return feed(parsed.value());
}

std::optional<model::Reading> FixAssembler::feed(const Sentence& s) {
  std::optional<model::Reading> out;
  if (const auto t = time_of(s); t && (!epoch_ || epoch_->time_ms != *t)) {
    if (last_closed_time_ms_ == *t) {  // a straggler of the epoch already handed out
      ++counters_.stale_sentences;
      return std::nullopt;
    }
    out = close_epoch();
    epoch_.emplace();
    epoch_->time_ms = *t;
  }
  if (!epoch_) {  // time-less sentence before any epoch opened
    ++counters_.stale_sentences;
    return out;
  }
  Epoch& e = *epoch_;
  std::visit(
      [&e](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, Gga>) {
          e.gga = body;
        } else if constexpr (std::is_same_v<T, Rmc>) {
          e.rmc = body;
        } else if constexpr (std::is_same_v<T, Vtg>) {
          e.vtg = body;
        } else if constexpr (std::is_same_v<T, Gsa>) {
          // Multi-constellation receivers send one GSA per system (GN talker).
          e.gsa_used += body.used_count;
          if (body.fix_type) e.gsa_fix_type = std::max(e.gsa_fix_type.value_or(0), *body.fix_type);
          if (!e.gsa_hdop_centi) e.gsa_hdop_centi = body.hdop_centi;
        }
        // GSV: satellites in view are not part of a Position.
      },
      s.body);
  return out;
}

std::optional<model::Reading> FixAssembler::flush() { return close_epoch(); }

std::optional<model::Reading> FixAssembler::close_epoch() {
  if (!epoch_) return std::nullopt;
  const Epoch e = std::move(*epoch_);
  epoch_.reset();
  last_closed_time_ms_ = e.time_ms;
  ++counters_.epochs;

  // Resolve the epoch's absolute time first: a no-fix epoch still carries
  // the date that later date-less epochs need.
  std::optional<std::uint64_t> t;
  if (e.rmc && e.rmc->date) {
    t = utc_ms(*e.rmc->date, e.time_ms);
  } else if (last_epoch_utc_ms_) {
    const std::uint64_t midnight = *last_epoch_utc_ms_ - *last_epoch_utc_ms_ % kDayMs;
    t = midnight + e.time_ms;
    if (*t + kDayMs / 2 < *last_epoch_utc_ms_) *t += kDayMs;  // time of day wrapped
  }
  if (t) last_epoch_utc_ms_ = t;

  std::optional<Coord> coord;
  if (e.gga && e.gga->coord) {
    coord = e.gga->coord;
  } else if (e.rmc && e.rmc->coord) {
    coord = e.rmc->coord;
  }
  model::FixQuality fix = model::FixQuality::kNoFix;
  if (e.gga && e.gga->quality) {
    fix = *e.gga->quality;
  } else if (e.rmc) {
    fix = e.rmc->active ? fix_from_rmc_mode(e.rmc->mode) : model::FixQuality::kNoFix;
  } else if (e.gsa_fix_type >= 2) {
    fix = model::FixQuality::kGps;
  }
  if (!coord || (options_.require_fix && fix == model::FixQuality::kNoFix)) {
    ++counters_.skipped_no_fix;
    return std::nullopt;
  }
  if (!t) {
    ++counters_.skipped_no_date;
    return std::nullopt;
  }
  if (last_emitted_ms_) {
    if (*t < *last_emitted_ms_) {
      ++counters_.time_went_back;  // receiver reset or rollover bug: follow it
    } else if (*t - *last_emitted_ms_ < static_cast<std::uint64_t>(std::max<std::int64_t>(
                                             options_.min_interval.count(), 1))) {
      ++counters_.skipped_interval;
      return std::nullopt;
    }
  }

  model::Position p;
  p.lat_e7 = coord->lat_e7;
  p.lon_e7 = coord->lon_e7;
  p.fix = fix;
  if (e.vtg && e.vtg->speed_cm_s) {
    p.speed_cm_s = e.vtg->speed_cm_s;
  } else if (e.rmc) {
    p.speed_cm_s = e.rmc->speed_cm_s;
  }
  if (e.vtg && e.vtg->course_cdeg) {
    p.heading_cdeg = e.vtg->course_cdeg;
  } else if (e.rmc) {
    p.heading_cdeg = e.rmc->course_cdeg;
  }
  if (e.gga && e.gga->satellites) {
    p.satellites = *e.gga->satellites;
  } else {
    p.satellites = static_cast<std::uint8_t>(std::min(e.gsa_used, 255U));
  }
  p.hdop_centi = e.gga && e.gga->hdop_centi ? e.gga->hdop_centi : e.gsa_hdop_centi;

  model::Reading r;
  r.source_id = options_.source_id;
  r.seq = next_seq_ ? next_seq_() : 0;
  r.time_utc_ms = *t;
  r.payload = p;
  last_emitted_ms_ = *t;
  ++counters_.positions;
  return r;
}

}  // namespace eport::gnss
