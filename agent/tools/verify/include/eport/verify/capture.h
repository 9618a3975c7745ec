// eport-verify's capture model (docs/evidence.md section 15): the JSON lines
// of a capture (decoded readings as eport-tail prints them, declared gaps,
// checkpoints) read strictly with the project's bounded JSON reader, each
// reading turned into its canonical bytes R (section 3) by one builder per
// payload kind and epb_ev_reading_bytes. The verifier (verifier.h) works on
// this model only; nothing here checks a signature or a chain.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eport/model/result.h"

namespace eport::verify {

// One reading of a source that has a chain (a payload kind with a canonical R).
struct CapturedReading {
  std::string source;
  std::uint64_t seq = 0;
  // true: r holds its canonical bytes R. false: the reading is outside what
  // any unit can send (a field out of the epb range, docs/firmware-bridge.md:
  // fix 9, a seal id of 40 bytes, seq 0...), so it has no R and can never
  // verify; r is then a fingerprint that tells two such copies apart.
  bool canonical = false;
  std::vector<std::uint8_t> r;
};

// A declared gap (a SequenceGap record, the unit's DISCARD): seqs first..last.
struct DeclaredGap {
  std::string source;
  std::uint64_t first_seq = 0, last_seq = 0;
};

// Everything a capture holds, in the order read.
struct Capture {
  std::vector<CapturedReading> readings;
  std::vector<DeclaredGap> gaps;
  std::vector<std::vector<std::uint8_t>> checkpoints;  // COSE_Sign1 bytes as given (not parsed yet)
  std::size_t ignored = 0;  // lines of kinds with no canonical R (custody events, ...), and others
};

struct CaptureLimits {
  std::size_t max_line_bytes = 64 * 1024;  // a reading line is < 1 KiB, a checkpoint line < 2 KiB
  std::size_t max_depth = 8;
  std::size_t max_values = 512;
};

// One line of a capture. Lines that are blank or do not start with '{' are
// skipped (as eport_verify.py does: eport-tail's logs, comments). Errors
// start with `where` (e.g. "capture.jsonl line 7") and say what is wrong:
// bad JSON, a missing or mistyped member, a number out of its field's range.
[[nodiscard]] Status add_line(Capture& capture, std::string_view line, std::string_view where,
                              const CaptureLimits& limits = {});

// Every line of the file at path; the error names the file and line.
[[nodiscard]] Status read_capture(Capture& capture, const std::string& path,
                                  const CaptureLimits& limits = {});

}  // namespace eport::verify
