# eport-ingest, the reference ingest service (cloud/ingest; docs/cloud.md section 15), as the
# component eport-ingest: the third package of `ninja kit-packages`
# (packaging/kit/cpack-kit-config.cmake.in), beside python3-eport, whose package eport it
# imports. Every rule is EXCLUDE_FROM_ALL: a plain install and the eport-agent .deb never hold
# it. Included by EportKit.cmake (GNUInstallDirs, EPORT_SYSTEMD_UNIT_DIR and EPORT_BINDIR come
# from EportPackaging.cmake). Layout:
#   /usr/lib/eport-ingest/eport-ingest, eport_ingest/ (with schema.sql and web/, where the code
#     finds them; not the test helpers pgtest.py, natstest.py), eport_broker/ (the id rule)
#   /usr/bin/eport-ingest -> there
#   /lib/systemd/system/eport-ingest@.service, eport-ingest-serve.service
#   /etc/eport-ingest/ingest.env (conffile), /etc/eport-ingest/clients/ (certificates)
#   /usr/share/eport-ingest/zones/ (the live map's sample zones), man page, copyright
set(EPORT_INGEST_LIBDIR lib/eport-ingest)                                   # below the prefix
set(EPORT_INGEST_CONFIG_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/eport-ingest)   # /etc/eport-ingest
set(_eport_ingest_src ${PROJECT_SOURCE_DIR}/cloud/ingest)
set(_eport_ingest_pkg ${EPORT_PACKAGING_DIR}/kit/ingest)
set(_eport_ingest_bin ${EPORT_PACKAGING_BINARY_DIR}/kit/ingest)

install(PROGRAMS ${_eport_ingest_src}/eport-ingest DESTINATION ${EPORT_INGEST_LIBDIR}
  COMPONENT eport-ingest EXCLUDE_FROM_ALL)
install(DIRECTORY ${_eport_ingest_src}/eport_ingest DESTINATION ${EPORT_INGEST_LIBDIR}
  COMPONENT eport-ingest EXCLUDE_FROM_ALL
  PATTERN __pycache__ EXCLUDE PATTERN "*.pyc" EXCLUDE PATTERN pgtest.py EXCLUDE PATTERN natstest.py EXCLUDE)
# The topic-safe id rule that ?site= checks (eport_ingest/sites.py) is owned by broker-config's
# eport_broker.inventory: the package carries that module and the one it imports, beside eport_ingest.
install(FILES ${PROJECT_SOURCE_DIR}/broker-config/lib/eport_broker/__init__.py
              ${PROJECT_SOURCE_DIR}/broker-config/lib/eport_broker/inventory.py
              ${PROJECT_SOURCE_DIR}/broker-config/lib/eport_broker/agent_keys.py
  DESTINATION ${EPORT_INGEST_LIBDIR}/eport_broker COMPONENT eport-ingest EXCLUDE_FROM_ALL)
file(MAKE_DIRECTORY ${_eport_ingest_bin})
file(RELATIVE_PATH _eport_ingest_link ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_PREFIX}/${EPORT_INGEST_LIBDIR}/eport-ingest)
file(CREATE_LINK ${_eport_ingest_link} ${_eport_ingest_bin}/eport-ingest SYMBOLIC)
install(FILES ${_eport_ingest_bin}/eport-ingest DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT eport-ingest EXCLUDE_FROM_ALL)

foreach(_eport_unit eport-ingest@.service eport-ingest-serve.service)
  configure_file(${_eport_ingest_pkg}/${_eport_unit}.in ${_eport_ingest_bin}/${_eport_unit} @ONLY)
  install(FILES ${_eport_ingest_bin}/${_eport_unit} DESTINATION ${EPORT_SYSTEMD_UNIT_DIR}
    COMPONENT eport-ingest EXCLUDE_FROM_ALL)
endforeach()
# 0644 in the package; postinst makes ingest.env root:eport-ingest 0640 and clients/ 0750.
install(FILES ${_eport_ingest_pkg}/ingest.env DESTINATION ${EPORT_INGEST_CONFIG_DIR}
  COMPONENT eport-ingest EXCLUDE_FROM_ALL)
install(DIRECTORY DESTINATION ${EPORT_INGEST_CONFIG_DIR}/clients COMPONENT eport-ingest EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/docs/zones/shanghai-terminals.geojson
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/eport-ingest/zones COMPONENT eport-ingest EXCLUDE_FROM_ALL)

set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_eport_ingest_pkg}/eport-ingest.8)
execute_process(COMMAND ${EPORT_GZIP} -9nc ${_eport_ingest_pkg}/eport-ingest.8
  OUTPUT_FILE ${_eport_ingest_bin}/eport-ingest.8.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${_eport_ingest_bin}/eport-ingest.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8
  COMPONENT eport-ingest EXCLUDE_FROM_ALL)
install(FILES ${EPORT_PACKAGING_DIR}/deb/copyright DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/eport-ingest
  COMPONENT eport-ingest EXCLUDE_FROM_ALL)
