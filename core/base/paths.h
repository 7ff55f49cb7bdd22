/*
 * paths.h -- where morph's programs find their plugins by default.
 */
#ifndef MORPHD_PATHS_H
#define MORPHD_PATHS_H

/* The build tree's plugin folder when the running program is the one in
 * the build tree, else the installed plugin folder. */
const char *morphd_default_plugin_dir(void);

#endif
