// GpsdSource: the libgps side - connect, watch, read reports - feeding
// GpsdAssembler, through libgps loaded at run time (libgps.h). The report
// class is taken from the raw JSON line gps_read() copies out, since
// libgps' `set` mask accumulates across reports.
#include "eport/gnss/gpsd_source.h"

#include <gps.h>

#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "assembling.h"
#include "gpsd_report.h"
#include "libgps.h"
#include "eport/gnss/gpsd_mapping.h"

namespace eport::gnss {

// GpsdTpv documents gps.h's numbering; keep them in step.
static_assert(MODE_2D == 2 && MODE_3D == 3 && STATUS_FIX == 1 && STATUS_DGPS_FIX == 2 &&
                  STATUS_RTK_FIX == 3 && STATUS_RTK_FLT == 4 && STATUS_DR == 5 && STATUS_GNSSDR == 6 &&
                  STATUS_TIME == 7 && STATUS_SIM == 8 && STATUS_PPS_FIX == 9,
              "gps.h fix numbering changed: update fix_from_gpsd()");

namespace detail {

std::optional<model::Reading> apply_gpsd_report(GpsdAssembler& assembler, const gps_data_t& d,
                                                std::string_view raw) {
  if (raw.find("\"class\":\"TPV\"") != std::string_view::npos) {
    GpsdTpv t;
    t.mode = d.fix.mode;
    t.status = d.fix.status;
    if (d.fix.time.tv_sec > 0) {
      t.time_utc_ms = static_cast<std::uint64_t>(d.fix.time.tv_sec) * 1000U +
                      static_cast<std::uint64_t>(d.fix.time.tv_nsec / 1'000'000);
    }
    t.lat_deg = d.fix.latitude;
    t.lon_deg = d.fix.longitude;
    t.speed_m_s = d.fix.speed;
    t.track_deg = d.fix.track;
    return assembler.on_tpv(t);
  }
  if (raw.find("\"class\":\"SKY\"") != std::string_view::npos) {
    assembler.on_sky(GpsdSky{d.dop.hdop, d.satellites_used});
  }
  return std::nullopt;
}

}  // namespace detail

struct GpsdSource::Impl {
  Impl(const detail::LibGps& g, std::string w, AssemblerOptions a, SeqSource seq, ReadingHandler h)
      : gps(g), where(std::move(w)), core(std::move(h), std::move(a), std::move(seq)) {}
  ~Impl() {
    if (open) {
      (void)gps.stream(&data, WATCH_DISABLE, nullptr);
      (void)gps.close(&data);
    }
  }

  const detail::LibGps& gps;
  std::string where;  // "host:port", for messages
  gps_data_t data{};
  bool open = false;
  detail::Assembling<GpsdAssembler> core;
};

GpsdSource::GpsdSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpsdSource::~GpsdSource() = default;

Result<std::unique_ptr<GpsdSource>> GpsdSource::connect(const GpsdOptions& gpsd, AssemblerOptions assembler,
                                                        SeqSource next_seq, ReadingHandler on_reading) {
  const std::string where = gpsd.host + ":" + std::to_string(gpsd.port);
  auto gps = detail::libgps();
  if (!gps) return Error{"gpsd " + where + ": " + gps.error()};
  auto impl = std::make_unique<Impl>(**gps, where, std::move(assembler), std::move(next_seq), std::move(on_reading));
  const std::string port = std::to_string(gpsd.port);
  if (impl->gps.open(gpsd.host.c_str(), port.c_str(), &impl->data) != 0) {
    return Error{"gpsd " + impl->where + ": connect failed: " + impl->gps.errstr(errno)};
  }
  impl->open = true;
  if (impl->gps.stream(&impl->data, WATCH_ENABLE | WATCH_JSON, nullptr) != 0) {
    return Error{"gpsd " + impl->where + ": watch request failed: " + impl->gps.errstr(errno)};
  }
  return std::unique_ptr<GpsdSource>(new GpsdSource(std::move(impl)));
}

Result<std::size_t> GpsdSource::poll_once(std::chrono::milliseconds timeout) {
  gps_data_t& d = impl_->data;
  std::size_t reports = 0;
  std::vector<model::Reading> ready;
  auto wait_us = static_cast<int>(std::chrono::microseconds(timeout).count());
  while (impl_->gps.waiting(&d, wait_us)) {
    wait_us = 0;  // drain what is buffered, then return
    std::array<char, 4096> msg{};
    if (impl_->gps.read(&d, msg.data(), static_cast<int>(msg.size())) < 0) {
      impl_->core.deliver(ready);
      return Error{"gpsd " + impl_->where + ": connection closed or read failed"};
    }
    ++reports;
    std::lock_guard lock(impl_->core.mu);
    if (auto r = detail::apply_gpsd_report(impl_->core.assembler, d, std::string_view(msg.data()))) {
      ready.push_back(std::move(*r));
    }
  }
  impl_->core.deliver(ready);
  return reports;
}

void GpsdSource::flush() { impl_->core.flush(); }

GnssCounters GpsdSource::counters() const { return impl_->core.counters(); }

}  // namespace eport::gnss
