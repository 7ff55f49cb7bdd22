/*
 * lua_patterns.h -- Lua 5.4's pattern functions (string.find, match,
 * gmatch, gsub) with a count of matching steps, for scripts: the
 * instruction budget does not see inside one C call, so a backtracking
 * pattern could otherwise hold a worker for as long as it takes.
 */
#ifndef MORPHD_LUA_PATTERNS_H
#define MORPHD_LUA_PATTERNS_H

#include <lua.h>

/* What one call of the script may still spend on matching. The bridge
 * sets `left` to `budget` before each call. */
typedef struct {
    long left;
    int budget;       /* for the message */
    const char *name; /* the script's, for the message */
} morphd_lua_steps_t;

/* Puts the four functions into the string library's table at index
 * `string_table`, each counting against `steps` (which must outlive the
 * state). A call that runs out fails with a Lua error that names the
 * budget. */
void morphd_lua_patterns_open(lua_State *L, int string_table,
                              morphd_lua_steps_t *steps);

#endif
