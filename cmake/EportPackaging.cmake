# Debian package `eport-agent` (CPack DEB) for amd64, arm64 and armhf: the
# programs, the default config (a conffile), the systemd unit, the data
# directory, man pages and maintainer scripts from packaging/. `cpack` in a
# build tree writes eport-agent_<version>_<arch>.deb; docs/cross-compiling.md.
#
# The agent is a system daemon: unless CMAKE_INSTALL_PREFIX is given, it is
# /usr here, so that the unit, the config and the binaries agree with each
# other and with Debian policy. Packages need CMAKE_INSTALL_PREFIX=/usr.

if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix" FORCE)
endif()
include(GNUInstallDirs)

set(EPORT_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(EPORT_CONFIG_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/eport-agent)          # /etc/eport-agent
set(EPORT_STATE_DIR ${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/eport-agent)    # /var/lib/eport-agent
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(EPORT_SYSTEMD_UNIT_DIR /lib/systemd/system)   # Debian 12 (pkg-config systemd: systemdsystemunitdir)
else()
  set(EPORT_SYSTEMD_UNIT_DIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(EPORT_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(EPORT_PACKAGING_BINARY_DIR ${PROJECT_BINARY_DIR}/packaging)

# --- files of the package ----------------------------------------------------
configure_file(${EPORT_PACKAGING_DIR}/eport-agent.service.in
  ${EPORT_PACKAGING_BINARY_DIR}/eport-agent.service @ONLY)
install(FILES ${EPORT_PACKAGING_BINARY_DIR}/eport-agent.service DESTINATION ${EPORT_SYSTEMD_UNIT_DIR})
# 0644 in the package; postinst makes it root:eport-agent 0640 (dpkg-statoverride).
install(FILES ${EPORT_PACKAGING_DIR}/agent.toml DESTINATION ${EPORT_CONFIG_DIR})
install(DIRECTORY DESTINATION ${EPORT_STATE_DIR})

# Debian wants gzip -9n (no name, no timestamp) for man pages and changelogs.
# Every packaging/man/<program>.<section> is installed; editing one re-runs CMake.
find_program(EPORT_GZIP gzip REQUIRED)
string(TIMESTAMP EPORT_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)  # honours SOURCE_DATE_EPOCH
configure_file(${EPORT_PACKAGING_DIR}/deb/changelog.in ${EPORT_PACKAGING_BINARY_DIR}/changelog @ONLY)
file(GLOB _eport_man_pages CONFIGURE_DEPENDS ${EPORT_PACKAGING_DIR}/man/*.[1-8])
foreach(_eport_in IN LISTS _eport_man_pages ITEMS ${EPORT_PACKAGING_BINARY_DIR}/changelog)
  get_filename_component(_eport_name ${_eport_in} NAME)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_eport_in})
  execute_process(COMMAND ${EPORT_GZIP} -9nc ${_eport_in}
    OUTPUT_FILE ${EPORT_PACKAGING_BINARY_DIR}/${_eport_name}.gz COMMAND_ERROR_IS_FATAL ANY)
endforeach()
foreach(_eport_page IN LISTS _eport_man_pages)
  get_filename_component(_eport_name ${_eport_page} NAME)
  string(REGEX MATCH "[1-8]$" _eport_section ${_eport_name})
  install(FILES ${EPORT_PACKAGING_BINARY_DIR}/${_eport_name}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_eport_section})
endforeach()
install(FILES ${EPORT_PACKAGING_BINARY_DIR}/changelog.gz DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/eport-agent)
install(FILES ${EPORT_PACKAGING_DIR}/deb/copyright DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/eport-agent)
install(FILES ${EPORT_PACKAGING_DIR}/deb/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
  RENAME eport-agent)

# --- CPack DEB -----------------------------------------------------------------
# Architecture: the toolchain file's (EPORT_DEB_ARCH), else the build host's.
if(NOT EPORT_DEB_ARCH)
  find_program(EPORT_DPKG dpkg)
  if(EPORT_DPKG)
    execute_process(COMMAND ${EPORT_DPKG} --print-architecture
      OUTPUT_VARIABLE EPORT_DEB_ARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
endif()

set(EPORT_DEB_MAINTAINER "eport-edge maintainers <maintainers@eport-edge.invalid>"
  CACHE STRING "Maintainer field of the eport-agent package")
# Runtime dependencies when dpkg-shlibdeps cannot compute them (a sysroot
# build: its libraries are not in this machine's dpkg database). Keep in step
# with what shlibdeps finds on a multiarch build: tests/packaging checks that.
# -DEPORT_DEB_FALLBACK_DEPENDS="..." replaces the list.
if(NOT DEFINED CACHE{EPORT_DEB_FALLBACK_DEPENDS})
  set(EPORT_DEB_FALLBACK_DEPENDS
    "libc6 (>= 2.36), libgcc-s1 (>= 3.0), libstdc++6 (>= 12), libpaho-mqttpp3-1 (>= 1.2.0), libpaho-mqtt1.3 (>= 1.3.12), libsqlite3-0 (>= 3.40), libtomlplusplus3 (>= 3.3.0), libzstd1 (>= 1.5.4), libssl3 (>= 3.0.0)")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME eport-agent)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "eport-edge")
set(CPACK_PACKAGE_CONTACT "${EPORT_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "e-port edge agent: container telemetry to the cloud over MQTT")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Absolute destinations (/etc, /lib/systemd, /var/lib) are staged below DESTDIR.
set(CPACK_SET_DESTDIR ON)
# Stripped as dh_strip does (symbols, debug info, .comment, .note).
set(CPACK_STRIP_FILES OFF)
configure_file(${EPORT_PACKAGING_DIR}/cpack-strip.cmake.in
  ${EPORT_PACKAGING_BINARY_DIR}/cpack-strip.cmake @ONLY)
set(CPACK_PRE_BUILD_SCRIPTS ${EPORT_PACKAGING_BINARY_DIR}/cpack-strip.cmake)
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR}/packages)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)                  # eport-agent_0.1.0_arm64.deb
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${EPORT_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The synopsis line is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the body.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "eport-agent runs on port gateways. Telematics units on containers hand it
GPS, e-seal, door and sensor readings over a UNIX or TCP socket; it keeps
every reading in a crash-proof SQLite outbox until the e-port cloud's MQTT
broker has acknowledged it, and publishes compact FlatBuffers envelopes.
This package also contains eport-sim (simulated units), eport-tail
(prints published telemetry as JSON lines), eport-cmd (sends commands) and
eport-verify (checks the signed evidence of captured readings), and runs the
agent as the systemd service eport-agent.service under its own system user.")
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
# libgps is loaded at run time, only for gnss.source = "gpsd" (agent/gnss/src/libgps.h),
# so dpkg-shlibdeps does not see it: recommended, with the daemon it talks to.
get_property(EPORT_LIBGPS_SONAME GLOBAL PROPERTY EPORT_LIBGPS_SONAME)
if(EPORT_LIBGPS_SONAME MATCHES "^(lib[a-z]+)\\.so\\.([0-9]+)$")
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "${CMAKE_MATCH_1}${CMAKE_MATCH_2}, gpsd")
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${EPORT_PACKAGING_DIR}/deb/conffiles
  ${EPORT_PACKAGING_DIR}/deb/postinst
  ${EPORT_PACKAGING_DIR}/deb/prerm
  ${EPORT_PACKAGING_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

if(CMAKE_SYSROOT)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${CPACK_DEBIAN_PACKAGE_DEPENDS}, ${EPORT_DEB_FALLBACK_DEPENDS}")
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()

# Read by cpack itself: checks and the environment dpkg-shlibdeps runs in.
configure_file(${EPORT_PACKAGING_DIR}/cpack-project-config.cmake.in
  ${EPORT_PACKAGING_BINARY_DIR}/cpack-project-config.cmake @ONLY)
set(CPACK_PROJECT_CONFIG_FILE ${EPORT_PACKAGING_BINARY_DIR}/cpack-project-config.cmake)

include(CPack)

# The consumer kit's components and packages (python3-eport, libeport-codec-dev).
include(${PROJECT_SOURCE_DIR}/cmake/EportKit.cmake)

if(EPORT_BUILD_TESTS AND EXISTS ${PROJECT_SOURCE_DIR}/tests/packaging/CMakeLists.txt)
  add_subdirectory(tests/packaging)
endif()
