// eport-sim session files (--record / --replay): JSON lines, one header line
// then one line per generated reading with its time offset and its epb frame
// in hex. docs/simulator.md describes the format. Header-only: used by
// eport-sim's main.cpp alone.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <epb/epb.h>

#include "eport/units/convert.h"
#include "eport/codec/codec.h"
#include "eport/json/json.h"
#include "eport/model/reading.h"
#include "eport/model/result.h"

namespace eport::sim::session {

inline constexpr int kFormatVersion = 1;

struct Header {
  std::uint64_t seed = 0;
  int units = 0;
  std::string prefix;
  std::uint32_t journey_readings = 0;
  double rate = 0;
};

struct Entry {
  std::uint64_t at_ms = 0;  // since the simulation started
  int unit = 0;             // unit index
  model::Reading reading;
};

inline std::string header_line(const Header& h) {
  std::string out = "{\"eport_sim_session\":" + std::to_string(kFormatVersion) + ",\"seed\":" + std::to_string(h.seed) +
                    ",\"units\":" + std::to_string(h.units) + ",\"prefix\":";
  json::append_quoted(out, h.prefix);
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.6g", h.rate);
  out += ",\"journey_readings\":" + std::to_string(h.journey_readings) + ",\"rate\":" + rate + "}";
  return out;
}

// {"at_ms":N,"unit":I,"unit_id":"..","container":"..","frame":"HEX","reading":{...}}
// "frame" is the READING exactly as sent on the wire (COBS and the 0x00);
// "reading" is codec::reading_to_json of the same reading, for people.
inline Result<std::string> entry_line(const Entry& e) {
  auto w = units::to_wire(e.reading);
  if (!w) return Error{w.error()};
  epb_message m{};
  m.type = EPB_MSG_READING;
  m.m.reading = *w;
  std::uint8_t frame[EPB_MAX_ENCODED];
  std::size_t n = epb_encode(&m, frame, sizeof frame);
  if (n == 0) return Error{"reading " + std::to_string(e.reading.seq) + " cannot be encoded"};
  std::string out = "{\"at_ms\":" + std::to_string(e.at_ms) + ",\"unit\":" + std::to_string(e.unit) + ",\"unit_id\":";
  json::append_quoted(out, e.reading.source_id);
  out += ",\"container\":";
  json::append_quoted(out, e.reading.container_id);
  out += ",\"frame\":\"";
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out += kHex[frame[i] >> 4];
    out += kHex[frame[i] & 15];
  }
  out += "\",\"reading\":" + codec::reading_to_json(e.reading) + "}";
  return out;
}

namespace detail {
// The value of a top-level key, searched before the nested "reading" object.
inline std::string_view raw_value(std::string_view line, std::string_view key) {
  auto end = line.find("\"reading\":");
  std::string_view head = line.substr(0, end);
  std::string pattern = "\"" + std::string(key) + "\":";
  auto at = head.find(pattern);
  if (at == std::string_view::npos) return {};
  return head.substr(at + pattern.size());
}

inline bool number(std::string_view line, std::string_view key, double& out) {
  auto v = raw_value(line, key);
  if (v.empty()) return false;
  std::string s(v.substr(0, v.find_first_of(",}")));
  char* endp = nullptr;
  out = std::strtod(s.c_str(), &endp);
  return endp != s.c_str() && *endp == '\0';
}

inline bool text(std::string_view line, std::string_view key, std::string& out) {
  auto v = raw_value(line, key);
  if (v.empty() || v[0] != '"') return false;
  out.clear();
  for (std::size_t i = 1; i < v.size(); ++i) {
    char c = v[i];
    if (c == '"') return true;
    if (c == '\\' && i + 1 < v.size()) {
      char e = v[++i];
      if (e == 'u' && i + 4 < v.size()) {
        out += static_cast<char>(std::strtol(std::string(v.substr(i + 1, 4)).c_str(), nullptr, 16));
        i += 4;
      } else {
        out += e;
      }
    } else {
      out += c;
    }
  }
  return false;
}
}  // namespace detail

inline Result<Header> parse_header(std::string_view line) {
  Header h;
  double version = 0, seed = 0, units = 0, journey = 0;
  if (!detail::number(line, "eport_sim_session", version) || static_cast<int>(version) != kFormatVersion) {
    return Error{"not an eport-sim session file (format " + std::to_string(kFormatVersion) + ") header: " +
                 std::string(line.substr(0, 80))};
  }
  if (!detail::number(line, "seed", seed) || !detail::number(line, "units", units) ||
      !detail::text(line, "prefix", h.prefix) || !detail::number(line, "journey_readings", journey) ||
      !detail::number(line, "rate", h.rate)) {
    return Error{"session header lacks seed, units, prefix, journey_readings or rate"};
  }
  h.seed = static_cast<std::uint64_t>(seed);
  h.units = static_cast<int>(units);
  h.journey_readings = static_cast<std::uint32_t>(journey);
  return h;
}

inline Result<Entry> parse_entry(std::string_view line) {
  Entry e;
  double at = 0, unit = 0;
  std::string unit_id, container, hex;
  if (!detail::number(line, "at_ms", at) || !detail::number(line, "unit", unit) ||
      !detail::text(line, "unit_id", unit_id) || !detail::text(line, "container", container) ||
      !detail::text(line, "frame", hex)) {
    return Error{"session line lacks at_ms, unit, unit_id, container or frame"};
  }
  if (hex.size() % 2 != 0 || hex.size() / 2 > EPB_MAX_ENCODED) return Error{"session frame has a bad length"};
  std::uint8_t frame[EPB_MAX_ENCODED];
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    frame[i] = static_cast<std::uint8_t>(std::strtoul(hex.substr(2 * i, 2).c_str(), nullptr, 16));
  }
  epb_decoder d;
  epb_decoder_init(&d);
  epb_message m;
  epb_status st;
  epb_decoder_feed(&d, frame, hex.size() / 2, &m, &st);
  if (st != EPB_OK || m.type != EPB_MSG_READING) {
    return Error{std::string("session frame does not decode to a READING: ") + epb_status_name(st)};
  }
  auto r = units::from_wire(m.m.reading, unit_id, container);
  if (!r) return Error{r.error()};
  e.at_ms = static_cast<std::uint64_t>(at);
  e.unit = static_cast<int>(unit);
  e.reading = std::move(r).value();
  return e;
}

}  // namespace eport::sim::session
