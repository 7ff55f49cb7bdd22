/*
 * lua_plugin.h -- plugins written as Lua 5.4 scripts: a file NAME.lua in a
 * plugin folder is plugin NAME. The script returns a table whose
 * `transform(message, conn, options)` returns the reply; the bridge turns
 * that table into a plugin descriptor of the ABI (morph_plugin_t), so that
 * chains, reload, `morph pipe` and <morph/testing.h> treat a script as any
 * other plugin. docs/lua.md is the authors' guide.
 *
 * Each instance (a service on one worker) has a Lua state of its own: no
 * locks, and it scales with `workers`. The state is a sandbox (string,
 * table, math, utf8, os.time, os.clock and the `morph` table; nothing
 * that reaches files, programs or the network), every call has a budget
 * of VM instructions (NAME.budget), and the state's memory is capped by
 * an allocator of ours (NAME.memory): a script over either fails that
 * message, never the process.
 */
#ifndef MORPHD_LUA_PLUGIN_H
#define MORPHD_LUA_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

struct morphd_plugin;

/* A loaded script: its source, and the descriptor made from what it
 * returned. Owned by its morphd_plugin_t. */
typedef struct morphd_script morphd_script_t;

/* The options every script has besides its own: the budget of each call
 * (VM instructions) and the cap on its state's memory. */
#define MORPHD_SCRIPT_BUDGET_DEFAULT 10000000
#define MORPHD_SCRIPT_MEMORY_DEFAULT "64M"
#define MORPHD_SCRIPT_MEMORY_DEFAULT_BYTES ((size_t)64 << 20)

/* The largest script file read, in bytes. */
#define MORPHD_SCRIPT_MAX_BYTES (4u << 20)

/* Whether `path` names a script (ends in ".lua"). */
bool morphd_script_path(const char *path);

/* Reads the script at `file` (found and checked by the loader: symbolic
 * links resolved), runs it once in a sandbox to see what it returns, and
 * fills p->desc, p->options and p->script. `path` is the name it goes by
 * in messages (as plugin_dir led to it). Returns 0, or -1 with a message
 * in err that starts with the script's FILE:LINE. */
int morphd_script_load(const char *file, const char *path, const char *name,
                       struct morphd_plugin *p, char *err, size_t err_size);

/* Frees the script's source, once a newer version of it is loaded: only
 * create() reads it, and no new instance is made of a superseded version
 * (its descriptor stays, for the instances that serve on). Up to
 * MORPHD_SCRIPT_MAX_BYTES per reload would otherwise stay for good. */
void morphd_script_release_source(morphd_script_t *s);

/* Frees what morphd_script_load made. */
void morphd_script_free(morphd_script_t *s);

#endif
