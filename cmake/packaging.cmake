# CPack: the Debian packages morph (the daemon, the client, the plugins,
# the packaged service) and morph-dev (the plugin SDK).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME morph)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "morph maintainers <maintainers@morph.invalid>")
# Each package's description starts with its own synopsis. (CPack puts
# CPACK_PACKAGE_DESCRIPTION_SUMMARY in front of every component's
# description unless it is left at CPack's default, so it is not set.)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "plugin-based TCP/UDP text transform server
morphd serves text transforms, loaded as plugins and chained in an INI
file, over TCP and UDP. The package runs the uppercase service on port
12000 under systemd, and includes the morph client.")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME morph)
# procps: the unit reloads with /bin/kill; init-system-helpers: the
# maintainer scripts enable and start the unit with deb-systemd-helper and
# deb-systemd-invoke (shlibdeps adds the libraries linked); libmicrohttpd,
# which morphd loads with dlopen for metrics_listen, shlibdeps cannot see:
# its package is named after its soname (libmicrohttpd.so.12: libmicrohttpd12)
string(REGEX REPLACE "^(lib.*)\\.so\\.([0-9]+)$" "\\1\\2" MHD_PACKAGE "${MHD_SONAME}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "procps, init-system-helpers (>= 1.54~), ${MHD_PACKAGE}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/conffiles"
    "${CMAKE_SOURCE_DIR}/packaging/postinst"
    "${CMAKE_SOURCE_DIR}/packaging/prerm"
    "${CMAKE_SOURCE_DIR}/packaging/postrm")
# keep the scripts' mode (0755) as they are in the source tree
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME morph-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "morph (= ${PROJECT_VERSION}), libuv1-dev, liblua5.4-dev, libssl-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION "SDK for writing morph plugins
The plugin ABI header <morph/plugin.h>, the test helper <morph/testing.h>
with its static library, pkg-config files, a CMake package with
morph_add_plugin(), and the plugin template.")
include(CPack)
