// eport::verify (eport-verify, docs/evidence.md section 15): the capture
// model rebuilds R from eport-tail's JSON lines (the worked example of 9.4),
// skips kinds without R, and refuses a table of malformed lines with a
// message naming the line and the member; the registry and the keys file
// refuse a table of malformed inputs likewise; a small signed chain verifies
// through epb_ev_verifier, and an altered reading in it is named.
#include <catch2/catch.hpp>

#include <epb/evidence.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

#include "eport/verify/capture.h"
#include "eport/verify/registry.h"
#include "eport/verify/report.h"
#include "eport/verify/verifier.h"
#include "evidence_openssl.hpp"

using namespace eport::verify;

namespace {

std::string hex(const std::vector<std::uint8_t>& b) {
  static const char d[] = "0123456789abcdef";
  std::string s;
  for (auto x : b) {
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

std::string temp_file(const std::string& name, const std::string& text) {
  std::string path = "/tmp/eport-verify-test-" + std::to_string(getpid()) + "-" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace

TEST_CASE("verify capture rebuilds R from eport-tail's JSON line of a position (docs/evidence.md 9.4)", "[verify]") {
  Capture c;
  REQUIRE(add_line(c,
                   R"({"source":"TU-0042","seq":1004,"time_utc_ms":1718000060000,"kind":"position",)"
                   R"("lat_e7":-338688000,"lon_e7":1512093000,"fix":0,"satellites":0})",
                   "l1")
              .ok());
  REQUIRE(c.readings.size() == 1);
  CHECK(c.readings[0].canonical);
  CHECK(hex(c.readings[0].r) == "0203ec030000000000006086c80090010000000008d0eb48b5205a0000005401ea96");
}

TEST_CASE("verify capture sorts lines: gaps, checkpoints, kinds without R and other lines", "[verify]") {
  Capture c;
  REQUIRE(add_line(c, R"({"source":"TU-1","seq":20,"time_utc_ms":5,"kind":"gap","first_seq":11,"reason":"unit_discard"})", "a").ok());
  REQUIRE(add_line(c, R"({"source":"gw:custody","seq":3,"time_utc_ms":5,"kind":"event","event":"pairing"})", "b").ok());
  REQUIRE(add_line(c, R"({"source":"TU-1:ev","seq":20,"time_utc_ms":5,"kind":"evidence","n":1,"cose":"d284"})", "c").ok());
  REQUIRE(add_line(c, R"({"checkpoint":"D2"})", "d").ok());
  REQUIRE(add_line(c, R"({"error":"bad payload","topic":"t","bytes":3})", "e").ok());
  REQUIRE(add_line(c, "  {not even json", "f").ok());  // not starting with '{': skipped as a log line
  REQUIRE(add_line(c, "", "g").ok());
  REQUIRE(add_line(c, R"({"source":"TU-1","seq":21,"time_utc_ms":5,"kind":"door","state":"open","time_source":"gateway_receive"})", "h").ok());
  // A value no unit can send (fix 9): kept, but without R, so it can never verify.
  REQUIRE(add_line(c, R"({"source":"TU-1","seq":22,"time_utc_ms":5,"kind":"position","lat_e7":1,"lon_e7":2,"fix":9,"satellites":1})", "i").ok());
  REQUIRE(c.gaps.size() == 1);
  CHECK(c.gaps[0].first_seq == 11);
  CHECK(c.gaps[0].last_seq == 20);
  REQUIRE(c.checkpoints.size() == 2);
  CHECK(hex(c.checkpoints[0]) == "d284");
  CHECK(hex(c.checkpoints[1]) == "d2");
  CHECK(c.ignored == 1);  // the error line
  REQUIRE(c.readings.size() == 3);
  // The custody event: an event record (docs/evidence.md 13.4), 02 40, seq 3.
  CHECK(c.readings[0].canonical);
  CHECK(hex(c.readings[0].r).rfind("02400300000000000000", 0) == 0);
  CHECK(c.readings[1].canonical);
  CHECK(c.readings[1].r.size() == 24);  // a door reading
  CHECK(c.readings[1].r[11] == 0);      // time 0: the agent's receive time is not the unit's
  CHECK_FALSE(c.readings[2].canonical);
}

TEST_CASE("verify capture rebuilds a custody event's record as the agent made it", "[verify]") {
  // docs/evidence.md 13.4's worked example, as eport-tail prints the event.
  Capture c;
  REQUIRE(add_line(c, R"({"source":"gw-01:custody","container":"MSKU1234565","seq":7,"time_utc_ms":1764614400000,)"
                      R"("kind":"event","event":"seal_mismatch","subject":"tcu-0001","first_seq":1001,)"
                      R"("caused_by_seq":1001,"lat_e7":306000000,"lon_e7":1220000000,"seal_id":"CN123",)"
                      R"("expected_seal_id":"CN124","seal_class":"high_security"})", "a")
              .ok());
  REQUIRE(c.readings.size() == 1);
  CHECK(c.readings[0].canonical);
  CHECK(hex(c.readings[0].r) ==
        "0240" "0700000000000000" "00e836db9a010000" "09" "0b4d534b5531323334353635" "087463752d30303031"
        "e903000000000000" "e903000000000000" "00" "0300" "80303d12" "00b9b748" "03" "05434e313233"
        "05434e313234" "00" "a1e54757");
  // An event name this build does not know: kept without R (never verifies).
  REQUIRE(add_line(c, R"({"source":"gw-01:custody","seq":8,"time_utc_ms":1,"kind":"event","event":"teleported"})",
                   "b")
              .ok());
  CHECK_FALSE(c.readings[1].canonical);
  // A malformed member is refused, naming it.
  auto bad = add_line(c, R"({"source":"gw-01:custody","seq":9,"time_utc_ms":1,"kind":"event","event":"pairing",)"
                         R"("interpolated":1})", "c");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == "c: \"interpolated\" is not true or false");
}

TEST_CASE("verify capture refuses malformed lines, naming the line and what is wrong", "[verify]") {
  struct Row {
    const char* line;
    const char* message;
  };
  const Row rows[] = {
      {R"({"source":"A","seq":1,)", "capture line 7: "},
      {R"({"source":"A","seq":1} x)", "after the JSON value"},
      {R"({"source":"A","seq":1,"seq":2})", "duplicate key \"seq\""},
      {R"(["source"])", ""},  // not starting with '{': skipped, see below
      {R"({"source":1,"seq":1,"kind":"door"})", "capture line 7: \"source\" is not a string"},
      {R"({"source":"A","seq":"1","kind":"door"})", "\"seq\" is not a number"},
      {R"({"source":"A","seq":-1,"kind":"door"})", "\"seq\" -1 is not a whole number 0..2^64-1"},
      {R"({"source":"A","seq":1.5,"kind":"door"})", "\"seq\" 1.5 is not a whole number"},
      {R"({"source":"A","seq":18446744073709551616,"kind":"door"})", "\"seq\" 18446744073709551616 is out of range"},
      {R"({"source":"A","seq":1,"kind":"door","state":"open"})", "\"time_utc_ms\" is missing"},
      {R"({"source":"A","seq":1,"time_utc_ms":1,"kind":"door","state":"ajar"})",
       "\"state\" \"ajar\" is not one of unknown, closed, open"},
      {R"({"source":"A","seq":1,"time_utc_ms":1,"kind":"seal","state":"broken"})",
       "\"state\" \"broken\" is not one of unknown, sealed, opened, tampered"},
      {R"({"source":"A","seq":1,"time_utc_ms":1,"kind":"position","lon_e7":1,"fix":1,"satellites":1})",
       "\"lat_e7\" is missing"},
      {R"({"source":"A","seq":1,"time_utc_ms":1,"kind":"position","lat_e7":2147483648,"lon_e7":1,"fix":1,"satellites":1})",
       "\"lat_e7\" 2147483648 is out of range -2147483648..2147483647"},
      {R"({"source":"A","seq":1,"time_utc_ms":1,"kind":"position","lat_e7":1,"lon_e7":1,"fix":256,"satellites":1})",
       "\"fix\" 256 is out of range 0..255"},
      {R"({"source":"A","seq":1,"time_utc_ms":1,"kind":"sensor","humidity_centi_pct":-1})",
       "\"humidity_centi_pct\" -1 is out of range 0..65535"},
      {R"({"source":"A","seq":1,"time_utc_ms":1,"kind":"sensor","temperature_centi_c":"warm"})",
       "\"temperature_centi_c\" is not a number"},
      {R"({"source":"A","seq":5,"time_utc_ms":1,"kind":"gap"})", "\"first_seq\" is missing"},
      {R"({"checkpoint":"d28"})", "\"checkpoint\" is not hex"},
      {R"({"checkpoint":7})", "\"checkpoint\" is not a string"},
      {R"({"source":"A:ev","seq":5,"kind":"evidence","cose":"zz"})", "\"cose\" is not hex"},
  };
  for (const auto& row : rows) {
    INFO(row.line);
    Capture c;
    auto st = add_line(c, row.line, "capture line 7");
    if (row.message[0] == '\0') {
      CHECK(st.ok());
      continue;
    }
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().rfind("capture line 7: ", 0) == 0);
    CHECK(st.error().find(row.message) != std::string::npos);
  }
  // A deep or long line is refused within the limits.
  Capture c;
  auto deep = add_line(c, R"({"a":[[[[[[[[[[1]]]]]]]]]]})", "capture line 9");
  REQUIRE_FALSE(deep.ok());
  CHECK(deep.error().find("capture line 9: ") == 0);
  CaptureLimits small;
  small.max_line_bytes = 16;
  auto longer = add_line(c, R"({"source":"A","seq":1})", "capture line 3", small);
  REQUIRE_FALSE(longer.ok());
  CHECK(longer.error() == "capture line 3: longer than 16 bytes");
  // read_capture names the file and the line number.
  auto path = temp_file("capture.jsonl", "\n{\"checkpoint\":\"d2\"}\n{\"checkpoint\":\"d2\"\n");
  auto file = read_capture(c, path);
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().rfind(path + " line 3: ", 0) == 0);
  std::remove(path.c_str());
  // A line longer than the limit is refused at the limit, with its number; a last line without a
  // newline is read.
  auto big = temp_file("big.jsonl", "{\"checkpoint\":\"d2\"}\n" + std::string(100, ' ') + "\n{\"checkpoint\":\"d2\"}");
  CaptureLimits limit40;
  limit40.max_line_bytes = 40;
  Capture b;
  auto too_long = read_capture(b, big, limit40);
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error() == big + " line 2: longer than 40 bytes");
  Capture b2;
  REQUIRE(read_capture(b2, big).ok());
  CHECK(b2.checkpoints.size() == 2);
  std::remove(big.c_str());
  auto missing = read_capture(c, "/nonexistent/capture.jsonl");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().find("cannot read /nonexistent/capture.jsonl") == 0);
}

