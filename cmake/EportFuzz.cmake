# libFuzzer targets. With EPORT_FUZZ=ON (clang only) each target is built with
# -fsanitize=fuzzer and registered as a short, bounded ctest run over its seed
# corpus; long runs are documented in docs/testing.md.
#   eport_add_fuzzer(NAME fuzz_x SOURCES a.cpp LIBS lib... CORPUS dir [SECONDS n] [TIMEOUT s])
# TIMEOUT: libFuzzer's -timeout per input (default 5 s).
if(EPORT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang" OR NOT EPORT_SANITIZE)
    message(FATAL_ERROR "EPORT_FUZZ needs clang and EPORT_SANITIZE=ON")
  endif()
  # Coverage instrumentation for all of our code, so that libFuzzer sees
  # the library under test, not just the harness. The sanitizer runtime
  # provides the hooks for the programs that are not fuzzers.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

function(eport_add_fuzzer)
  cmake_parse_arguments(F "" "NAME;CORPUS;SECONDS;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT EPORT_FUZZ)
    return()
  endif()
  if(NOT F_SECONDS)
    set(F_SECONDS 15)
  endif()
  if(NOT F_TIMEOUT)
    set(F_TIMEOUT 5)
  endif()
  add_executable(${F_NAME} ${F_SOURCES})
  target_link_libraries(${F_NAME} PRIVATE ${F_LIBS})
  target_compile_options(${F_NAME} PRIVATE -fsanitize=fuzzer)
  target_link_options(${F_NAME} PRIVATE -fsanitize=fuzzer)
  set(work ${CMAKE_CURRENT_BINARY_DIR}/${F_NAME}.corpus)
  add_test(NAME ${F_NAME}
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
      sh -c "mkdir -p '${work}' && exec \"$0\" -max_total_time=${F_SECONDS} -timeout=${F_TIMEOUT} -rss_limit_mb=1024 -print_final_stats=1 '${work}' '${F_CORPUS}'"
      $<TARGET_FILE:${F_NAME}>)
  set_tests_properties(${F_NAME} PROPERTIES LABELS "fuzz" TIMEOUT 120)
endfunction()
