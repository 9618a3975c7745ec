// libFuzzer target for the NMEA parser, the line framer and the epoch
// assembler: arbitrary bytes must never crash, hang or break the invariants
// of a handed-out Position. Run long: see docs/gnss.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "eport/gnss/fix_assembler.h"
#include "eport/gnss/line_framer.h"
#include "eport/gnss/nmea.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_reading(const eport::model::Reading& r, std::uint64_t& last_seq) {
  const auto& p = std::get<eport::model::Position>(r.payload);
  check(p.lat_e7 >= -900'000'000 && p.lat_e7 <= 900'000'000);
  check(p.lon_e7 >= -1'800'000'000 && p.lon_e7 <= 1'800'000'000);
  check(!p.heading_cdeg || *p.heading_cdeg < 36000);
  check(static_cast<unsigned>(p.fix) <= 8);
  check(r.seq == last_seq + 1);
  check(r.source_id == "fuzz");
  last_seq = r.seq;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  // The whole input as one sentence, strict and lenient.
  (void)eport::gnss::parse_sentence(in);
  eport::gnss::ParseOptions lenient;
  lenient.require_checksum = false;
  lenient.max_length = 4096;
  (void)eport::gnss::parse_sentence(in, lenient);

  // The input as a stream, through the framer and two assembler setups.
  for (const bool strict : {true, false}) {
    eport::gnss::AssemblerOptions o;
    o.source_id = "fuzz";
    o.require_fix = strict;
    o.min_interval = std::chrono::milliseconds(strict ? 1000 : 0);
    if (!strict) o.parse = lenient;
    std::uint64_t seq = 0;
    std::uint64_t last_seq = 0;
    eport::gnss::FixAssembler a(o, [&seq] { return ++seq; });
    eport::gnss::LineFramer framer(strict ? 256 : 100);
    framer.feed(in, [&](std::string_view line) {
      if (auto r = a.feed_line(line)) check_reading(*r, last_seq);
    });
    if (auto r = a.flush()) check_reading(*r, last_seq);
    const auto& c = a.counters();
    check(c.sentences + c.rejected_total() == c.lines);
    check(c.positions == seq);
  }
  return 0;
}
