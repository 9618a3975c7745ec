// Minimal leveled logging to stderr, one line per call, safe from any thread.
// Never log secrets (passwords, keys): callers pass only what may be shown.
#pragma once

#include <string_view>

namespace eport::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void set_level(Level level);
bool set_level(std::string_view name);  // "error" | "warn" | "info" | "debug"; false if unknown
bool enabled(Level level);
// Writes one line. Control bytes (below 0x20, and 0x7F) in the component or
// message are written as \xNN, so that text from outside (a command id, a
// unit id, a path) can never start a line of its own or forge one.
void write(Level level, std::string_view component, std::string_view message);
// The same escaping, for text that goes elsewhere (replies, errors).
std::string escape_control(std::string_view text);

inline void error(std::string_view c, std::string_view m) { write(Level::kError, c, m); }
inline void warn(std::string_view c, std::string_view m) { write(Level::kWarn, c, m); }
inline void info(std::string_view c, std::string_view m) { write(Level::kInfo, c, m); }
inline void debug(std::string_view c, std::string_view m) {
  if (enabled(Level::kDebug)) write(Level::kDebug, c, m);
}

}  // namespace eport::log
