// eport-verify's output (docs/evidence.md section 15): the summary line, the
// human report, the JSON report (the members of eport_verify.py --json), and
// the exit status of a verification.
#pragma once

#include <string>

#include "eport/verify/verifier.h"

namespace eport::verify {

// "sources verified X of Y, readings covered N, problems P"
std::string summary(const Report& report);

// One line per source, its problems indented under it, then the summary.
std::string to_text(const Report& report);

// {"sources": {SOURCE: {"checkpoints", "problems": [{"detail", "first",
// "kind", "last"}], "readings_verified", "source", "unverified_tail",
// "verified": [[first, last]]}}, "summary": "..."}, keys sorted, one line.
std::string to_json(const Report& report);

// 0: no problem (an unverified tail is not one); 1: problems.
int exit_status(const Report& report);

}  // namespace eport::verify
