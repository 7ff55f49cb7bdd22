/*
 * plugin_loader.h -- loads one plugin shared object with dlopen and checks
 * its descriptor (versions, size, flags, required callbacks, declared
 * options) before anything else of it is used; runs its load() hook.
 */
#ifndef MORPHD_PLUGIN_LOADER_H
#define MORPHD_PLUGIN_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <morph/plugin.h>

typedef struct morphd_plugin {
    char *name; /* as written in `transform =` */
    char *path; /* the file it came from */
    void *handle;
    /* The descriptor. Members up to `transform` are there in every ABI;
     * the later ones are read only through the fields below, which hold
     * NULL/0 where the plugin's descriptor has no such member. */
    const morph_plugin_t *desc;
    struct stat file; /* the file as loaded: tells a replaced file apart */
    uint32_t abi;     /* the ABI it was built for */
    uint32_t abi_min; /* the oldest host ABI it needs */
    bool declares_options;
    const morph_option_decl_t **options; /* declared ones, in order */
    size_t n_options;
    void (*cancel)(void *instance, morph_pending_t *pending);
    void (*unload)(void);
    int (*conn_open2)(void *instance, const morph_conn_t *conn, void **state);
    const morph_codec_t *codec; /* a codec (framing = NAME); NULL: none */
    bool loaded; /* its load() ran, so unload() is due */
    struct morphd_script *script; /* NAME.lua: the script (handle NULL) */
    morph_host_t load_host;
} morphd_plugin_t;

/* The flags an ABI version knows; the names of flag bits, for messages. */
uint32_t morphd_plugin_known_flags(uint32_t abi);
/* Writes the names of `flags` ("chunk-safe, blocking") into buf. */
void morphd_plugin_flag_names(uint32_t flags, char *buf, size_t size);

/* Loads the plugin file at `path` (NAME.so) to look at it: every check
 * is made, but its load() hook does not run, so nothing of it runs at all
 * (a script, NAME.lua, runs once in its sandbox: what it returns is its
 * descriptor). For `morph plugin info` and `morphd --help-config`. */
int morphd_plugin_inspect(const char *path, morphd_plugin_t *p, char *err,
                          size_t err_size);

/* Writes a plugin's declared options as `--help-config` shows them (text,
 * or rows of the Markdown key table), prefixed "NAME.". Nothing for a
 * plugin without declarations. */
void morphd_plugin_print_options(FILE *out, const morphd_plugin_t *p,
                                 int format /* morphd_ref_format_t */);

/* Whether the loader runs each shared object from a sealed in-memory copy
 * of its file (the default: morphd must survive a plugin file written over
 * in place) or from the file itself. morph pipe and <morph/testing.h> turn
 * copies off: they run for one input, often under a debugger or a
 * sanitizer, which find a plugin's symbols by its file, and a plugin named
 * twice in their chain is then one object. */
void morphd_plugin_copy_files(bool on);

/* Loads plugin `name` from the search path `dirs` (plugin_path.h: the
 * first folder with NAME.so or NAME.lua). Returns 0, or -1 with a message
 * naming the plugin, its file and the reason in err. On error nothing
 * stays loaded. */
int morphd_plugin_load(const char *dirs, const char *name, morphd_plugin_t *p,
                       char *err, size_t err_size);

/* Like morphd_plugin_load, for a file that may have been loaded before and
 * replaced since: `variant` (how many times the name was loaded already)
 * makes the dlopen name unique, so the dynamic loader maps the new file
 * instead of handing back the old one. A file rewritten in place (same
 * inode) still yields the old code: install plugins by replacing files. */
/* *in_script (when not NULL) tells an error in a Lua script, whose message
 * starts with the script's FILE:LINE, from any other. */
int morphd_plugin_load_variant(const char *dirs, const char *name,
                               unsigned variant, morphd_plugin_t *p,
                               bool *in_script, char *err, size_t err_size);

/* Versions of one plugin loaded in one run of morphd, at most: a plugin is
 * never unloaded (RTLD_NODELETE: the libraries it uses keep process-wide
 * state), so each replaced file that a reload loads stays mapped. Past
 * this, a reload that would load another one fails and says to restart. */
#define MORPHD_PLUGIN_VERSIONS_MAX 64
/* Versions of one script: an old one keeps only its descriptor (no code
 * is mapped, and its source is freed once a newer one loads), so more of
 * them are allowed. */
#define MORPHD_SCRIPT_VERSIONS_MAX 1024

/* Whether the plugin's file is no longer the one that was loaded. */
int morphd_plugin_file_changed(const morphd_plugin_t *p);

/* Unloads a plugin loaded by morphd_plugin_load(); safe on a zeroed one. */
void morphd_plugin_unload(morphd_plugin_t *p);

#endif
