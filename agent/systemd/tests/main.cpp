// Catch2 main for eport_systemd_tests. Its own main rather than
// Catch2::Catch2WithMain: Debian's libCatch2WithMain.a is built for the build
// host only, so linking it breaks cross builds (docs/cross-compiling.md).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
