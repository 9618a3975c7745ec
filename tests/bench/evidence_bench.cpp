// eport-evidence-bench: the figures of docs/evidence.md section 12, each next
// to a baseline measured in the same run. Signing time per checkpoint
// (OpenSSL Ed25519 and ES256, and the library's own share with a no-op
// signer); verification throughput in readings/s on one core next to plain
// SHA-256 of the same canonical bytes and to plain epb decoding of them;
// amortised checkpoint bytes per reading at the default policy for a few
// reporting rates; and eport-verify's throughput over the same run as a
// capture of eport-tail's JSON lines (parse + rebuild R + the whole
// verification of docs/evidence.md 15), next to the plain decoding baseline.
// Asserts nothing.
//   eport-evidence-bench [READINGS]   (default 200000)
#include <epb/evidence.h>
#include <openssl/sha.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "eport/codec/codec.h"
#include "eport/units/convert.h"
#include "eport/verify/capture.h"
#include "eport/verify/registry.h"
#include "eport/verify/verifier.h"
#include "evidence_openssl.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A container unit's day: a position every `every_s`, a sensor report every
// 15 min, door open/closed twice a day, one seal event a day.
epb_reading unit_reading(uint64_t seq, uint64_t t_s, uint64_t every_s) {
  epb_reading r;
  std::memset(&r, 0, sizeof r);
  r.seq = seq;
  r.time_utc_ms = 1718000000000ull + t_s * 1000ull;
  uint64_t day_s = t_s % 86400;
  if (day_s < every_s && t_s > 0) {
    r.kind = EPB_READING_SEAL;
    r.u.seal.state = 1;
    std::memcpy(r.u.seal.seal_id, "SL-778812", 9);
    r.u.seal.seal_id_len = 9;
  } else if ((day_s / every_s) % (43200 / every_s) == 1 && t_s > 0) {
    r.kind = EPB_READING_DOOR;
    r.u.door.state = (t_s / 43200) % 2 ? 1 : 2;
  } else if (t_s % 900 < every_s) {
    r.kind = EPB_READING_SENSOR;
    r.u.sensor.present = EPB_SENSOR_TEMPERATURE | EPB_SENSOR_HUMIDITY | EPB_SENSOR_BATTERY_PCT;
    r.u.sensor.temperature_centi_c = static_cast<int16_t>(-1850 + static_cast<int>(seq % 50));
    r.u.sensor.humidity_centi_pct = 8120;
    r.u.sensor.battery_pct = 87;
  } else {
    r.kind = EPB_READING_POSITION;
    r.u.position.lat_e7 = 519225000 + static_cast<int32_t>(seq % 100000);
    r.u.position.lon_e7 = 44791700 + static_cast<int32_t>(seq % 70000);
    r.u.position.fix = 1;
    r.u.position.satellites = 9;
    r.u.position.present = EPB_POS_SPEED | EPB_POS_HEADING | EPB_POS_HDOP;
    r.u.position.speed_cm_s = 250;
    r.u.position.heading_cdeg = 9000;
    r.u.position.hdop_centi = 90;
  }
  return r;
}

int noop_sign(void *, const uint8_t *, size_t, uint8_t sig[EPB_EV_SIG_LEN]) {
  std::memset(sig, 0x5A, EPB_EV_SIG_LEN);
  return 1;
}

struct Run {
  std::vector<Bytes> readings;
  std::vector<Bytes> checkpoints;
  std::vector<std::size_t> ck_after;  // checkpoint i follows reading ck_after[i] - 1
  uint64_t ck_bytes = 0, reading_bytes = 0;
};

Run make_run(uint64_t n, uint64_t every_s, const epb_ev_signer &signer, epb_ev_policy p) {
  Run run;
  epb_ev_chain c;
  if (epb_ev_chain_init(&c, "TU-0042", 7, 1) != EPB_EV_OK) std::abort();
  for (uint64_t i = 0; i < n; i++) {
    uint64_t t_s = i * every_s;
    epb_reading r = unit_reading(i + 1, t_s, every_s);
    uint8_t b[EPB_EV_READING_MAX];
    size_t len = epb_ev_reading_bytes(&r, b, sizeof b);
    if (len == 0 || epb_ev_append(&c, &r, t_s * 1000ull, 0) != EPB_EV_OK) std::abort();
    run.readings.emplace_back(b, b + len);
    run.reading_bytes += len;
    if (epb_ev_due(&c, &p, t_s * 1000ull) || i + 1 == n) {
      uint8_t out[EPB_EV_CHECKPOINT_MAX];
      size_t ol = 0;
      if (epb_ev_make_checkpoint(&c, &signer, r.time_utc_ms, nullptr, out, sizeof out, &ol) !=
          EPB_EV_OK)
        std::abort();
      run.checkpoints.emplace_back(out, out + ol);
      run.ck_after.push_back(run.readings.size());
      run.ck_bytes += ol;
    }
  }
  return run;
}

