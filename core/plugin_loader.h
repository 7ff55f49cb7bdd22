/*
 * plugin_loader.h -- loads one plugin shared object with dlopen and checks
 * its descriptor (ABI version, struct size, required callbacks) before
 * anything else of it is used.
 */
#ifndef MORPHD_PLUGIN_LOADER_H
#define MORPHD_PLUGIN_LOADER_H

#include <stddef.h>
#include <sys/stat.h>

#include <morph/plugin.h>

typedef struct morphd_plugin {
    char *name; /* as written in `transform =` */
    char *path; /* the file it came from */
    void *handle;
    const morph_plugin_t *desc;
    struct stat file; /* the file as loaded: tells a replaced file apart */
} morphd_plugin_t;

/* Loads `<dir>/<name>.so`. Returns 0, or -1 with a message naming the
 * plugin, its file and the reason in err. On error nothing stays loaded. */
int morphd_plugin_load(const char *dir, const char *name, morphd_plugin_t *p,
                       char *err, size_t err_size);

/* Like morphd_plugin_load, for a file that may have been loaded before and
 * replaced since: `variant` (how many times the name was loaded already)
 * makes the dlopen name unique, so the dynamic loader maps the new file
 * instead of handing back the old one. A file rewritten in place (same
 * inode) still yields the old code: install plugins by replacing files. */
int morphd_plugin_load_variant(const char *dir, const char *name,
                               unsigned variant, morphd_plugin_t *p, char *err,
                               size_t err_size);

/* Whether the plugin's file is no longer the one that was loaded. */
int morphd_plugin_file_changed(const morphd_plugin_t *p);

/* Unloads a plugin loaded by morphd_plugin_load(); safe on a zeroed one. */
void morphd_plugin_unload(morphd_plugin_t *p);

#endif
