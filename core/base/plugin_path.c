/*
 * plugin_path.c -- plugin_dir as a search path (plugin_path.h).
 */
#include "base/plugin_path.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char blanks[] = " \t";

int morphd_plugin_path_each(const char *dirs,
                            int (*fn)(const char *folder, void *arg),
                            void *arg)
{
    for (const char *p = dirs + strspn(dirs, blanks); *p != '\0';
         p += strspn(p, blanks)) {
        size_t len = strcspn(p, blanks);
        char *folder = strndup(p, len);
        if (folder == NULL)
            return -1;
        int rc = fn(folder, arg);
        free(folder);
        if (rc != 0)
            return rc;
        p += len;
    }
    return 0;
}

size_t morphd_plugin_file_stem(const char *file)
{
    static const char *const exts[] = {".so", ".lua"};
    size_t len = strlen(file);
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(exts[i]);
        if (len > n && strcmp(file + len - n, exts[i]) == 0)
            return len - n;
    }
    return 0;
}

typedef struct {
    const char *name;
    char *found;  /* the first folder's NAME.so or NAME.lua that exists */
    char *first;  /* the first folder's NAME.so, found or not */
    size_t n;     /* folders looked into */
    int error;    /* ENOMEM; EEXIST: both forms in one folder */
} find_t;

/* Whether folder/NAME.EXT is there: anything but "nothing" counts (a
 * dangling link or a folder in the way is the loader's to report, not a
 * reason to look further). *candidate is the path (malloc'd), or NULL when
 * out of memory. */
static bool entry_there(const char *folder, const char *name, const char *ext,
                        char **candidate)
{
    if (asprintf(candidate, "%s/%s.%s", folder, name, ext) < 0) {
        *candidate = NULL;
        return false;
    }
    struct stat sb;
    return lstat(*candidate, &sb) == 0 || (errno != ENOENT && errno != ENOTDIR);
}

static int look_into(const char *folder, void *arg)
{
    find_t *f = arg;
    char *so = NULL, *lua = NULL;
    bool has_so = entry_there(folder, f->name, "so", &so);
    bool has_lua = so != NULL && entry_there(folder, f->name, "lua", &lua);
    if (so == NULL || lua == NULL) {
        free(so);
        f->error = ENOMEM;
        return -1;
    }
    f->n++;
    if (has_so && has_lua) { /* which one was meant? the operator says */
        free(f->first);
        f->first = NULL;
        free(lua);
        f->found = so;
        f->error = EEXIST;
        return 1;
    }
    if (has_so || has_lua) {
        free(f->first);
        f->first = NULL;
        f->found = has_so ? so : lua;
        free(has_so ? lua : so);
        return 1;
    }
    free(lua);
    if (f->first == NULL)
        f->first = so;
    else
        free(so);
    return 0;
}

int morphd_plugin_path_find(const char *dirs, const char *name, char **path,
                            char *err, size_t err_size)
{
    find_t f = {.name = name};
    morphd_plugin_path_each(dirs, look_into, &f);
    *path = NULL;
    if (f.error == EEXIST) {
        size_t len = strlen(f.found) - 3; /* FOLDER/NAME */
        snprintf(err, err_size, "plugin '%s': %.*s.so and %.*s.lua are both "
                 "there: one folder may hold only one of them; remove the "
                 "other", name, (int)len, f.found, (int)len, f.found);
        free(f.found);
        return -1;
    }
    if (f.found != NULL) {
        *path = f.found;
        return 0;
    }
    if (f.error != 0) {
        free(f.first);
        snprintf(err, err_size, "plugin '%s': out of memory", name);
        return -1;
    }
    if (f.n == 1) {
        *path = f.first;
        return 0;
    }
    free(f.first);
    if (f.n == 0)
        snprintf(err, err_size, "plugin '%s': plugin_dir names no folder",
                 name);
    else
        snprintf(err, err_size, "plugin '%s': no %s.so or %s.lua in any "
                 "folder of plugin_dir (%s) -- is it right? is the plugin "
                 "built?", name, name, name, dirs);
    return -1;
}