double sign_us(const epb_ev_signer &signer, int n) {
  epb_ev_chain c;
  if (epb_ev_chain_init(&c, "TU-0042", 7, 1) != EPB_EV_OK) std::abort();
  epb_reading r = unit_reading(1, 0, 60);
  double total = 0;
  for (int i = 0; i < n; i++) {
    r.seq = static_cast<uint64_t>(i) + 1;
    if (epb_ev_append(&c, &r, 0, 0) != EPB_EV_OK) std::abort();
    uint8_t out[EPB_EV_CHECKPOINT_MAX];
    size_t ol = 0;
    auto t0 = Clock::now();
    if (epb_ev_make_checkpoint(&c, &signer, 1718000000000ull, nullptr, out, sizeof out, &ol) !=
        EPB_EV_OK)
      std::abort();
    total += seconds_since(t0);
  }
  return total / n * 1e6;
}

}  // namespace

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  if (n < 1000) n = 1000;
  epb_ossl::Pkey ed = epb_ossl::generate(EPB_EV_ALG_EDDSA), es = epb_ossl::generate(EPB_EV_ALG_ES256);
  epb_ev_signer s_ed, s_es, s_noop;
  epb_ev_key k_ed;
  if (!ed || !es || !epb_ossl::signer(ed.get(), "", &s_ed) || !epb_ossl::signer(es.get(), "", &s_es) ||
      !epb_ossl::public_key(ed.get(), "", &k_ed))
    return 1;
  s_noop = s_ed;
  s_noop.sign = noop_sign;
  const int signs = n >= 100000 ? 2000 : 200;

  std::printf("== signing one checkpoint (build + Sig_structure + sign + id), %d each\n", signs);
  std::printf("  library only (no-op signer): %8.2f us\n", sign_us(s_noop, signs));
  std::printf("  Ed25519 (OpenSSL 3):         %8.2f us\n", sign_us(s_ed, signs));
  std::printf("  ES256 (OpenSSL 3):           %8.2f us\n", sign_us(s_es, signs));

  const epb_ev_policy defaults = {EPB_EV_DEFAULT_EVERY_READINGS, EPB_EV_DEFAULT_EVERY_MS};
  std::printf("== wire overhead at the default policy (N = %u readings, T = %u s, at once after seal/door)\n",
              EPB_EV_DEFAULT_EVERY_READINGS, EPB_EV_DEFAULT_EVERY_MS / 1000u);
  for (uint64_t every_s : {10ull, 30ull, 60ull, 120ull, 300ull}) {
    uint64_t days = 10, m = days * 86400 / every_s;
    Run r = make_run(m, every_s, s_noop, defaults);
    std::printf("  a position every %3llu s: %7llu readings in %llu days, %5zu checkpoints, "
                "%.2f checkpoint bytes/reading (readings themselves: %.1f bytes)\n",
                static_cast<unsigned long long>(every_s), static_cast<unsigned long long>(m),
                static_cast<unsigned long long>(days), r.checkpoints.size(),
                static_cast<double>(r.ck_bytes) / static_cast<double>(m),
                static_cast<double>(r.reading_bytes) / static_cast<double>(m));
  }

  Run run = make_run(n, 60, s_ed, defaults);
  std::printf("== verification, %llu readings, %zu checkpoints (Ed25519), one core\n",
              static_cast<unsigned long long>(n), run.checkpoints.size());
  // Baselines first: plain SHA-256 of each reading, plain decoding.
  uint8_t h[32];
  uint64_t sink = 0;
  auto t0 = Clock::now();
  for (const Bytes &b : run.readings) {
    epb_sha256(b.data(), b.size(), h);
    sink += h[0];
  }
  double t_sha = seconds_since(t0);
  t0 = Clock::now();
  for (const Bytes &b : run.readings) {
    SHA256(b.data(), b.size(), h);
    sink += h[0];
  }
  double t_ossl = seconds_since(t0);
  t0 = Clock::now();
  for (const Bytes &b : run.readings) {
    epb_message m;
    sink += static_cast<uint64_t>(epb_decode_body(b.data(), b.size(), &m));
  }
  double t_dec = seconds_since(t0);
  epb_ev_verifier v;
  if (epb_ev_verifier_init(&v, "TU-0042", 7, &k_ed, epb_ossl::verify, nullptr) != EPB_EV_OK) return 1;
  uint64_t problems = 0;
  t0 = Clock::now();
  std::size_t next_ck = 0;
  for (std::size_t i = 0; i < run.readings.size(); i++) {
    problems += epb_ev_verifier_reading(&v, run.readings[i].data(), run.readings[i].size()) != EPB_EV_OK;
    while (next_ck < run.checkpoints.size() && run.ck_after[next_ck] == i + 1) {
      const Bytes &c = run.checkpoints[next_ck++];
      problems += epb_ev_verifier_checkpoint(&v, c.data(), c.size(), nullptr) != EPB_EV_OK;
    }
  }
  double t_ver = seconds_since(t0);
  double rn = static_cast<double>(run.readings.size());
  std::printf("  plain SHA-256 of each reading (epb_sha256): %10.0f readings/s\n", rn / t_sha);
  std::printf("  plain SHA-256 of each reading (OpenSSL):    %10.0f readings/s\n", rn / t_ossl);
  std::printf("  plain epb decoding of each reading:         %10.0f readings/s\n", rn / t_dec);
  std::printf("  verifying (decode + link + checkpoints):    %10.0f readings/s, problems %llu\n",
              rn / t_ver, static_cast<unsigned long long>(problems));
  // eport-verify over the same run as a capture: eport-tail's JSON line of
  // each reading (codec::reading_to_json), the checkpoints as {"checkpoint"}.
  {
    std::vector<std::string> lines;
    lines.reserve(run.readings.size() + run.checkpoints.size());
    for (const Bytes &b : run.readings) {
      epb_message m;
      auto r = epb_decode_body(b.data(), b.size(), &m) == EPB_OK
                   ? eport::units::from_wire(m.m.reading, "TU-0042", "")
                   : eport::Result<eport::model::Reading>(eport::Error{"decode"});
      if (!r) return 1;
      lines.push_back(eport::codec::reading_to_json(*r));
    }
    static const char kHex[] = "0123456789abcdef";
    for (const Bytes &c : run.checkpoints) {
      std::string line = "{\"checkpoint\":\"";
      for (uint8_t x : c) {
        line += kHex[x >> 4];
        line += kHex[x & 15];
      }
      lines.push_back(line + "\"}");
    }
    eport::verify::Registry reg;
    eport::verify::RegistryKey key;
    key.source = "TU-0042";
    for (uint8_t i = 0; i < k_ed.kid_len; i++) {
      key.kid += kHex[k_ed.kid[i] >> 4];
      key.kid += kHex[k_ed.kid[i] & 15];
    }
    key.alg = k_ed.alg;
    key.pub.assign(k_ed.pub, k_ed.pub + k_ed.pub_len);
    key.status = "valid";
    reg.keys.push_back(key);
    t0 = Clock::now();
    eport::verify::Capture capture;
    for (std::size_t i = 0; i < lines.size(); i++) {
      if (!eport::verify::add_line(capture, lines[i], "line")) return 1;
    }
    double t_read = seconds_since(t0);
    auto report = eport::verify::verify(capture, reg);
    double t_all = seconds_since(t0);
    std::size_t vp = report.sources.empty() ? 1 : report.sources[0].problems.size();
    std::printf("  eport-verify on the JSON lines (read + R + verify): %8.0f readings/s (reading the lines alone: "
                "%.0f/s), problems %zu\n",
                rn / t_all, rn / t_read, vp);
    problems += vp;
  }
  // One checkpoint's signature check alone, for the share above.
  {
    epb_ev_checkpoint ck;
    const Bytes &c = run.checkpoints.front();
    uint8_t tbs[EPB_EV_TBS_MAX];
    if (epb_ev_parse(c.data(), c.size(), &ck) != EPB_EV_OK) return 1;
    size_t tl = epb_ev_encode_tbs(&ck, tbs, sizeof tbs);
    const int reps = signs;
    t0 = Clock::now();
    for (int i = 0; i < reps; i++)
      sink += static_cast<uint64_t>(epb_ossl::verify(nullptr, k_ed.alg, k_ed.pub, k_ed.pub_len, tbs, tl, ck.sig));
    std::printf("  one Ed25519 signature check (OpenSSL 3):  %10.2f us\n", seconds_since(t0) / reps * 1e6);
  }
  std::printf("  (sink %llu)\n", static_cast<unsigned long long>(sink % 7));
  return problems == 0 ? 0 : 1;
}
