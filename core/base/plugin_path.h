/*
 * plugin_path.h -- plugin_dir as a search path: one or more folders
 * separated by blanks, searched in order. The first folder that has an
 * entry NAME.so or NAME.lua (a script) provides plugin NAME (a broken entry
 * there is an error; it is not skipped for a later folder), so a local
 * folder listed before the packaged one overrides or adds plugins without
 * touching dpkg's files. One folder holding both NAME.so and NAME.lua is
 * an error: which one was meant is the operator's to say.
 */
#ifndef MORPHD_PLUGIN_PATH_H
#define MORPHD_PLUGIN_PATH_H

#include <stddef.h>

/* Sets *path to the file (FOLDER/NAME.so or .lua, malloc'd) that provides plugin
 * `name` in the search path `dirs`. When no folder has it: with one folder,
 * *path is that folder's NAME.so, for the loader to report; with several,
 * returns -1 with a message naming them all in err. */
int morphd_plugin_path_find(const char *dirs, const char *name, char **path,
                            char *err, size_t err_size);

/* The length of NAME in a plugin file's name, NAME.so or NAME.lua (a
 * script); 0 for a name that is neither. */
size_t morphd_plugin_file_stem(const char *file);

/* Calls fn(folder, arg) for each folder of `dirs`, in order, with the
 * folder as a NUL-terminated string; stops when fn returns non-zero and
 * returns that. */
int morphd_plugin_path_each(const char *dirs,
                            int (*fn)(const char *folder, void *arg),
                            void *arg);

#endif