TEST_CASE("verify registry refuses malformed registries and key files, naming the member or line", "[verify]") {
  const std::string key =
      R"("source":"TU-1","kid":"0011223344556677","alg":-8,"public_key":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")";
  struct Row {
    std::string text;
    const char* message;
  };
  const Row rows[] = {
      {"{", "registry.json: "},
      {"[]", "registry.json: not a JSON object"},
      {R"({"keys":[]})", "registry format (none) is not eport-evidence-registry-1"},
      {R"({"format":"eport-evidence-registry-2","keys":[]})",
       "registry format 'eport-evidence-registry-2' is not eport-evidence-registry-1"},
      {R"({"format":"eport-evidence-registry-1"})", "\"keys\" is missing or not an array"},
      {R"({"format":"eport-evidence-registry-1","keys":[7]})", "keys[0]: not an object"},
      {R"({"format":"eport-evidence-registry-1","keys":[{)" + key + R"(,"status":"valid"},{"kid":"00","alg":-8,"public_key":"00","status":"valid"}]})",
       "registry.json: keys[1]: \"source\" is missing or not a string"},
      {R"({"format":"eport-evidence-registry-1","keys":[{)" + key + R"(}]})", "keys[0]: \"status\" is missing"},
      {R"({"format":"eport-evidence-registry-1","keys":[{"source":"A","kid":"00","alg":-9,"public_key":"00","status":"valid"}]})",
       "keys[0]: \"alg\" is not -8 (EdDSA) or -7 (ES256)"},
      {R"({"format":"eport-evidence-registry-1","keys":[{"source":"A","kid":"00","alg":-8,"public_key":"0g","status":"valid"}]})",
       "keys[0]: \"public_key\" is not hex"},
      {R"({"format":"eport-evidence-registry-1","keys":[{)" + key + R"(,"status":"revoked","reason":"keyCompromise"}]})",
       "keys[0]: \"revoked_utc\" is missing or not a string"},
      {R"({"format":"eport-evidence-registry-1","keys":[{)" + key +
           R"(,"status":"revoked","reason":"superseded","revoked_utc":"2026-13-01T00:00:00Z"}]})",
       "keys[0]: \"revoked_utc\" \"2026-13-01T00:00:00Z\" is not a time YYYY-MM-DDTHH:MM:SSZ"},
  };
  for (const auto& row : rows) {
    INFO(row.text);
    auto r = parse_registry(row.text, "registry.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().rfind("registry.json: ", 0) == 0);
    CHECK(r.error().find(row.message) != std::string::npos);
  }
  auto good = parse_registry(R"({"format":"eport-evidence-registry-1","keys":[{)" + key +
                                 R"(,"status":"revoked","reason":"superseded","revoked_utc":"2026-12-03T10:00:00Z"}]})",
                             "registry.json");
  REQUIRE(good.ok());
  REQUIRE(good->find("0011223344556677").size() == 1);
  CHECK(good->keys[0].revoked_ms == 1796292000000ull);
  CHECK(parse_utc("1970-01-01T00:00:00Z").value() == 0);
  CHECK(parse_utc("2000-02-29T12:34:56Z").value() == 951827696000ull);

  // The signature: an unusable certificate, then a key file read by the agent's reader.
  auto cert = check_registry_signature("{}", "sig", "not a certificate");
  REQUIRE_FALSE(cert.ok());
  CHECK(cert.error() == "the CA certificate is not a PEM X.509 certificate");
  auto no_sig = load_registry("/nonexistent/registry.json", "/nonexistent/ca.crt");
  REQUIRE_FALSE(no_sig.ok());
  CHECK(no_sig.error().find("cannot read /nonexistent/registry.json") == 0);
  auto path = temp_file("keys", "# units\nTU-1 ed25519 0011 "
                                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\nTU-2 rsa 00 00\n");
  auto keys = load_key_file(path);
  REQUIRE_FALSE(keys.ok());
  CHECK(keys.error().find(path + ":3: ") == 0);
  CHECK(keys.error().find("rsa") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("verify walks a signed chain through epb_ev_verifier: clean, then one reading altered", "[verify]") {
  epb_ossl::Pkey pk = epb_ossl::generate(EPB_EV_ALG_EDDSA);
  REQUIRE(pk);
  epb_ev_key pub;
  epb_ev_signer signer;
  REQUIRE(epb_ossl::public_key(pk.get(), "", &pub));
  REQUIRE(epb_ossl::signer(pk.get(), "", &signer));
  Registry reg;
  reg.keys.push_back({"TU-9", hex({pub.kid, pub.kid + pub.kid_len}), pub.alg, {pub.pub, pub.pub + pub.pub_len},
                      "valid", "", 0});
  epb_ev_chain chain;
  REQUIRE(epb_ev_chain_init(&chain, "TU-9", 4, 100) == EPB_EV_OK);
  std::vector<std::string> lines;
  for (std::uint64_t seq = 100; seq < 110; ++seq) {
    lines.push_back(R"({"source":"TU-9","seq":)" + std::to_string(seq) +
                    R"(,"time_utc_ms":1718000000000,"kind":"sensor","temperature_centi_c":)" +
                    std::to_string(400 + seq) + "}");
    epb_reading r{};
    r.seq = seq;
    r.time_utc_ms = 1718000000000ull;
    r.kind = EPB_READING_SENSOR;
    r.u.sensor.present = EPB_SENSOR_TEMPERATURE;
    r.u.sensor.temperature_centi_c = static_cast<std::int16_t>(400 + seq);
    REQUIRE(epb_ev_append(&chain, &r, 0, 0) == EPB_EV_OK);
    if (seq == 104 || seq == 107) {
      std::uint8_t ck[EPB_EV_CHECKPOINT_MAX];
      std::size_t len = 0;
      REQUIRE(epb_ev_make_checkpoint(&chain, &signer, 1718000000000ull, nullptr, ck, sizeof ck, &len) == EPB_EV_OK);
      lines.push_back(R"({"checkpoint":")" + hex({ck, ck + len}) + R"("})");
    }
  }
  auto run = [&](const std::vector<std::string>& in) {
    Capture c;
    for (const auto& l : in) REQUIRE(add_line(c, l, "l").ok());
    return verify(c, reg);
  };
  Report clean = run(lines);
  REQUIRE(clean.sources.size() == 1);
  CHECK(clean.sources[0].problems.empty());
  REQUIRE(clean.sources[0].verified.size() == 1);
  CHECK(clean.sources[0].verified[0] == std::make_pair<std::uint64_t, std::uint64_t>(100, 107));
  REQUIRE(clean.sources[0].unverified_tail);
  CHECK(clean.sources[0].unverified_tail->first == 108);
  CHECK(clean.sources[0].unverified_tail->readings == 2);
  CHECK(summary(clean) == "sources verified 1 of 1, readings covered 8, problems 0");
  CHECK(exit_status(clean) == 0);

  auto altered = lines;
  altered[6].replace(altered[6].find("temperature_centi_c\":505"), 24, "temperature_centi_c\":506");  // seq 105
  Report bad = run(altered);
  REQUIRE(bad.sources[0].problems.size() == 1);
  CHECK(bad.sources[0].problems[0].kind == "altered");
  CHECK(bad.sources[0].problems[0].first == 105u);
  CHECK(bad.sources[0].problems[0].last == 107u);
  CHECK(exit_status(bad) == 1);
  CHECK(to_json(bad).find(R"("kind": "altered", "last": 107})") != std::string::npos);
  CHECK(to_text(bad).find("  altered 105..107: checkpoint 2: the readings do not give its head") != std::string::npos);
}

TEST_CASE("verify reports checkpoints that do not parse under \"?\", once, also beside a source named \"?\"",
          "[verify]") {
  Registry reg;
  Capture c;
  REQUIRE(add_line(c, R"({"checkpoint":"d284"})", "l1").ok());
  Report alone = verify(c, reg);
  REQUIRE(alone.sources.size() == 1);
  CHECK(alone.sources[0].source == "?");
  REQUIRE(alone.sources[0].problems.size() == 1);
  CHECK(alone.sources[0].problems[0].kind == "malformed checkpoint");
  CHECK(alone.sources[0].problems[0].detail.find("truncated") != std::string::npos);
  CHECK(summary(alone) == "sources verified 0 of 1, readings covered 0, problems 1");
  // A unit id may be "?": its report and the malformed one are one member, as in eport_verify.py.
  REQUIRE(add_line(c, R"({"source":"?","seq":3,"time_utc_ms":1,"kind":"door","state":"open"})", "l2").ok());
  REQUIRE(add_line(c, R"({"source":"?","seq":3,"time_utc_ms":1,"kind":"door","state":"closed"})", "l3").ok());
  Report both = verify(c, reg);
  REQUIRE(both.sources.size() == 1);
  REQUIRE(both.sources[0].problems.size() == 2);
  CHECK(both.sources[0].problems[0].kind == "conflicting copies");
  CHECK(both.sources[0].problems[1].kind == "malformed checkpoint");
  CHECK(to_json(both).find(R"({"sources": {"?": {"checkpoints": 0, "problems": [)") == 0);
}
