// eport-agent: argv dispatch. Running the agent is app::run() (agent.cpp:
// the parts in custody order, signals, systemd), the store subcommands are
// store_commands.cpp, and the config (every library's keys, assembled) is
// settings.cpp.
#include <malloc.h>

#include <cstdio>
#include <cstring>

#include "agent.h"
#include "settings.h"
#include "store_commands.h"
#include "usage.h"

#ifndef EPORT_VERSION
#define EPORT_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  using namespace eport;
  // Few malloc arenas: the agent's threads allocate little, and per-thread
  // arenas would hold on to memory that one shared arena reuses.
  mallopt(M_ARENA_MAX, 2);
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("eport-agent %s (schema v1)\n", EPORT_VERSION);
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "store") == 0) return app::store_command(argc, argv);
  if (argc == 2 && std::strcmp(argv[1], "--config-template") == 0) {
    std::fputs(app::config_template().c_str(), stdout);
    return 0;
  }
  if (argc == 2 && std::strcmp(argv[1], "--config-reference") == 0) {
    std::fputs(app::reference_markdown().c_str(), stdout);
    return 0;
  }
  if (argc == 3 && (std::strcmp(argv[1], "--config") == 0 || std::strcmp(argv[1], "--check-config") == 0)) {
    auto cfg = app::load_config_file(argv[2]);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().c_str());
      return 2;
    }
    if (std::strcmp(argv[1], "--check-config") == 0) {
      for (const auto& w : app::secret_file_warnings(*cfg)) std::fprintf(stderr, "warning: %s\n", w.c_str());
      std::printf("%s: valid (config hash %s)\n", argv[2], app::config_hash(*cfg).c_str());
      return 0;
    }
    return app::run(*cfg);
  }
  std::fputs(app::kUsage, stderr);
  return app::kUsageExit;
}
