// Helpers shared by the GNSS tests: build sentences with a correct checksum
// and read the NMEA logs in tests/data/ (path from EPORT_GNSS_TEST_DATA).
#pragma once

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace eport::gnss::testing {

// "$" + body + "*hh" with the correct checksum of body.
inline std::string with_checksum(std::string_view body) {
  unsigned sum = 0;
  for (char c : body) sum ^= static_cast<unsigned char>(c);
  char hex[3];
  std::snprintf(hex, sizeof hex, "%02X", sum);
  return "$" + std::string(body) + "*" + hex;
}

inline std::string data_path(std::string_view name) { return std::string(EPORT_GNSS_TEST_DATA) + "/" + std::string(name); }

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Lines of a log, each still ending in '\r' as on the wire (the '\n' is cut).
inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  const std::string all = read_file(path);
  std::size_t start = 0;
  while (start < all.size()) {
    std::size_t nl = all.find('\n', start);
    if (nl == std::string::npos) nl = all.size();
    out.push_back(all.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

}  // namespace eport::gnss::testing
