// epb-evidence: the reference signer's command line (docs/evidence.md
// section 9). Generates checkpoint keys as PEM files, and runs a signed
// demo chain that it verifies itself and writes out for an independent
// verifier (firmware-bridge/tests/evidence_interop.py); also writes the
// checkpoint parser's fuzzing seeds.
//   epb-evidence keygen [--alg ed25519|es256] PRIVATE.pem PUBLIC.pem
//   epb-evidence demo PRIVATE.pem OUTDIR [READINGS [SOURCE]]   (defaults 1000, TU-0042)
//   epb-evidence corpus OUTDIR
#include <epb/evidence.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "evidence_openssl.hpp"

namespace {

using Bytes = std::vector<uint8_t>;

std::string hex(const uint8_t *p, size_t n) {
  static const char *digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// Reading i of the demo: mostly positions, a sensor report every 10th, a
// door opening and a seal event now and then (each makes a checkpoint due).
epb_reading demo_reading(uint64_t seq, uint64_t i) {
  epb_reading r;
  std::memset(&r, 0, sizeof r);
  r.seq = seq;
  r.time_utc_ms = 1718000000000ull + i * 60000ull;
  if (i % 97 == 50) {
    r.kind = EPB_READING_DOOR;
    r.u.door.state = 2;
  } else if (i % 211 == 7) {
    r.kind = EPB_READING_SEAL;
    r.u.seal.state = 1;
    std::memcpy(r.u.seal.seal_id, "SL-778812", 9);
    r.u.seal.seal_id_len = 9;
  } else if (i % 10 == 3) {
    r.kind = EPB_READING_SENSOR;
    r.u.sensor.present = EPB_SENSOR_TEMPERATURE | EPB_SENSOR_HUMIDITY | EPB_SENSOR_BATTERY_PCT;
    r.u.sensor.temperature_centi_c = static_cast<int16_t>(-1850 + static_cast<int>(i % 40));
    r.u.sensor.humidity_centi_pct = 8120;
    r.u.sensor.battery_pct = 87;
  } else {
    r.kind = EPB_READING_POSITION;
    r.u.position.lat_e7 = 519225000 + static_cast<int32_t>(i * 1000);
    r.u.position.lon_e7 = 44791700 + static_cast<int32_t>(i * 700);
    r.u.position.fix = 1;
    r.u.position.satellites = 9;
    r.u.position.present = EPB_POS_SPEED | EPB_POS_HEADING;
    r.u.position.speed_cm_s = 250;
    r.u.position.heading_cdeg = 9000;
  }
  return r;
}

int usage() {
  std::fprintf(stderr,
               "usage: epb-evidence keygen [--alg ed25519|es256] PRIVATE.pem PUBLIC.pem\n"
               "       epb-evidence demo PRIVATE.pem OUTDIR [READINGS [SOURCE]]\n"
               "       epb-evidence corpus OUTDIR\n");
  return 2;
}

int keygen(int argc, char **argv) {
  int32_t alg = EPB_EV_ALG_EDDSA;
  int i = 2;
  if (argc > i + 1 && std::strcmp(argv[i], "--alg") == 0) {
    std::string a = argv[i + 1];
    if (a == "ed25519") alg = EPB_EV_ALG_EDDSA;
    else if (a == "es256") alg = EPB_EV_ALG_ES256;
    else return usage();
    i += 2;
  }
  if (argc != i + 2) return usage();
  epb_ossl::Pkey key = epb_ossl::generate(alg);
  std::string err;
  epb_ev_key pub;
  if (!key || !epb_ossl::public_key(key.get(), "", &pub)) {
    std::fprintf(stderr, "epb-evidence: key generation failed\n");
    return 1;
  }
  if (!epb_ossl::write_private_pem(key.get(), argv[i], &err) ||
      !epb_ossl::write_public_pem(key.get(), argv[i + 1], &err)) {
    std::fprintf(stderr, "epb-evidence: %s\n", err.c_str());
    return 1;
  }
  std::printf("%s key, kid %s, public %s\n", alg == EPB_EV_ALG_EDDSA ? "Ed25519" : "P-256",
              hex(pub.kid, pub.kid_len).c_str(), hex(pub.pub, pub.pub_len).c_str());
  return 0;
}

int demo(int argc, char **argv) {
  if (argc < 4 || argc > 6) return usage();
  uint64_t readings = argc >= 5 ? std::strtoull(argv[4], nullptr, 10) : 1000;
  if (readings == 0 || readings > 10000000) return usage();
  const std::string src = argc >= 6 ? argv[5] : "TU-0042";
  if (src.empty() || src.size() > 32) return usage();
  const uint64_t first = 1001;
  std::string err;
  epb_ossl::Pkey key = epb_ossl::read_private_pem(argv[2], &err);
  if (!key) {
    std::fprintf(stderr, "epb-evidence: %s\n", err.c_str());
    return 1;
  }
  epb_ev_signer signer;
  epb_ev_key pub;
  if (!epb_ossl::signer(key.get(), "", &signer) || !epb_ossl::public_key(key.get(), "", &pub))
    return 1;
  std::string dir = argv[3];
  std::ofstream rf(dir + "/readings.hex"), cf(dir + "/checkpoints.hex"), kf(dir + "/key.txt");
  if (!rf || !cf || !kf) {
    std::fprintf(stderr, "epb-evidence: cannot write into %s\n", dir.c_str());
    return 1;
  }
  kf << src << ' ' << pub.alg << ' ' << hex(pub.kid, pub.kid_len) << ' '
     << hex(pub.pub, pub.pub_len) << '\n';

  epb_ev_chain chain;
  epb_ev_verifier v;
  epb_ev_policy policy = {EPB_EV_DEFAULT_EVERY_READINGS, EPB_EV_DEFAULT_EVERY_MS};
  if (epb_ev_chain_init(&chain, src.c_str(), static_cast<uint8_t>(src.size()), first) != EPB_EV_OK ||
      epb_ev_verifier_init(&v, src.c_str(), static_cast<uint8_t>(src.size()), &pub, epb_ossl::verify, nullptr) !=
          EPB_EV_OK)
    return 1;
  uint64_t checkpoints = 0, ck_bytes = 0, problems = 0;
  for (uint64_t i = 0; i < readings; i++) {
    epb_reading r = demo_reading(first + i, i);
    uint8_t b[EPB_EV_READING_MAX];
    size_t n = epb_ev_reading_bytes(&r, b, sizeof b);
    uint64_t now = i * 60000ull;
    if (n == 0 || epb_ev_append(&chain, &r, now, 0) != EPB_EV_OK) return 1;
    rf << hex(b, n) << '\n';
    problems += epb_ev_verifier_reading(&v, b, n) != EPB_EV_OK;
    if (epb_ev_due(&chain, &policy, now) || i + 1 == readings) {
      uint8_t out[EPB_EV_CHECKPOINT_MAX];
      size_t len = 0;
      epb_ev_status st = epb_ev_make_checkpoint(&chain, &signer, r.time_utc_ms, nullptr, out,
                                                sizeof out, &len);
      if (st != EPB_EV_OK) {
        std::fprintf(stderr, "epb-evidence: %s\n", epb_ev_status_name(st));
        return 1;
      }
      cf << hex(out, len) << '\n';
      checkpoints++;
      ck_bytes += len;
      st = epb_ev_verifier_checkpoint(&v, out, len, nullptr);
      if (st != EPB_EV_OK) {
        std::fprintf(stderr, "checkpoint %llu: %s\n", static_cast<unsigned long long>(checkpoints),
                     epb_ev_status_name(st));
        problems++;
      }
    }
  }
  std::printf("%s: %llu readings, %llu checkpoints (%llu bytes, %.2f bytes/reading), "
              "verified %llu..%llu, problems %llu\n",
              src.c_str(), static_cast<unsigned long long>(readings),
              static_cast<unsigned long long>(checkpoints),
              static_cast<unsigned long long>(ck_bytes),
              static_cast<double>(ck_bytes) / static_cast<double>(readings),
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(v.ck_last),
              static_cast<unsigned long long>(problems));
  return problems == 0 ? 0 : 1;
}

// Seeds for fuzz_ev_checkpoint: valid checkpoints of several shapes (first
// of a chain, a later one, one announcing a P-256 key), signed with junk.
int corpus(int argc, char **argv) {
  if (argc != 3) return usage();
  epb_ev_checkpoint ck;
  std::memset(&ck, 0, sizeof ck);
  ck.alg = EPB_EV_ALG_EDDSA;
  ck.kid_len = 8;
  std::memcpy(ck.kid, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  ck.src_len = 7;
  std::memcpy(ck.src, "TU-0042", 7);
  ck.n = 1;
  ck.first = 1001;
  ck.last = 1005;
  ck.count = 5;
  ck.time_ms = 1718000003000ull;
  for (int i = 0; i < 32; i++) ck.head[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 64; i++) ck.sig[i] = static_cast<uint8_t>(0xA0 + i);
  std::vector<epb_ev_checkpoint> seeds{ck};
  ck.n = 2;
  ck.has_prev = 1;
  std::memset(ck.prev, 0x5A, 32);
  ck.first = 1006;
  ck.last = 1200;
  ck.count = 190;
  seeds.push_back(ck);
  ck.has_next_key = 1;
  ck.next_key.alg = EPB_EV_ALG_ES256;
  ck.next_key.kid_len = 16;
  std::memset(ck.next_key.kid, 0x42, 16);
  ck.next_key.pub_len = 65;
  ck.next_key.pub[0] = 0x04;
  for (int i = 1; i < 65; i++) ck.next_key.pub[i] = static_cast<uint8_t>(i);
  ck.alg = EPB_EV_ALG_ES256;
  ck.n = 9007199254740991ull;
  ck.last = 9007199254740991ull;
  seeds.push_back(ck);
  int i = 0;
  for (const epb_ev_checkpoint &s : seeds) {
    uint8_t out[EPB_EV_CHECKPOINT_MAX];
    size_t n = epb_ev_encode_cose(&s, out, sizeof out);
    if (n == 0) return 1;
    std::ofstream f(std::string(argv[2]) + "/checkpoint_" + std::to_string(++i) + ".cbor",
                    std::ios::binary);
    f.write(reinterpret_cast<const char *>(out), static_cast<std::streamsize>(n));
    if (!f) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  if (cmd == "keygen") return keygen(argc, argv);
  if (cmd == "demo") return demo(argc, argv);
  if (cmd == "corpus") return corpus(argc, argv);
  return usage();
}
