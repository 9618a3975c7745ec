# The consumer kit (docs/consuming.md section 12): what cloud services install to read
# eport-edge data, in two components outside the eport-agent package
# (install(... EXCLUDE_FROM_ALL): a plain install and eport-agent's .deb never hold them):
#   python3-eport       the Python package eport (consumers/python/eport) and the decoder
#                       `flatc --python` generates from schema/telemetry.fbs at build time
#                       (build product, never committed) -> /usr/lib/python3/dist-packages/eport
#   libeport-codec-dev  eport::codec (+ eport::json, eport::model) as static libraries, their
#                       headers, the flatc-generated schema headers, a CMake package config
#                       (find_package(eport-codec)) and a pkg-config file (eport-codec)
# `cmake --install build --component <name>` installs one; `ninja kit-packages` makes
# both .debs (packaging/kit/cpack-kit-config.cmake.in), and a third, the ingest service
# eport-ingest (cmake/EportIngest.cmake). Included by EportPackaging.cmake (GNUInstallDirs
# is set up there).

# --- python3-eport -------------------------------------------------------------
set(EPORT_PYTHON_INSTALL_DIR lib/python3/dist-packages CACHE STRING
  "Where python3-eport installs the package eport (relative to the prefix; Debian's dist-packages)")
set(_eport_py_gen ${PROJECT_BINARY_DIR}/consumers/python/generated)
add_custom_command(
  OUTPUT ${_eport_py_gen}/eport/telemetry/v1/Envelope.py
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${_eport_py_gen}
  COMMAND ${FLATC_EXECUTABLE} --python -o ${_eport_py_gen} ${PROJECT_SOURCE_DIR}/schema/telemetry.fbs
  DEPENDS ${PROJECT_SOURCE_DIR}/schema/telemetry.fbs
  COMMENT "flatc --python telemetry.fbs (the consumer kit's decoder)"
  VERBATIM)
add_custom_target(eport_python_gen ALL DEPENDS ${_eport_py_gen}/eport/telemetry/v1/Envelope.py)
file(GLOB _eport_py_modules CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/consumers/python/eport/*.py)
install(FILES ${_eport_py_modules} DESTINATION ${EPORT_PYTHON_INSTALL_DIR}/eport
  COMPONENT python3-eport EXCLUDE_FROM_ALL)
# flatc's eport/__init__.py is not installed: the kit's own is the package's.
install(DIRECTORY ${_eport_py_gen}/eport/telemetry DESTINATION ${EPORT_PYTHON_INSTALL_DIR}/eport
  COMPONENT python3-eport EXCLUDE_FROM_ALL FILES_MATCHING PATTERN "*.py")
# Envelope v2's zstd dictionary (a protocol constant, schema/): decode.py looks for it beside itself.
install(FILES ${PROJECT_SOURCE_DIR}/schema/eport_v2_dict_1.zdict DESTINATION ${EPORT_PYTHON_INSTALL_DIR}/eport
  COMPONENT python3-eport EXCLUDE_FROM_ALL)
install(FILES ${EPORT_PACKAGING_DIR}/deb/copyright DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/python3-eport
  COMPONENT python3-eport EXCLUDE_FROM_ALL)

# --- libeport-codec-dev ----------------------------------------------------------
install(TARGETS eport_codec eport_json eport_model ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  COMPONENT libeport-codec-dev EXCLUDE_FROM_ALL)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/agent/codec/include/eport ${PROJECT_SOURCE_DIR}/agent/json/include/eport
                  ${PROJECT_SOURCE_DIR}/agent/model/include/eport
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT libeport-codec-dev EXCLUDE_FROM_ALL
  FILES_MATCHING PATTERN "*.h")
# The generated schema headers (eport/schema/telemetry_generated.h, command_generated.h):
# for services that read fields the codec does not expose. Build products of schema/.
install(DIRECTORY ${PROJECT_BINARY_DIR}/schema/generated/eport DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT libeport-codec-dev EXCLUDE_FROM_ALL FILES_MATCHING PATTERN "*_generated.h")
file(RELATIVE_PATH EPORT_PC_PREFIX_FROM_PCDIR ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
file(RELATIVE_PATH EPORT_CMAKE_PREFIX_FROM_CONFIG ${CMAKE_INSTALL_FULL_LIBDIR}/cmake/eport-codec ${CMAKE_INSTALL_PREFIX})
configure_file(${EPORT_PACKAGING_DIR}/kit/eport-codec.pc.in ${EPORT_PACKAGING_BINARY_DIR}/kit/eport-codec.pc @ONLY)
configure_file(${EPORT_PACKAGING_DIR}/kit/eport-codec-config.cmake.in
  ${EPORT_PACKAGING_BINARY_DIR}/kit/eport-codec-config.cmake @ONLY)
include(CMakePackageConfigHelpers)
write_basic_package_version_file(${EPORT_PACKAGING_BINARY_DIR}/kit/eport-codec-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${EPORT_PACKAGING_BINARY_DIR}/kit/eport-codec.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT libeport-codec-dev EXCLUDE_FROM_ALL)
install(FILES ${EPORT_PACKAGING_BINARY_DIR}/kit/eport-codec-config.cmake
              ${EPORT_PACKAGING_BINARY_DIR}/kit/eport-codec-config-version.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/eport-codec COMPONENT libeport-codec-dev EXCLUDE_FROM_ALL)
install(FILES ${EPORT_PACKAGING_DIR}/deb/copyright DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/libeport-codec-dev
  COMPONENT libeport-codec-dev EXCLUDE_FROM_ALL)

# --- eport-ingest (the ingest service, a third package of kit-packages) --------------
include(${PROJECT_SOURCE_DIR}/cmake/EportIngest.cmake)

# --- the kit's .debs -------------------------------------------------------------
configure_file(${EPORT_PACKAGING_DIR}/kit/cpack-kit-strip.cmake.in ${EPORT_PACKAGING_BINARY_DIR}/kit/cpack-kit-strip.cmake @ONLY)
configure_file(${EPORT_PACKAGING_DIR}/kit/cpack-kit-config.cmake.in ${PROJECT_BINARY_DIR}/CPackKitConfig.cmake @ONLY)
add_custom_target(kit-packages
  COMMAND ${CMAKE_CPACK_COMMAND} --config ${PROJECT_BINARY_DIR}/CPackKitConfig.cmake -B ${PROJECT_BINARY_DIR}/packages
  DEPENDS eport_codec eport_json eport_model eport_python_gen
  COMMENT "python3-eport, libeport-codec-dev and eport-ingest .debs in ${PROJECT_BINARY_DIR}/packages"
  VERBATIM)
