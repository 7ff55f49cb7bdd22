/*
 * paths.c -- default locations (paths.h). The build and install folders are
 * compiled in by CMake; which one applies is decided at run time from
 * /proc/self/exe, so `./build/morphd` uses `build/plugins/` while an
 * installed morphd never looks into a build tree. An install moved to
 * another prefix (`cmake --install build --prefix ~/morph`) finds the
 * plugins installed beside it: PREFIX/bin/morph looks in
 * PREFIX/lib/morph/plugins when that folder exists.
 */
#include "base/paths.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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
            /* PREFIX/bin or PREFIX/sbin: PREFIX's plugin folder, if any */
            char *up = strrchr(exe, '/');
            static char beside[PATH_MAX];
            struct stat sb;
            if (up != NULL && (strcmp(up, "/bin") == 0 || strcmp(up, "/sbin") == 0)) {
                *up = '\0';
                if (snprintf(beside, sizeof beside, "%s/%s", exe,
                             MORPHD_INSTALL_PLUGIN_DIR_REL) < (int)sizeof beside &&
                    stat(beside, &sb) == 0 && S_ISDIR(sb.st_mode))
                    return beside;
            }
        }
    }
    return MORPHD_INSTALL_PLUGIN_DIR;
}
