// `eport-agent store stats|verify|dump`: inspecting an agent's outbox from
// the command line (docs/store.md, "Inspection"). They open the store as the
// agent would, so they fail while the agent runs (the store's lock).
#pragma once

#include <cstdint>
#include <string>

#include "eport/store/outbox.h"

namespace eport::app {

// argv as main() got it, argv[1] == "store". Returns the exit code: 0, 1
// (store error, or verify found damage), 2 (bad config), 64 (usage).
int store_command(int argc, char** argv);

// `store stats` as a table for people, and as one JSON object (--json) with
// the same figures plus the sources and commands rows; now_utc_ms gives the
// oldest readings' ages. Both end with a newline.
std::string store_stats_table(const std::string& path, const store::OutboxStats& s, std::uint64_t now_utc_ms);
std::string store_stats_json(const std::string& path, const store::OutboxStats& s, std::uint64_t now_utc_ms);

}  // namespace eport::app
