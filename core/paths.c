/*
 * paths.c -- default locations (paths.h). The build and install folders are
 * compiled in by CMake; which one applies is decided at run time from
 * /proc/self/exe, so `./build/morphd` uses `build/plugins/` while an
 * installed morphd never looks into a build tree.
 */
#include "paths.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

const char *morphd_default_plugin_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            if (strcmp(exe, MORPHD_BUILD_DIR) == 0)
                return MORPHD_BUILD_PLUGIN_DIR;
        }
    }
    return MORPHD_INSTALL_PLUGIN_DIR;
}
