// Catch2 v2 main for the gnss tests (Catch2WithMain is a host-only library
// in Debian, so cross builds link their own).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
