// eport-verify's output: the human report and the JSON report of
// docs/evidence.md section 15, line for line and member for member what
// eport_verify.py prints, so that a customs office can use either.
#include "eport/verify/report.h"

#include <algorithm>

#include "eport/json/json.h"
#include "seq_ranges.h"

namespace eport::verify {
namespace {

using detail::ranges;

std::string opt(const std::optional<std::uint64_t>& v) { return v ? std::to_string(*v) : "null"; }

}  // namespace

std::string summary(const Report& report) {
  std::uint64_t problems = 0, covered = 0, clean = 0;
  for (const auto& s : report.sources) {
    problems += s.problems.size();
    covered += s.readings_verified;
    clean += !s.verified.empty() && s.problems.empty();
  }
  return "sources verified " + std::to_string(clean) + " of " + std::to_string(report.sources.size()) +
         ", readings covered " + std::to_string(covered) + ", problems " + std::to_string(problems);
}

std::string to_text(const Report& report) {
  std::string out;
  for (const auto& s : report.sources) {
    std::string v = ranges(s.verified);
    out += s.source + ": verified " + (v.empty() ? "nothing" : v) + " (" + std::to_string(s.readings_verified) +
           " readings, " + std::to_string(s.checkpoints) + " checkpoints)";
    if (const auto& t = s.unverified_tail) {
      out += "; unverified tail " + std::to_string(t->first) + ".." + std::to_string(t->last) + " (" +
             std::to_string(t->readings) + " readings)";
    }
    out += '\n';
    for (const auto& p : s.problems) {
      out += "  " + p.kind;
      if (p.first) out += " " + std::to_string(*p.first) + ".." + opt(p.last);
      out += ": " + p.detail + '\n';
    }
  }
  out += summary(report) + '\n';
  return out;
}

std::string to_json(const Report& report) {
  // Keys in sorted order and Python's separators, as json.dumps(sort_keys=True) writes them.
  std::vector<const SourceReport*> sorted;
  for (const auto& s : report.sources) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->source < b->source; });
  std::string out = "{\"sources\": {";
  bool first_source = true;
  for (const SourceReport* s : sorted) {
    if (!first_source) out += ", ";
    first_source = false;
    out += json::quote(s->source) + ": {\"checkpoints\": " + std::to_string(s->checkpoints) + ", \"problems\": [";
    for (std::size_t i = 0; i < s->problems.size(); ++i) {
      const Problem& p = s->problems[i];
      out += (i ? ", " : "") + std::string("{\"detail\": ") + json::quote(p.detail) + ", \"first\": " + opt(p.first) +
             ", \"kind\": " + json::quote(p.kind) + ", \"last\": " + opt(p.last) + "}";
    }
    out += "], \"readings_verified\": " + std::to_string(s->readings_verified) +
           ", \"source\": " + json::quote(s->source) + ", \"unverified_tail\": ";
    if (const auto& t = s->unverified_tail) {
      out += "{\"first\": " + std::to_string(t->first) + ", \"last\": " + std::to_string(t->last) +
             ", \"readings\": " + std::to_string(t->readings) + "}";
    } else {
      out += "null";
    }
    out += ", \"verified\": [";
    for (std::size_t i = 0; i < s->verified.size(); ++i) {
      out += (i ? ", [" : "[") + std::to_string(s->verified[i].first) + ", " + std::to_string(s->verified[i].second) +
             "]";
    }
    out += "]}";
  }
  out += "}, \"summary\": " + json::quote(summary(report)) + "}\n";
  return out;
}

int exit_status(const Report& report) {
  for (const auto& s : report.sources) {
    if (!s.problems.empty()) return 1;
  }
  return 0;
}

}  // namespace eport::verify
