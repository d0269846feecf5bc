# Installation layout and the Debian package (CPack DEB), included last by the top-level
# CMakeLists.txt. One package, "maillens", holds the three programs: they share every library,
# speak one wire protocol version, and a site runs the same version everywhere; the systemd
# units ship disabled, so a mail host enables only the agent and the collector host only the
# collector (docs/PACKAGING.md).
#
#   cmake --build build --target package     # or: cd build && cpack -G DEB
#   -> build/maillens_<version>_<arch>.deb
#
# Runtime dependencies come from dpkg-shlibdeps (dpkg-dev) on the installed programs, so they
# name exactly the Debian library packages the binaries link.
include(GNUInstallDirs)

set(MAILLENS_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)

install(TARGETS maillens RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS maillens-collector maillens-agent RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
# Absolute paths: a Debian package always installs under /etc, /lib and /usr.
install(FILES ${MAILLENS_DEPLOY_DIR}/debian/collector.conf ${MAILLENS_DEPLOY_DIR}/debian/agent.conf
        DESTINATION /etc/maillens)
install(FILES ${MAILLENS_DEPLOY_DIR}/systemd/maillens-collector.service
              ${MAILLENS_DEPLOY_DIR}/systemd/maillens-agent.service
        DESTINATION /lib/systemd/system)
install(PROGRAMS ${MAILLENS_DEPLOY_DIR}/make-certs.sh DESTINATION ${CMAKE_INSTALL_DATADIR}/maillens)
install(FILES ${MAILLENS_DEPLOY_DIR}/collector.conf.example ${MAILLENS_DEPLOY_DIR}/agent.conf.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${PROJECT_SOURCE_DIR}/docs/INSTALL.md ${MAILLENS_DEPLOY_DIR}/debian/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME maillens)
set(CPACK_PACKAGE_VENDOR maillens)
set(CPACK_PACKAGE_CONTACT "maillens maintainers <maillens@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Postfix log collector: search and trace mail across hosts")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Postfix log collector: search and trace mail across hosts
 An agent on each mail host tails and parses the Postfix maillog and streams it over
 gRPC (TLS, tokens) to a collector, which links each message's hops across hosts and
 stores everything in SQLite with a full-text index. The maillens command searches,
 traces and reports. Ships maillens, maillens-collector and maillens-agent with
 disabled systemd units.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION mail)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/maillens")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# adduser for the system user in postinst; openssl for make-certs.sh; ca-certificates not needed.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openssl")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postfix")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${MAILLENS_DEPLOY_DIR}/debian/conffiles ${MAILLENS_DEPLOY_DIR}/debian/postinst
    ${MAILLENS_DEPLOY_DIR}/debian/prerm ${MAILLENS_DEPLOY_DIR}/debian/postrm)
include(CPack)
