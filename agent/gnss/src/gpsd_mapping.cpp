// GpsdAssembler: gpsd doubles to the model's integers (rounded to nearest,
// halves away from zero by llround) and the same epoch, fix and interval rules
// as FixAssembler, keyed on gpsd's fix time.
#include "eport/gnss/gpsd_mapping.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace eport::gnss {
namespace {

std::optional<std::uint16_t> to_u16(double v, double scale) {
  if (!std::isfinite(v) || v < 0) return std::nullopt;
  const double s = v * scale;
  if (s > std::numeric_limits<std::uint16_t>::max()) return std::nullopt;
  return static_cast<std::uint16_t>(std::llround(s));
}

}  // namespace

model::FixQuality fix_from_gpsd(int mode, int status) {
  using model::FixQuality;
  if (mode < 2) return FixQuality::kNoFix;
  switch (status) {
    case 2: return FixQuality::kDgps;
    case 3: return FixQuality::kRtkFixed;
    case 4: return FixQuality::kRtkFloat;
    case 5:
    case 6: return FixQuality::kEstimated;
    case 7: return FixQuality::kManual;
    case 8: return FixQuality::kSimulated;
    case 9: return FixQuality::kPps;
    default: return FixQuality::kGps;  // 1, or 0 = not reported with a 2D/3D mode
  }
}

GpsdAssembler::GpsdAssembler(AssemblerOptions options, SeqSource next_seq)
    : options_(std::move(options)), next_seq_(std::move(next_seq)) {}

std::optional<model::Reading> GpsdAssembler::on_tpv(const GpsdTpv& tpv) {
  ++counters_.sentences;
  if (!tpv.time_utc_ms) {  // no time yet: nothing to key an epoch on
    ++counters_.skipped_no_date;
    return std::nullopt;
  }
  if (tpv_ && tpv_->time_utc_ms == tpv.time_utc_ms) {
    tpv_ = tpv;
    return std::nullopt;
  }
  if (last_closed_ms_ == tpv.time_utc_ms) {
    ++counters_.stale_sentences;
    return std::nullopt;
  }
  auto out = flush();
  tpv_ = tpv;
  sky_ = GpsdSky{};
  return out;
}

void GpsdAssembler::on_sky(const GpsdSky& sky) {
  ++counters_.sentences;
  if (!tpv_) {
    ++counters_.stale_sentences;
    return;
  }
  sky_ = sky;
}

std::optional<model::Reading> GpsdAssembler::flush() {
  if (!tpv_) return std::nullopt;
  const GpsdTpv tpv = *tpv_;
  tpv_.reset();
  last_closed_ms_ = tpv.time_utc_ms;
  ++counters_.epochs;
  const std::uint64_t t = *tpv.time_utc_ms;

  const model::FixQuality fix = fix_from_gpsd(tpv.mode, tpv.status);
  const bool has_coord = tpv.mode >= 2 && std::isfinite(tpv.lat_deg) && std::isfinite(tpv.lon_deg) &&
                         std::fabs(tpv.lat_deg) <= 90.0 && std::fabs(tpv.lon_deg) <= 180.0;
  if (!has_coord || (options_.require_fix && fix == model::FixQuality::kNoFix)) {
    ++counters_.skipped_no_fix;
    return std::nullopt;
  }
  if (last_emitted_ms_) {
    if (t < *last_emitted_ms_) {
      ++counters_.time_went_back;
    } else if (t - *last_emitted_ms_ <
               static_cast<std::uint64_t>(std::max<std::int64_t>(options_.min_interval.count(), 1))) {
      ++counters_.skipped_interval;
      return std::nullopt;
    }
  }

  model::Position p;
  p.lat_e7 = static_cast<std::int32_t>(std::llround(tpv.lat_deg * 1e7));
  p.lon_e7 = static_cast<std::int32_t>(std::llround(tpv.lon_deg * 1e7));
  p.fix = fix;
  p.speed_cm_s = to_u16(tpv.speed_m_s, 100.0);
  if (std::isfinite(tpv.track_deg)) {
    const long long c = std::llround(tpv.track_deg * 100.0) % 36000;
    p.heading_cdeg = static_cast<std::uint16_t>(c < 0 ? c + 36000 : c);
  }
  p.satellites = static_cast<std::uint8_t>(std::clamp(sky_.satellites_used, 0, 255));
  p.hdop_centi = to_u16(sky_.hdop, 100.0);

  model::Reading r;
  r.source_id = options_.source_id;
  r.seq = next_seq_ ? next_seq_() : 0;
  r.time_utc_ms = t;
  r.payload = p;
  last_emitted_ms_ = t;
  ++counters_.positions;
  return r;
}

}  // namespace eport::gnss
