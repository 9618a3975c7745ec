// Catch2 main for the epb tests (kept in its own file so the slow-to-compile
// Catch2 runner is built once).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
