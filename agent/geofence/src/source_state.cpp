// The versioned byte encoding of a source's tracker state
// (eport/geofence/source_state.h): fixed-width little-endian fields, strictly
// checked on the way back in.
#include "eport/geofence/source_state.h"

#include "eport/geofence/limits.h"
#include "eport/model/ids.h"

namespace eport::geofence {

namespace {

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(v); }
  void uint(std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void text(const std::string& s) {
    u8(static_cast<std::uint8_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  std::vector<std::uint8_t> take() { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  bool uint(std::uint64_t& v, int bytes) {
    if (in_.size() - pos_ < static_cast<std::size_t>(bytes)) return false;
    v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t{in_[pos_ + static_cast<std::size_t>(i)]} << (8 * i);
    pos_ += static_cast<std::size_t>(bytes);
    return true;
  }
  bool text(std::string& s) {
    std::uint64_t n;
    if (!uint(n, 1) || in_.size() - pos_ < n) return false;
    s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

}  // namespace

std::vector<std::uint8_t> encode_state(const SourceState& s) {
  Writer w;
  w.u8(kStateVersion);
  w.uint(s.last_seq, 8);
  w.u8(s.last_fix ? 1 : 0);
  if (s.last_fix) {
    w.uint(s.last_fix->seq, 8);
    w.uint(s.last_fix->time_utc_ms, 8);
    w.uint(static_cast<std::uint32_t>(s.last_fix->at.lat_e7), 4);
    w.uint(static_cast<std::uint32_t>(s.last_fix->at.lon_e7), 4);
    w.u8(s.last_fix->hdop_centi ? 1 : 0);
    w.uint(s.last_fix->hdop_centi.value_or(0), 2);
  }
  w.uint(s.zones.size(), 2);
  for (const auto& z : s.zones) {
    w.text(z.zone_id);
    w.u8(static_cast<std::uint8_t>(z.phase));
    w.uint(z.since_time_ms, 8);
    w.uint(z.since_seq, 8);
  }
  return w.take();
}

Result<SourceState> decode_state(std::span<const std::uint8_t> bytes) {
  Reader r(bytes);
  SourceState s;
  std::uint64_t v = 0;
  const Error truncated{"geofence state is truncated"};
  if (!r.uint(v, 1)) return truncated;
  if (v != kStateVersion) {
    return Error{"geofence state has version " + std::to_string(v) + " (this agent reads " +
                 std::to_string(kStateVersion) + ")"};
  }
  if (!r.uint(s.last_seq, 8) || !r.uint(v, 1)) return truncated;
  if (v > 1) return Error{"geofence state: bad last-fix flag"};
  if (v == 1) {
    LastFix f;
    std::uint64_t lat, lon, has_hdop, hdop;
    if (!r.uint(f.seq, 8) || !r.uint(f.time_utc_ms, 8) || !r.uint(lat, 4) || !r.uint(lon, 4) || !r.uint(has_hdop, 1) ||
        !r.uint(hdop, 2)) {
      return truncated;
    }
    f.at = {static_cast<std::int32_t>(static_cast<std::uint32_t>(lat)),
            static_cast<std::int32_t>(static_cast<std::uint32_t>(lon))};
    if (has_hdop > 1 || (has_hdop == 0 && hdop != 0)) return Error{"geofence state: bad HDOP field"};
    if (has_hdop) f.hdop_centi = static_cast<std::uint16_t>(hdop);
    if (f.seq > s.last_seq) return Error{"geofence state: last fix is above the last seq"};
    s.last_fix = f;
  }
  std::uint64_t count;
  if (!r.uint(count, 2)) return truncated;
  if (count > kMaxZones) return Error{"geofence state lists " + std::to_string(count) + " zones"};
  for (std::uint64_t i = 0; i < count; ++i) {
    ZoneMembership m;
    std::uint64_t phase;
    if (!r.text(m.zone_id) || !r.uint(phase, 1) || !r.uint(m.since_time_ms, 8) || !r.uint(m.since_seq, 8)) {
      return truncated;
    }
    if (!model::topic_id_problem(m.zone_id, kMaxIdBytes).empty()) return Error{"geofence state: bad zone id"};
    if (phase != 1 && phase != 2) return Error{"geofence state: bad phase " + std::to_string(phase)};
    m.phase = static_cast<Phase>(phase);
    if (!s.zones.empty() && !(s.zones.back().zone_id < m.zone_id)) {
      return Error{"geofence state: zones not in ascending order"};
    }
    s.zones.push_back(std::move(m));
  }
  if (!r.done()) return Error{"geofence state has trailing bytes"};
  return s;
}

}  // namespace eport::geofence
