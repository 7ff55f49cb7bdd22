/*
 * plugin_path.c -- plugin_dir as a search path (plugin_path.h).
 */
#include "plugin_path.h"

#include <errno.h>
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

typedef struct {
    const char *name;
    char *found;  /* the first folder's NAME.so that exists */
    char *first;  /* the first folder's NAME.so, found or not */
    size_t n;     /* folders looked into */
    int error;    /* ENOMEM */
} find_t;

static int look_into(const char *folder, void *arg)
{
    find_t *f = arg;
    char *candidate = NULL;
    if (asprintf(&candidate, "%s/%s.so", folder, f->name) < 0) {
        f->error = ENOMEM;
        return -1;
    }
    f->n++;
    struct stat sb;
    /* anything there but "nothing" counts: a dangling link or a folder in
     * the way is the loader's to report, not a reason to look further */
    if (lstat(candidate, &sb) == 0 || (errno != ENOENT && errno != ENOTDIR)) {
        free(f->first);
        f->first = NULL;
        f->found = candidate;
        return 1;
    }
    if (f->first == NULL)
        f->first = candidate;
    else
        free(candidate);
    return 0;
}

int morphd_plugin_path_find(const char *dirs, const char *name, char **path,
                            char *err, size_t err_size)
{
    find_t f = {.name = name};
    morphd_plugin_path_each(dirs, look_into, &f);
    *path = NULL;
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
        snprintf(err, err_size, "plugin '%s': no %s.so in any folder of "
                 "plugin_dir (%s) -- is it right? is the plugin built?",
                 name, name, dirs);
    return -1;
}
