/* Differential fuzzing of morph's pattern functions (core/lua_patterns.c)
 * against Lua 5.4's own string library: for any subject, pattern, start
 * and replacement, string.find, match, gmatch and gsub give the same
 * results, or both fail -- unless morph's ran out of its step budget,
 * which is the one thing it may do that Lua's does not. Input: a byte
 * choosing the function and the start, then subject, pattern and
 * replacement separated by 0xFF bytes (each cut short, so that Lua's own
 * matcher, which has no budget, stays quick). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "engine/lua_patterns.h"

#define STEPS 200000

static lua_State *theirs, *ours;
static morphd_lua_steps_t steps;

/* The results of one call, as text: "t:value|" each, or "error". */
static void call(lua_State *L, const char *fn, const char *s, size_t ls,
                 const char *p, size_t lp, const char *r, size_t lr,
                 long long init, char *out, size_t size, int *budget_out)
{
    size_t n = 0;
    out[0] = '\0';
    lua_settop(L, 0);
    lua_getglobal(L, "string");
    int is_gmatch = strcmp(fn, "gmatch") == 0;
    lua_getfield(L, 1, fn);
    lua_pushlstring(L, s, ls);
    lua_pushlstring(L, p, lp);
    int nargs = 2;
    if (strcmp(fn, "gsub") == 0) {
        lua_pushlstring(L, r, lr);
        lua_pushinteger(L, init); /* as the maximum of replacements */
        nargs = 4;
    } else {
        lua_pushinteger(L, init);
        nargs = 3;
    }
    steps.left = STEPS;
    if (lua_pcall(L, nargs, LUA_MULTRET, 0) != LUA_OK) {
        *budget_out = strstr(lua_tostring(L, -1), "over its budget") != NULL;
        snprintf(out, size, "error");
        return;
    }
    int top = lua_gettop(L);
    if (is_gmatch) { /* the iterator, run up to 64 times */
        for (int k = 0; k < 64; k++) {
            lua_pushvalue(L, 2);
            if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
                *budget_out = strstr(lua_tostring(L, -1), "over its budget") != NULL;
                snprintf(out, size, "error");
                return;
            }
            int got = lua_gettop(L) - top;
            if (got == 0 || lua_isnil(L, top + 1))
                break;
            for (int i = top + 1; i <= lua_gettop(L) && n + 1 < size; i++) {
                size_t l;
                const char *v = luaL_tolstring(L, i, &l);
                n += (size_t)snprintf(out + n, size - n, "%d:%.*s|",
                                      lua_type(L, i), (int)l, v);
                lua_pop(L, 1);
            }
            lua_settop(L, top);
            n += (size_t)snprintf(out + n, n < size ? size - n : 0, ";");
        }
        return;
    }
    for (int i = 2; i <= top && n + 1 < size; i++) {
        size_t l;
        const char *v = luaL_tolstring(L, i, &l);
        n += (size_t)snprintf(out + n, size - n, "%d:%.*s|", lua_type(L, i),
                              (int)l, v);
        lua_pop(L, 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (theirs == NULL) {
        theirs = luaL_newstate();
        luaL_openlibs(theirs);
        ours = luaL_newstate();
        luaL_openlibs(ours);
        steps.budget = STEPS;
        steps.name = "fuzz";
        lua_getglobal(ours, "string");
        morphd_lua_patterns_open(ours, -1, &steps);
        lua_pop(ours, 1);
    }
    if (size < 1)
        return 0;
    static const char *const fns[] = {"find", "match", "gmatch", "gsub"};
    const char *fn = fns[data[0] & 3];
    long long init = (long long)((int8_t)data[0] >> 2); /* -32 .. 31 */
    const char *parts[3] = {"", "", ""};
    size_t lens[3] = {0, 0, 0};
    const char *at = (const char *)data + 1, *end = (const char *)data + size;
    for (int i = 0; i < 3 && at <= end; i++) {
        const char *sep = memchr(at, 0xFF, (size_t)(end - at));
        parts[i] = at;
        lens[i] = (size_t)((sep ? sep : end) - at);
        at = (sep ? sep : end) + 1;
    }
    if (lens[0] > 40)
        lens[0] = 40;
    if (lens[1] > 16)
        lens[1] = 16;
    if (lens[2] > 8)
        lens[2] = 8;
    char a[8192], b[8192];
    int budget = 0, unused = 0;
    call(ours, fn, parts[0], lens[0], parts[1], lens[1], parts[2], lens[2],
         init, a, sizeof a, &budget);
    if (budget)
        return 0; /* morph's stopped where Lua's would go on */
    call(theirs, fn, parts[0], lens[0], parts[1], lens[1], parts[2], lens[2],
         init, b, sizeof b, &unused);
    if (strcmp(a, b) != 0) {
        fprintf(stderr, "string.%s differs: morph's '%s', Lua's '%s'\n", fn, a,
                b);
        abort();
    }
    return 0;
}
