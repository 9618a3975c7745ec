// The command line of eport-agent, as printed on a usage error (exit 64).
#pragma once

namespace eport::app {

inline constexpr const char* kUsage =
    "usage: eport-agent --config FILE                 run the agent\n"
    "       eport-agent --check-config FILE           validate FILE and exit (0: valid)\n"
    "       eport-agent store stats --config FILE [--json]  counts, bytes, oldest age and counters per class\n"
    "                                                 (--json: one JSON object, docs/store.md)\n"
    "       eport-agent store verify --config FILE    full integrity check (0: ok)\n"
    "       eport-agent store dump --config FILE [--limit N]  waiting readings as JSON lines, drain order\n"
    "       eport-agent --config-reference            print every config key as Markdown\n"
    "       eport-agent --config-template             print an agent.toml with every key, its default and description\n"
    "       eport-agent --version\n";

inline constexpr int kUsageExit = 64;  // EX_USAGE

}  // namespace eport::app
