# Man pages and the Debian changelog, compressed as Debian wants them, and
# the copyright file each package's doc folder must hold.
foreach(page morphd.8 morphd.ini.5 morph.1)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section "${page}")
  add_custom_command(OUTPUT "${CMAKE_BINARY_DIR}/man/${page}.gz"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${CMAKE_BINARY_DIR}/man"
    COMMAND gzip -9nc "${CMAKE_SOURCE_DIR}/docs/man/${page}" > "${CMAKE_BINARY_DIR}/man/${page}.gz"
    DEPENDS "${CMAKE_SOURCE_DIR}/docs/man/${page}")
  list(APPEND MORPH_MAN_PAGES "${CMAKE_BINARY_DIR}/man/${page}.gz")
  install(FILES "${CMAKE_BINARY_DIR}/man/${page}.gz"
          DESTINATION "${CMAKE_INSTALL_MANDIR}/man${section}")
endforeach()
add_custom_target(man ALL DEPENDS ${MORPH_MAN_PAGES})

# Debian wants a copyright file and a changelog in each package's doc folder.
add_custom_command(OUTPUT "${CMAKE_BINARY_DIR}/changelog.gz"
  COMMAND gzip -9nc "${CMAKE_SOURCE_DIR}/packaging/changelog" > "${CMAKE_BINARY_DIR}/changelog.gz"
  DEPENDS "${CMAKE_SOURCE_DIR}/packaging/changelog")
add_custom_target(changelog ALL DEPENDS "${CMAKE_BINARY_DIR}/changelog.gz")
install(FILES packaging/copyright "${CMAKE_BINARY_DIR}/changelog.gz"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/morph")
install(FILES packaging/copyright "${CMAKE_BINARY_DIR}/changelog.gz"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/morph-dev" COMPONENT dev)

