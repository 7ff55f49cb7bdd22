/*
 * plugin_loader.c -- dlopen-based loading for plugin_loader.h. The order of
 * checks matters: the ABI version and struct size are read before any other
 * field, because a plugin built for another ABI may lay out the rest
 * differently.
 */
#include "plugin_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Like sshd's StrictModes: refuses `path` when it, or any folder above it,
 * can be written by someone other than root or the user morphd runs as --
 * such a person could make morphd run their code. A world-writable folder
 * with the sticky bit (/tmp) is fine: others cannot replace what is in it. */
static int check_permissions(const char *path, char *why, size_t why_size)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(why, why_size, "path too long");
        return -1;
    }
    uid_t me = geteuid();
    for (;;) {
        struct stat sb;
        const char *what = buf[0] ? buf : "/";
        if (stat(what, &sb) != 0) {
            snprintf(why, why_size, "%.300s: %s", what, strerror(errno));
            return -1;
        }
        bool is_dir = S_ISDIR(sb.st_mode);
        if (sb.st_uid != 0 && sb.st_uid != me) {
            snprintf(why, why_size, "%.300s is owned by uid %u, not by root or "
                     "the user morphd runs as (uid %u)", what,
                     (unsigned)sb.st_uid, (unsigned)me);
            return -1;
        }
        if ((sb.st_mode & (S_IWGRP | S_IWOTH)) &&
            !(is_dir && (sb.st_mode & S_ISVTX))) {
            snprintf(why, why_size, "%.300s is writable by %s (mode %03o); "
                     "run chmod go-w on it", what,
                     (sb.st_mode & S_IWOTH) ? "everyone" : "its group",
                     (unsigned)(sb.st_mode & 0777));
            return -1;
        }
        if (buf[0] == '\0')
            return 0; /* "/" was the last one */
        char *slash = strrchr(buf, '/');
        if (slash == NULL)
            return 0; /* a relative path: checked up to its first part */
        *slash = '\0';
    }
}

/* The part of the descriptor every ABI-1 plugin must have. */
#define MIN_DESC_SIZE offsetof(morph_plugin_t, reserved)

int morphd_plugin_load(const char *dir, const char *name, morphd_plugin_t *p,
                       char *err, size_t err_size)
{
    return morphd_plugin_load_variant(dir, name, 0, p, err, err_size);
}

int morphd_plugin_file_changed(const morphd_plugin_t *p)
{
    struct stat now;
    if (stat(p->path, &now) != 0)
        return 1;
    return now.st_dev != p->file.st_dev || now.st_ino != p->file.st_ino ||
           now.st_size != p->file.st_size ||
           now.st_mtim.tv_sec != p->file.st_mtim.tv_sec ||
           now.st_mtim.tv_nsec != p->file.st_mtim.tv_nsec;
}

int morphd_plugin_load_variant(const char *dir, const char *name,
                               unsigned variant, morphd_plugin_t *p, char *err,
                               size_t err_size)
{
    memset(p, 0, sizeof *p);
    char *path = NULL;
    char *dl_name = NULL;
    if (asprintf(&path, "%s/%s.so", dir, name) < 0) {
        snprintf(err, err_size, "plugin '%s': out of memory", name);
        return -1;
    }

    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, err_size, "plugin '%s': %s: %s%s", name, path,
                 strerror(errno),
                 errno == ENOENT ? " (is plugin_dir right? is it built?)" : "");
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, err_size, "plugin '%s': %s: not a regular file", name,
                 path);
        goto fail;
    }
    char why[512];
    if (check_permissions(path, why, sizeof why) != 0) {
        snprintf(err, err_size, "plugin '%s': %s: refusing to load: %s", name,
                 path, why);
        goto fail;
    }

    /* "dir/./././name.so": the same file under a name the dynamic loader
     * has not seen, so a replaced file is mapped anew */
    {
        size_t dlen = strlen(dir);
        dl_name = malloc(dlen + 2 * (size_t)variant + strlen(name) + 5);
        if (dl_name == NULL) {
            snprintf(err, err_size, "plugin '%s': out of memory", name);
            goto fail;
        }
        char *q = dl_name + sprintf(dl_name, "%s", dir);
        for (unsigned i = 0; i < variant; i++)
            q += sprintf(q, "/.");
        sprintf(q, "/%s.so", name);
    }

    /* RTLD_NODELETE: a plugin's code stays mapped after dlclose. Libraries
     * it pulls in (ICU) keep process-wide caches and atexit handlers that
     * would point into unmapped memory if the plugin went away. */
    dlerror();
    p->handle = dlopen(dl_name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (p->handle == NULL) {
        const char *dl_why = dlerror();
        snprintf(err, err_size, "plugin '%s': %s: cannot load: %s", name, path,
                 dl_why ? dl_why : "unknown dlopen error");
        goto fail;
    }

    dlerror();
    const morph_plugin_t *desc = dlsym(p->handle, MORPH_PLUGIN_SYMBOL);
    if (desc == NULL) {
        snprintf(err, err_size,
                 "plugin '%s': %s: does not export the symbol '%s' (declare "
                 "`MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin`)",
                 name, path, MORPH_PLUGIN_SYMBOL);
        goto fail;
    }
    if (desc->abi_version != MORPH_PLUGIN_ABI_VERSION) {
        snprintf(err, err_size,
                 "plugin '%s': %s: ABI version mismatch: morphd expects "
                 "version %d, the plugin was built for version %u; rebuild it "
                 "against this morph's <morph/plugin.h>",
                 name, path, MORPH_PLUGIN_ABI_VERSION, desc->abi_version);
        goto fail;
    }
    if (desc->struct_size < MIN_DESC_SIZE) {
        snprintf(err, err_size,
                 "plugin '%s': %s: descriptor is %u bytes, smaller than the "
                 "%zu of ABI version %d; was it built with "
                 "MORPH_PLUGIN_HEADER_INIT?",
                 name, path, desc->struct_size, MIN_DESC_SIZE,
                 MORPH_PLUGIN_ABI_VERSION);
        goto fail;
    }
    if (desc->transform == NULL) {
        snprintf(err, err_size, "plugin '%s': %s: has no transform function",
                 name, path);
        goto fail;
    }
    if (desc->name == NULL || strcmp(desc->name, name) != 0) {
        snprintf(err, err_size,
                 "plugin '%s': %s: the descriptor's name is '%s'; the file "
                 "name and the plugin name must match",
                 name, path, desc->name ? desc->name : "(null)");
        goto fail;
    }

    p->name = strdup(name);
    if (p->name == NULL) {
        snprintf(err, err_size, "plugin '%s': out of memory", name);
        goto fail;
    }
    p->path = path;
    p->desc = desc;
    p->file = sb;
    free(dl_name);
    return 0;

fail:
    if (p->handle != NULL)
        dlclose(p->handle);
    free(dl_name);
    free(path);
    memset(p, 0, sizeof *p);
    return -1;
}

void morphd_plugin_unload(morphd_plugin_t *p)
{
    if (p->handle != NULL)
        dlclose(p->handle);
    free(p->name);
    free(p->path);
    memset(p, 0, sizeof *p);
}
