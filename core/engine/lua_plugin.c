/*
 * lua_plugin.c -- Lua scripts as plugins (lua_plugin.h).
 *
 * A script is run twice over: once when it is loaded, in a state of its
 * own, to read what it returns (the descriptor: version, description,
 * chunk_safe, options, counters); then once per instance in create(),
 * whose state then serves that instance's messages. Both runs are in the
 * same sandbox, under the same budget and memory cap, so that what
 * `morphd -t` accepts is what serves.
 *
 * The instance's stack holds, for its whole life, the functions and the
 * options table at fixed slots (SLOT_*). Every step that can raise a Lua
 * error -- it allocates, runs script code or may meet the budget -- runs
 * under lua_pcall, inside a C function given what it needs
 * (call_protected, make_slots, read_protected): an error outside one
 * would end in Lua's panic, which aborts the process. Outside them the
 * bridge only pushes a few values into the stack's reserved room and
 * reads what came back.
 */
#include "engine/lua_plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <morph/plugin.h>

#include "engine/chain.h"
#include "base/log.h"
#include "engine/lua_patterns.h"
#include "engine/options.h"
#include "engine/plugin_loader.h"

/* The fixed stack slots of an instance's state. */
#define SLOT_TRANSFORM 1
#define SLOT_OPTIONS 2
#define SLOT_OPEN 3
#define SLOT_CLOSE 4
#define SLOT_DECODE 5 /* a codec's (framing = NAME) decode and encode */
#define SLOT_ENCODE 6
#define SLOTS 6

/* The registry key of the instance's counters: name -> light userdata
 * (morph_counter_t *). */
static const char counters_key = 'c';
/* The registry key of the metatable that marks what morph.defer returns. */
static const char defer_key = 'd';
/* The registry key of morph.no_reply, the value a transform returns to
 * send nothing at all. */
static const char no_reply_key = 'n';

/* How a declared option's value reaches the script. */
typedef enum { OPT_STRING, OPT_INTEGER, OPT_NUMBER, OPT_BOOLEAN } opt_kind_t;

struct morphd_script {
    morph_plugin_t desc;
    char *name;
    char *path;
    char *source;
    size_t source_len;
    int last_line;        /* where the script's `return` usually is */
    char short_src[LUA_IDSIZE]; /* how Lua names it in messages: a long
                                   path is cut to "...its end" */
    char *version;
    char *description;
    morph_option_decl_t *decls; /* the script's own, then budget and memory,
                                   then the end */
    size_t n_own;               /* the script's own options */
    opt_kind_t *kinds;          /* of the script's own options */
    char **strings;             /* what decls point to */
    size_t n_strings;
    char **counters; /* name, help, name, help, ... */
    size_t n_counters;
    bool codec;      /* it has decode and encode: framing = NAME */
    bool transforms; /* it has transform */
};

/* Memory of one state, capped; and what one call may allocate in all
 * (churn_cap), which bounds the time of building strings that the
 * instruction budget cannot see (a loop of s = s .. x copies s each
 * time: quadratic work in few instructions). */
typedef struct {
    size_t used;
    size_t cap;
    size_t churn;     /* bytes allocated since the call began */
    size_t churn_cap; /* 0: not counted (outside calls) */
    bool over_churn;  /* the last failed allocation was churn's */
} lua_mem_t;

/* Bytes a call may allocate in all, per instruction of its budget. */
#define CHURN_PER_INSTRUCTION 64

typedef struct lua_instance {
    lua_State *L;
    lua_mem_t mem;
    const morphd_script_t *script;
    const morph_host_t *host;  /* NULL while the script is inspected */
    int budget;                /* VM instructions per call */
    morphd_lua_steps_t steps;  /* pattern-matching steps left in a call */
    const morph_conn_t *conn;  /* the message in flight's, for morph.peer */
    morph_out_t *out;          /* its output: its HTTP request, for
                                  morph.request, morph.status... */
    /* a codec: the message decode() returned, kept until its next call,
     * and the reason of its last error */
    unsigned char *decoded;
    size_t decoded_cap;
    char codec_why[512];
} lua_instance_t;

bool morphd_script_path(const char *path)
{
    size_t len = strlen(path);
    return len > 4 && strcmp(path + len - 4, ".lua") == 0;
}

/* --- the state: memory, budget, sandbox -------------------------------------- */

/* lua_Alloc with a cap: an allocation past it fails, which Lua turns into
 * a "not enough memory" error of the call (the state stays usable). When
 * `ptr` is NULL, `osize` is a type tag, not a size. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lua_mem_t *m = ud;
    size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        m->used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > m->cap - m->used)
        return NULL;
    if (nsize > old && m->churn_cap != 0) {
        if (nsize - old > m->churn_cap - m->churn) {
            m->over_churn = true;
            return NULL;
        }
        m->churn += nsize - old;
    }
    void *q = realloc(ptr, nsize);
    if (q != NULL)
        m->used = m->used - old + nsize;
    return q;
}

static lua_instance_t *instance_of(lua_State *L)
{
    return *(lua_instance_t **)lua_getextraspace(L);
}

/* The count hook fires once the call has run its budget of instructions.
 * From then on it fires at every instruction, so that a script catching
 * the error with pcall cannot go on: the error reaches the bridge. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_instance_t *in = instance_of(L);
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    lua_Debug here;
    if (lua_getstack(L, 0, &here) && lua_getinfo(L, "Sl", &here) &&
        here.currentline > 0)
        lua_pushfstring(L, "%s:%d: ", here.short_src, here.currentline);
    else
        lua_pushliteral(L, "");
    lua_pushfstring(L, "over its budget of %d instructions (%s.budget)",
                    in->budget, in->script->name);
    lua_concat(L, 2);
    lua_error(L);
}

static void arm_budget(lua_instance_t *in)
{
    lua_sethook(in->L, budget_hook, LUA_MASKCOUNT, in->budget);
    in->steps.left = in->budget;
    in->steps.budget = in->budget;
    in->steps.name = in->script->name;
    in->mem.churn = 0;
    in->mem.over_churn = false;
    in->mem.churn_cap = (size_t)in->budget * CHURN_PER_INSTRUCTION;
}

/* A field of the table at `t`, read raw: a metatable of the script's
 * runs no code of its in the bridge. Pushes it; returns its type. */
static int raw_field(lua_State *L, int t, const char *key)
{
    t = lua_absindex(L, t);
    lua_pushstring(L, key);
    return lua_rawget(L, t);
}

/* load() for scripts: text only (a binary chunk would bypass the
 * compiler's checks), in the sandbox unless given an environment. An env
 * not given stays not given (a nil one would leave the chunk without
 * globals). */
static int sandbox_load(lua_State *L)
{
    int n = lua_gettop(L) > 3 ? 4 : 3;
    lua_settop(L, n);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* setmetatable() for scripts: no __gc metamethods, which Lua runs with
 * hooks off (out of the budget's reach) and at times of its choosing. Lua
 * marks an object for finalisation only when its metatable has a __gc
 * field then (read raw), so a __gc added later is never run. */
static int sandbox_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2) && raw_field(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "__gc metamethods are not available to scripts");
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static void script_log(lua_instance_t *in, int level, const char *text)
{
    if (in->host != NULL)
        in->host->log(in->host, level, text);
    else
        morphd_log(level, "plugin %s: %s", in->script->name, text);
}

/* print(...): one line in morphd's log, at level info. */
static int sandbox_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    script_log(instance_of(L), MORPH_LOG_INFO, lua_tostring(L, -1));
    return 0;
}

/* morph.log(level, message), level "error", "warn", "info" or "debug" */
static int morph_log_fn(lua_State *L)
{
    static const char *const levels[] = {"error", "warn", "info", "debug",
                                         NULL};
    int level = luaL_checkoption(L, 1, NULL, levels);
    const char *text = luaL_checkstring(L, 2);
    script_log(instance_of(L), level, text);
    return 0;
}

/* morph.count(name [, n]): adds to a counter the script declared in its
 * `counters` table (shown by `morph stats` under the plugin). */
static int morph_count_fn(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_Integer n = luaL_optinteger(L, 2, 1);
    luaL_argcheck(L, n >= 0, 2, "a counter only grows");
    lua_instance_t *in = instance_of(L);
    if (in->host == NULL) /* the script is being inspected: no counters */
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &counters_key);
    lua_getfield(L, -1, name);
    morph_counter_t *c = lua_touserdata(L, -1);
    if (c == NULL && lua_isnil(L, -1))
        return luaL_error(L, "no counter '%s': declare it in the table the "
                          "script returns (counters = { %s = \"what it "
                          "counts\" })", name, name);
    if (c != NULL)
        in->host->counter_add(c, (uint64_t)n);
    return 0;
}

/* What the ABI's conn_info tells of the connection whose message is
 * being transformed; false outside a call. */
static bool current_conn(lua_State *L, morph_conn_info_t *info)
{
    lua_instance_t *in = instance_of(L);
    *info = (morph_conn_info_t){.struct_size = sizeof *info};
    return in->host != NULL && in->conn != NULL &&
           in->host->conn_info(in->host, in->conn, info) == MORPH_OK;
}

/* morph.peer(): the address, port and transport of the client whose
 * message is being transformed ("" and 0 when it has none, as over
 * unix://), or nil outside a call. */
static int morph_peer_fn(lua_State *L)
{
    morph_conn_info_t info;
    if (!current_conn(L, &info)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, info.peer_address);
    lua_pushinteger(L, info.peer_port);
    lua_pushstring(L, info.transport ? info.transport : "");
    return 3;
}

/* --- HTTP: the request a message came in, and its response ------------------- */

/* morph.request(): the HTTP request of the message being transformed, as
 * a table (method, target, path, query, version, headers with lower-case
 * names, repeated ones joined with ", "), or nil: no request (tcp://...,
 * or outside a call). */
static int morph_request_fn(lua_State *L)
{
    lua_instance_t *in = instance_of(L);
    morph_http_request_t req = {.struct_size = sizeof req};
    if (in->host == NULL || in->out == NULL ||
        in->host->http_request(in->host, in->out, &req) != MORPH_OK) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 6);
    lua_pushlstring(L, req.method, req.method_len);
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, req.target, req.target_len);
    lua_setfield(L, -2, "target");
    const char *q = memchr(req.target, '?', req.target_len);
    size_t path_len = q != NULL ? (size_t)(q - req.target) : req.target_len;
    lua_pushlstring(L, req.target, path_len);
    lua_setfield(L, -2, "path");
    if (q != NULL) {
        lua_pushlstring(L, q + 1, req.target_len - path_len - 1);
        lua_setfield(L, -2, "query");
    }
    lua_pushstring(L, req.version == 10 ? "1.0" : "1.1");
    lua_setfield(L, -2, "version");
    lua_newtable(L);
    morph_http_field_t f = {.struct_size = sizeof f};
    for (size_t i = 0;
         in->host->http_header(in->host, in->out, NULL, i, &f) == MORPH_OK;
         i++) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (size_t k = 0; k < f.name_len; k++) {
            char c = f.name[k];
            luaL_addchar(&b, c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
        }
        luaL_pushresult(&b); /* headers, name */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) { /* name, earlier value */
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, f.value, f.value_len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, f.value, f.value_len);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    return 1;
}

/* Whether the message being transformed came in an HTTP request. */
static bool in_request(lua_instance_t *in)
{
    morph_http_request_t req = {.struct_size = sizeof req};
    return in->host != NULL && in->out != NULL &&
           in->host->http_request(in->host, in->out, &req) == MORPH_OK;
}

/* morph.status(code): the HTTP response's status; false when the message
 * came in no request. A status that cannot carry a reply is an error. */
static int morph_status_fn(lua_State *L)
{
    lua_Integer code = luaL_checkinteger(L, 1);
    lua_instance_t *in = instance_of(L);
    if (!in_request(in)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (code < 200 || code > 599 ||
        in->host->http_status(in->host, in->out, (int)code) != MORPH_OK)
        return luaL_error(L, "morph.status(%d): a reply's status is "
                          "200..599 but 204 and 304 (for a 204, return "
                          "morph.no_reply)", (int)code);
    lua_pushboolean(L, 1);
    return 1;
}

/* morph.add_header(name, value): a header field of the HTTP response;
 * false when the message came in no request. A field morphd refuses (its
 * own, a control character, over 4 KiB in all) is an error. */
static int morph_add_header_fn(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *value = luaL_checkstring(L, 2);
    lua_instance_t *in = instance_of(L);
    if (!in_request(in)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (in->host->http_header_add(in->host, in->out, name, value) != MORPH_OK)
        return luaL_error(L, "morph.add_header('%s'): refused (a name that "
                          "is no token, a control character in the value, "
                          "a field morphd writes itself such as "
                          "Content-Length, or over 4 KiB in all)", name);
    lua_pushboolean(L, 1);
    return 1;
}

/* morph.conn_info(): the same, and the rest of what morph knows of the
 * connection, as a table (nil outside a call). */
static int morph_conn_info_fn(lua_State *L)
{
    morph_conn_info_t info;
    if (!current_conn(L, &info)) {
        lua_pushnil(L);
        return 1;
    }
    const struct {
        const char *key;
        const char *text; /* or, when NULL, */
        lua_Integer number;
    } fields[] = {
        {"transport", info.transport ? info.transport : "", 0},
        {"service", info.service ? info.service : "", 0},
        {"worker", NULL, info.worker},
        {"peer_address", info.peer_address, 0},
        {"peer_port", NULL, info.peer_port},
        {"local_address", info.local_address, 0},
        {"local_port", NULL, info.local_port},
        {"path", info.path, 0},
        {"peer_uid", NULL, info.peer_uid},
        {"peer_gid", NULL, info.peer_gid},
        {"peer_pid", NULL, info.peer_pid},
    };
    size_t n = sizeof fields / sizeof *fields;
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        if (fields[i].text != NULL)
            lua_pushstring(L, fields[i].text);
        else
            lua_pushinteger(L, fields[i].number);
        lua_setfield(L, -2, fields[i].key);
    }
    return 1;
}

/* morph.defer(ms, fn): what transform returns to answer later. After
 * `ms` milliseconds fn() is called, under the budget, and what it returns
 * is the reply (or nil, "reason": the message fails). Meanwhile the
 * worker serves everyone else, and this connection's later messages
 * wait their turn. */
static int morph_defer_fn(lua_State *L)
{
    lua_Integer ms = luaL_checkinteger(L, 1);
    luaL_argcheck(L, ms >= 0 && ms <= 86400000, 1, "from 0 to 86400000 ms");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &defer_key);
    lua_setmetatable(L, -2);
    return 1;
}

/* Removes t[key] from the table at the top of the stack. */
static void drop_field(lua_State *L, const char *key)
{
    lua_pushnil(L);
    lua_setfield(L, -2, key);
}

/* __index of the globals and of `os`: reading a name the sandbox removed
 * says so, instead of an "attempt to index a nil value" at its first use
 * (upvalue 1: the table's name for the message, "" for the globals).
 * Other names read as nil, as in plain Lua. */
static int removed_name(lua_State *L)
{
    static const char *const removed[] = {
        "io", "debug", "package", "require", "dofile", "loadfile",
        "collectgarbage", "warn", "coroutine", "execute", "getenv", "remove",
        "rename", "exit", "tmpname", "setlocale", "date", "difftime", "dump",
        NULL};
    const char *name = lua_tostring(L, 2);
    const char *table = lua_tostring(L, lua_upvalueindex(1));
    for (size_t i = 0; name != NULL && removed[i] != NULL; i++) {
        if (strcmp(name, removed[i]) != 0)
            continue;
        luaL_where(L, 2);
        return luaL_error(L, "%s%s%s%s is not available to scripts: morph's "
                          "sandbox removes it (docs/lua.md, \"The sandbox\")",
                          lua_tostring(L, -1), table, table[0] ? "." : "",
                          name);
    }
    return 0;
}

/* Gives the table at the top of the stack the __index above. */
static void mark_removed(lua_State *L, const char *table)
{
    lua_createtable(L, 0, 1);
    lua_pushstring(L, table);
    lua_pushcclosure(L, removed_name, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

/* The sandbox: string, table, math, utf8, os.time and os.clock, the base
 * library without what reaches files or bytecode, and the `morph` table.
 * Runs under the budget, inside lua_pcall (the libraries allocate). */
static int open_sandbox(lua_State *L)
{
    lua_instance_t *in = instance_of(L);
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0); /* not as a global */
    lua_settop(L, 0);

    lua_pushglobaltable(L);
    static const char *const unsafe[] = {"dofile", "loadfile", "require",
                                         "collectgarbage", "warn", NULL};
    for (size_t i = 0; unsafe[i] != NULL; i++)
        drop_field(L, unsafe[i]);
    lua_getfield(L, -1, "load");
    lua_pushcclosure(L, sandbox_load, 1);
    lua_setfield(L, -2, "load");
    lua_getfield(L, -1, "setmetatable");
    lua_pushcclosure(L, sandbox_setmetatable, 1);
    lua_setfield(L, -2, "setmetatable");
    lua_pushcfunction(L, sandbox_print);
    lua_setfield(L, -2, "print");

    lua_getfield(L, -1, LUA_STRLIBNAME); /* bytecode out, as in */
    drop_field(L, "dump");
    /* matching that counts its steps (lua_patterns.c) */
    morphd_lua_patterns_open(L, -1, &in->steps);
    mark_removed(L, "string");
    lua_pop(L, 1);

    /* os: the clock only */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, LUA_OSLIBNAME);
    lua_createtable(L, 0, 2);
    lua_getfield(L, -2, "time");
    lua_setfield(L, -2, "time");
    lua_getfield(L, -2, "clock");
    lua_setfield(L, -2, "clock");
    mark_removed(L, "os");
    lua_setfield(L, -4, LUA_OSLIBNAME);
    drop_field(L, LUA_OSLIBNAME); /* from package.loaded: no way back */
    lua_pop(L, 2);

    static const luaL_Reg morph_fns[] = {
        {"log", morph_log_fn},         {"count", morph_count_fn},
        {"peer", morph_peer_fn},       {"defer", morph_defer_fn},
        {"conn_info", morph_conn_info_fn},
        {"request", morph_request_fn}, {"status", morph_status_fn},
        {"add_header", morph_add_header_fn},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 11);
    lua_pushstring(L, in->host ? in->host->service : "");
    lua_setfield(L, -2, "service");
    lua_pushinteger(L, in->host ? in->host->worker : 0);
    lua_setfield(L, -2, "worker");
    luaL_setfuncs(L, morph_fns, 0);
    lua_newtable(L); /* a value of its own: compared by identity */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &no_reply_key);
    lua_setfield(L, -2, "no_reply");
    lua_setfield(L, -2, "morph");
    mark_removed(L, "");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &defer_key);
    return 0;
}

/* A new sandboxed state for `in` (mem.cap and budget set). Returns 0, or
 * -1 with a reason. */
static int state_new(lua_instance_t *in, char *err, size_t err_size)
{
    in->mem.used = 0;
    in->L = lua_newstate(capped_alloc, &in->mem);
    if (in->L == NULL) {
        snprintf(err, err_size, "cannot make a Lua state: out of memory");
        return -1;
    }
    *(lua_instance_t **)lua_getextraspace(in->L) = in;
    arm_budget(in);
    lua_pushcfunction(in->L, open_sandbox);
    if (lua_pcall(in->L, 0, 0, 0) != LUA_OK) {
        snprintf(err, err_size, "cannot set up the Lua sandbox: %s",
                 lua_tostring(in->L, -1));
        lua_close(in->L);
        in->L = NULL;
        return -1;
    }
    return 0;
}

/* A message of Lua's about the script, into out, with the script's whole
 * path where Lua wrote the cut-down one: messages start with FILE:LINE. */
static void with_full_path(const morphd_script_t *s, const char *msg,
                           char *out, size_t size)
{
    size_t n = strlen(s->short_src);
    if (n > 0 && strncmp(msg, s->short_src, n) == 0 && msg[n] == ':')
        snprintf(out, size, "%s%s", s->path, msg + n);
    else
        snprintf(out, size, "%s", msg);
}

/* Runs the script's source in the state; leaves what it returned on the
 * stack. Returns 0, or -1 with "FILE:LINE: ..." in err. */
static int run_script(lua_instance_t *in, char *err, size_t err_size)
{
    const morphd_script_t *s = in->script;
    lua_State *L = in->L;
    if (s->source == NULL) { /* (find_or_load never hands one out) */
        snprintf(err, err_size, "%s:1: a newer version of the script was "
                 "loaded since", s->path);
        return -1;
    }
    char chunk[4200];
    snprintf(chunk, sizeof chunk, "@%s", s->path);
    arm_budget(in);
    int rc = luaL_loadbufferx(L, s->source, s->source_len, chunk, "t");
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 1, 0);
    if (rc != LUA_OK) {
        /* (a number would be converted in place, which allocates) */
        const char *why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                          : NULL;
        char text[1024];
        with_full_path(s, why ? why : "", text, sizeof text);
        if (rc == LUA_ERRMEM)
            snprintf(err, err_size, "%s:1: out of memory: over %s.memory "
                     "(%zu bytes) while running the script", s->path, s->name,
                     in->mem.cap);
        else if (why != NULL && strncmp(text, s->path, strlen(s->path)) == 0)
            snprintf(err, err_size, "%s", text);
        else /* an error object without a position */
            snprintf(err, err_size, "%s:1: %s", s->path,
                     why ? why : "the script raised an error that is not a "
                                 "string");
        return -1;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, err_size, "%s:%d: the script returned %s; it must "
                 "return a table with a transform function: return { "
                 "transform = function(message, conn, options) ... end }",
                 s->path, s->last_line, luaL_typename(L, -1));
        return -1;
    }
    return 0;
}

/* --- the descriptor's callbacks -------------------------------------------- */

static const morphd_script_t *script_of(const morph_host_t *host)
{
    /* the stage's host: its plugin is the script's (host.c, chain.h) */
    const morphd_stage_t *st = host->host_private;
    return st->plugin->script;
}

/* Pushes an option's value as the script declared it (the list holds
 * normalised text; NULL for an unset string without a default). */
static void push_option(lua_State *L, opt_kind_t kind, const char *value)
{
    switch (kind) {
    case OPT_INTEGER:
        lua_pushinteger(L, (lua_Integer)strtoll(value, NULL, 10));
        break;
    case OPT_NUMBER:
        lua_pushnumber(L, strtod(value, NULL));
        break;
    case OPT_BOOLEAN:
        lua_pushboolean(L, value[0] == 'y');
        break;
    case OPT_STRING:
        lua_pushstring(L, value ? value : "");
        break;
    }
}

static void script_destroy(void *instance)
{
    lua_instance_t *in = instance;
    if (in == NULL)
        return;
    if (in->L != NULL)
        lua_close(in->L);
    free(in->decoded);
    free(in);
}

/* create()'s work on the state, which may raise errors (memory, the
 * budget): run under lua_pcall. */
typedef struct {
    lua_instance_t *in;
    const morph_option_t *opts;
    size_t n_opts;
    char *err;
    size_t err_size;
    int rc;
} slots_ctx_t;

/* (ctx, returned table) -> transform, options, open, close */
static int make_slots(lua_State *L)
{
    slots_ctx_t *x = lua_touserdata(L, 1);
    const morphd_script_t *s = x->in->script;
    const morph_host_t *host = x->in->host;
    x->rc = -1;
    if (raw_field(L, 2, "transform") != LUA_TFUNCTION &&
        (s->transforms || !lua_isnil(L, -1))) {
        snprintf(x->err, x->err_size, "%s:%d: transform is %s here, not a "
                 "function (the script returns something else when it runs "
                 "again)", s->path, s->last_line, luaL_typename(L, -1));
        return 0;
    }
    lua_createtable(L, 0, (int)s->n_own);
    for (size_t i = 0; i < s->n_own; i++) {
        const char *name = s->decls[i].name;
        const char *value = morph_option_get(x->opts, x->n_opts, name);
        char *end = NULL;
        if (s->kinds[i] == OPT_NUMBER && value != NULL &&
            (strtod(value, &end), end == value || *end != '\0')) {
            snprintf(x->err, x->err_size, "%s.%s: '%s' is not a number",
                     s->name, name, value);
            return 0;
        }
        push_option(L, s->kinds[i], value);
        lua_setfield(L, -2, name);
    }
    raw_field(L, 2, "open");
    raw_field(L, 2, "close");
    raw_field(L, 2, "decode");
    raw_field(L, 2, "encode");
    lua_createtable(L, 0, (int)s->n_counters);
    for (size_t i = 0; i < s->n_counters; i++) {
        morph_counter_t *c = host->counter(host, s->counters[2 * i],
                                           s->counters[2 * i + 1]);
        if (c == NULL) {
            snprintf(x->err, x->err_size, "%s:%d: counter '%s': no room for "
                     "it (64 counters per plugin at most)", s->path,
                     s->last_line, s->counters[2 * i]);
            return 0;
        }
        lua_pushlightuserdata(L, c);
        lua_setfield(L, -2, s->counters[2 * i]);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &counters_key);
    x->rc = 0;
    return SLOTS;
}

static int script_create(const morph_host_t *host, const morph_option_t *opts,
                         size_t n_opts, void **instance, char *err,
                         size_t err_size)
{
    const morphd_script_t *s = script_of(host);
    lua_instance_t *in = calloc(1, sizeof *in);
    if (in == NULL) {
        snprintf(err, err_size, "out of memory");
        return MORPH_ERROR;
    }
    in->script = s;
    in->host = host;
    in->budget = (int)morph_option_int(opts, n_opts, "budget",
                                       MORPHD_SCRIPT_BUDGET_DEFAULT);
    in->mem.cap = (size_t)morph_option_int(opts, n_opts, "memory",
                                           MORPHD_SCRIPT_MEMORY_DEFAULT_BYTES);
    if (state_new(in, err, err_size) != 0 || run_script(in, err, err_size) != 0)
        goto fail;
    lua_State *L = in->L; /* the stack: what the script returned */
    slots_ctx_t x = {.in = in, .opts = opts, .n_opts = n_opts, .err = err,
                     .err_size = err_size};
    lua_pushcfunction(L, make_slots);
    lua_pushlightuserdata(L, &x);
    lua_pushvalue(L, 1);
    arm_budget(in);
    int rc = lua_pcall(L, 2, SLOTS, 0);
    if (rc != LUA_OK) {
        snprintf(err, err_size, "%s:%d: %s", s->path, s->last_line,
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                : "an error while setting up");
        goto fail;
    }
    if (x.rc != 0)
        goto fail;
    lua_remove(L, 1); /* the slots are all that stays */
    *instance = in;
    return MORPH_OK;

fail:
    script_destroy(in);
    return MORPH_ERROR;
}

/* One call of the script, made under lua_pcall: the connection's table is
 * made (when `ref` is 0) and the message pushed in there too, as both
 * allocate and so may fail. */
typedef struct {
    lua_instance_t *in;
    const morph_msg_t *msg; /* NULL: open(conn) or close(conn) */
    int ref;                /* the connection's table; set when made */
    int nres;
    int defer_fn;           /* transform returned morph.defer: its function */
    uint64_t defer_ms;
} call_ctx_t;

/* Whether the value at `i` is what morph.defer returned. */
static bool is_defer_mark(lua_State *L, int i)
{
    if (lua_type(L, i) != LUA_TTABLE || !lua_getmetatable(L, i))
        return false;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &defer_key);
    bool mark = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return mark;
}

/* (ctx, function, options) -> what the function returned */
static int call_protected(lua_State *L)
{
    call_ctx_t *x = lua_touserdata(L, 1);
    if (x->ref == 0) {
        lua_createtable(L, 0, 0);
        x->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (lua_isnil(L, 2)) { /* no open(): only the connection's table */
        for (int i = 0; i < x->nres; i++)
            lua_pushnil(L);
        return x->nres;
    }
    lua_pushvalue(L, 2);
    int nargs = 1;
    if (x->msg != NULL) {
        lua_pushlstring(L, (const char *)x->msg->data, x->msg->len);
        nargs++;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->ref);
    if (x->msg != NULL) {
        lua_pushvalue(L, 3);
        nargs++;
        if (x->msg->flags & MORPH_MSG_END) {
            lua_pushboolean(L, 1);
            nargs++;
        }
    }
    lua_call(L, nargs, x->nres);
    if (x->msg != NULL && is_defer_mark(L, -2)) { /* kept until it fires */
        lua_rawgeti(L, -2, 1);
        x->defer_ms = (uint64_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_rawgeti(L, -2, 2);
        x->defer_fn = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return x->nres;
}

/* Calls the function in `slot`: transform(message, conn, options [,
 * true at the end of a stream]) when x->msg is set, open(conn) or
 * close(conn) otherwise. Returns the lua_pcall status, with x->nres
 * results on the stack. Pushing these few values needs no memory: the
 * stack's base room (LUA_MINSTACK) holds them. */
static int call_script(lua_instance_t *in, int slot, call_ctx_t *x)
{
    lua_State *L = in->L;
    lua_pushcfunction(L, call_protected);
    lua_pushlightuserdata(L, x);
    lua_pushvalue(L, slot);
    lua_pushvalue(L, SLOT_OPTIONS);
    arm_budget(in);
    return lua_pcall(L, 3, x->nres, 0);
}

/* A failed call's reason, into why[]; the stack is back to its slots. */
static void call_error(lua_instance_t *in, int rc, char *why, size_t size)
{
    lua_State *L = in->L;
    if (rc == LUA_ERRMEM && in->mem.over_churn) {
        snprintf(why, size, "%s: over its budget: allocated more than %zu "
                 "bytes in one call (%d bytes per instruction of %s.budget; "
                 "building a string piece by piece with .. copies it each "
                 "time: use table.concat)", in->script->path,
                 in->mem.churn_cap, CHURN_PER_INSTRUCTION, in->script->name);
        lua_settop(L, SLOTS);
        lua_gc(L, LUA_GCCOLLECT);
        return;
    }
    if (rc == LUA_ERRMEM) {
        snprintf(why, size, "%s: out of memory: over %s.memory (%zu bytes)",
                 in->script->path, in->script->name, in->mem.cap);
        lua_settop(L, SLOTS);
        lua_gc(L, LUA_GCCOLLECT); /* what the failed call left */
        return;
    }
    /* (a number would be converted in place, which allocates) */
    if (lua_type(L, -1) == LUA_TSTRING)
        with_full_path(in->script, lua_tostring(L, -1), why, size);
    else
        snprintf(why, size, "%s: the script raised an error that is %s, not "
                 "a string", in->script->path, luaL_typename(L, -1));
    lua_settop(L, SLOTS);
}

/* open(conn) with its connection (ABI 3's conn_open2): morph.peer() and
 * morph.conn_info() describe it there too, so a script can refuse a
 * connection by its peer. */
static int script_conn_open(void *instance, const morph_conn_t *mc, void **conn)
{
    lua_instance_t *in = instance;
    call_ctx_t x = {.in = in, .nres = 1};
    in->conn = mc;
    int rc = call_script(in, SLOT_OPEN, &x);
    in->conn = NULL;
    *conn = (void *)(intptr_t)x.ref; /* conn_close unreferences it */
    if (rc == LUA_OK && (lua_isnil(in->L, -1) || lua_toboolean(in->L, -1))) {
        lua_settop(in->L, SLOTS);
        return MORPH_OK;
    }
    char why[512];
    if (rc == LUA_OK)
        snprintf(why, sizeof why, "open() returned false: the connection is "
                 "refused");
    else
        call_error(in, rc, why, sizeof why);
    lua_settop(in->L, SLOTS);
    script_log(in, MORPH_LOG_WARN, why);
    if (x.ref != 0)
        luaL_unref(in->L, LUA_REGISTRYINDEX, x.ref);
    *conn = NULL;
    return MORPH_ERROR;
}

static void script_conn_close(void *instance, void *conn)
{
    lua_instance_t *in = instance;
    int ref = (int)(intptr_t)conn;
    if (ref == 0)
        return;
    if (!lua_isnil(in->L, SLOT_CLOSE)) {
        call_ctx_t x = {.in = in, .ref = ref};
        int rc = call_script(in, SLOT_CLOSE, &x);
        if (rc != LUA_OK) {
            char why[512];
            call_error(in, rc, why, sizeof why);
            script_log(in, MORPH_LOG_WARN, why);
        }
        lua_settop(in->L, SLOTS);
    }
    luaL_unref(in->L, LUA_REGISTRYINDEX, ref);
}

/* The table a transform may return after its reply: { close = true }
 * closes the connection after it, { empty_datagram = true } sends an
 * empty reply over UDP as a datagram of 0 bytes -- what C plugins say with
 * morph_out_close() and MORPH_REPLY_EMPTY_DATAGRAM. Read with lua_next:
 * raw, and without allocating. */
static bool take_reply_options(lua_State *L, morph_out_t *out,
                               const char *what, char *why, size_t size)
{
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                          : NULL;
        bool on = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (key != NULL && strcmp(key, "close") == 0) {
            if (on)
                morph_out_close(out);
        } else if (key != NULL && strcmp(key, "empty_datagram") == 0) {
            if (on)
                out->reply |= MORPH_REPLY_EMPTY_DATAGRAM;
        } else {
            snprintf(why, size, "%s returned a reply option %s%s%s; the "
                     "options are close and empty_datagram", what,
                     key ? "'" : "that is not a name", key ? key : "",
                     key ? "'" : "");
            lua_pop(L, 1);
            return false;
        }
    }
    return true;
}

/* What a call that gives the reply left (`rc`, and its two results):
 * the reply appended to `out` (true), or why the message fails, into
 * why[] (false). `what` names the function in messages. The stack is back
 * to its slots either way. Both transform and a deferred function end
 * here. */
static bool take_reply(lua_instance_t *in, int rc, morph_out_t *out,
                       const char *what, char *why, size_t size)
{
    lua_State *L = in->L;
    if (rc != LUA_OK) {
        call_error(in, rc, why, size);
        return false;
    }
    bool ok = false;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &no_reply_key); /* no allocation */
    bool no_reply = lua_rawequal(L, -1, -3);
    lua_pop(L, 1);
    if (no_reply) {
        ok = morph_out_no_reply(out) == MORPH_OK;
    } else if (lua_type(L, -2) == LUA_TSTRING) {
        size_t len;
        const char *reply = lua_tolstring(L, -2, &len);
        ok = morph_out_append(out, reply, len) == MORPH_OK;
        if (!ok)
            snprintf(why, size, "the reply is over the service's output "
                     "limit");
        if (ok && lua_type(L, -1) == LUA_TTABLE)
            ok = take_reply_options(L, out, what, why, size);
    } else if (lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING) {
        snprintf(why, size, "%s", lua_tostring(L, -1));
    } else if (lua_isnil(L, -2)) {
        snprintf(why, size, "%s returned nil", what);
    } else {
        snprintf(why, size, "%s returned %s, not a string", what,
                 luaL_typename(L, -2));
    }
    lua_settop(L, SLOTS);
    return ok;
}

/* A message a script answers later: its function, and the timer. */
typedef struct {
    lua_instance_t *in;
    morph_pending_t *pending;
    morph_timer_t *timer;
    int fn;
} deferred_t;

/* (ctx, function) -> what the function returned */
static int call_deferred(lua_State *L)
{
    lua_call(L, 0, 2);
    return 2;
}

static void deferred_free(deferred_t *d)
{
    luaL_unref(d->in->L, LUA_REGISTRYINDEX, d->fn);
    free(d);
}

/* The timer of a deferred message: its function gives the reply. The
 * reply is copied out and the stack cleaned before done() or fail(),
 * which may run this instance again (the connection's next message). */
static void on_deferred(void *arg)
{
    deferred_t *d = arg;
    lua_instance_t *in = d->in;
    lua_State *L = in->L;
    morph_pending_t *p = d->pending;
    lua_pushcfunction(L, call_deferred);
    lua_pushlightuserdata(L, d);
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->fn);
    in->conn = p->conn;
    in->out = p->out;
    arm_budget(in);
    int rc = lua_pcall(L, 2, 2, 0);
    in->conn = NULL;
    in->out = NULL;
    deferred_free(d);
    char why[512];
    if (take_reply(in, rc, p->out, "the function given to morph.defer", why,
                   sizeof why))
        p->done(p);
    else
        p->fail(p, why);
}

/* transform returned morph.defer(ms, fn) */
static int defer_reply(lua_instance_t *in, morph_out_t *out, int fn,
                       uint64_t ms)
{
    deferred_t *d = calloc(1, sizeof *d);
    morph_pending_t *p = d ? morph_out_defer(out, d) : NULL;
    if (p == NULL) {
        luaL_unref(in->L, LUA_REGISTRYINDEX, fn);
        free(d);
        return morph_out_fail(out, "cannot answer later: morphd keeps no more "
                              "messages waiting");
    }
    d->in = in;
    d->pending = p;
    d->fn = fn;
    d->timer = in->host->timer_start(in->host, ms, on_deferred, d);
    if (d->timer == NULL) {
        deferred_free(d);
        p->fail(p, "out of memory");
    }
    return MORPH_OK;
}

/* The host no longer wants the message: its client left, or morphd
 * stops. */
static void script_cancel(void *instance, morph_pending_t *p)
{
    lua_instance_t *in = instance;
    deferred_t *d = p->user;
    in->host->timer_stop(in->host, d->timer);
    deferred_free(d);
}

static int script_transform(void *instance, void *conn, const morph_msg_t *msg,
                            morph_out_t *out)
{
    lua_instance_t *in = instance;
    lua_State *L = in->L;
    call_ctx_t x = {.in = in, .msg = msg, .ref = (int)(intptr_t)conn,
                    .nres = 2};
    in->conn = msg->conn;
    in->out = out;
    int rc = call_script(in, SLOT_TRANSFORM, &x);
    in->conn = NULL;
    in->out = NULL;
    if (conn == NULL && x.ref != 0) /* made now; conn_close unreferences it */
        *msg->state = (void *)(intptr_t)x.ref;
    if (rc == LUA_OK && x.defer_fn != 0) {
        lua_settop(L, SLOTS);
        return defer_reply(in, out, x.defer_fn, x.defer_ms);
    }
    char why[512];
    return take_reply(in, rc, out, "transform", why, sizeof why)
               ? MORPH_OK
               : morph_out_fail(out, why);
}

/* --- a codec: decode(buffer, conn) and encode(reply, conn) ----------------- */

typedef struct {
    const unsigned char *data;
    size_t len;
    int ref; /* the connection's table */
    int nres;
} codec_call_t;

/* (ctx, function) -> what decode or encode returned */
static int codec_protected(lua_State *L)
{
    codec_call_t *x = lua_touserdata(L, 1);
    lua_pushvalue(L, 2);
    lua_pushlstring(L, (const char *)x->data, x->len);
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->ref);
    lua_call(L, 2, x->nres);
    return x->nres;
}

static int call_codec(lua_instance_t *in, int slot, codec_call_t *x)
{
    lua_State *L = in->L;
    lua_pushcfunction(L, codec_protected);
    lua_pushlightuserdata(L, x);
    lua_pushvalue(L, slot);
    arm_budget(in);
    return lua_pcall(L, 2, x->nres, 0);
}

/* decode(buffer, conn) returns message, consumed; false, consumed (bytes
 * used, no message); nil (need more); or nil, "reason" (close). */
static int script_decode(void *instance, void *state, const unsigned char *data,
                         size_t len, morph_decoded_t *d)
{
    lua_instance_t *in = instance;
    lua_State *L = in->L;
    codec_call_t x = {data, len, (int)(intptr_t)state, 2};
    int rc = call_codec(in, SLOT_DECODE, &x);
    if (rc != LUA_OK) {
        call_error(in, rc, in->codec_why, sizeof in->codec_why);
        d->reason = in->codec_why;
        return MORPH_DECODE_ERROR;
    }
    int st = MORPH_DECODE_ERROR;
    int t1 = lua_type(L, -2), t2 = lua_type(L, -1);
    lua_Integer used = t2 == LUA_TNUMBER && lua_isinteger(L, -1)
                           ? lua_tointeger(L, -1) : -1;
    if (t1 == LUA_TNIL && t2 == LUA_TNIL) {
        st = MORPH_DECODE_MORE;
    } else if (t1 == LUA_TNIL && t2 == LUA_TSTRING) {
        snprintf(in->codec_why, sizeof in->codec_why, "%s: decode: %s",
                 in->script->path, lua_tostring(L, -1));
    } else if ((t1 == LUA_TSTRING || (t1 == LUA_TBOOLEAN && !lua_toboolean(L, -2))) &&
               used >= 1 && (size_t)used <= len) {
        d->used = (size_t)used;
        st = MORPH_DECODE_SKIP;
        if (t1 == LUA_TSTRING) { /* kept until the next call */
            size_t n;
            const char *msg = lua_tolstring(L, -2, &n);
            if (n > in->decoded_cap) {
                unsigned char *b = realloc(in->decoded, n);
                if (b == NULL) {
                    snprintf(in->codec_why, sizeof in->codec_why,
                             "out of memory");
                    lua_settop(L, SLOTS);
                    d->reason = in->codec_why;
                    return MORPH_DECODE_ERROR;
                }
                in->decoded = b;
                in->decoded_cap = n;
            }
            if (n > 0)
                memcpy(in->decoded, msg, n);
            d->msg = in->decoded;
            d->len = n;
            st = MORPH_DECODE_MESSAGE;
        }
    } else {
        snprintf(in->codec_why, sizeof in->codec_why, "%s: decode returned "
                 "%s, %s: it returns message, consumed (1 to #buffer); "
                 "false, consumed; nil (need more); or nil, \"reason\"",
                 in->script->path, lua_typename(L, t1), lua_typename(L, t2));
    }
    lua_settop(L, SLOTS);
    if (st == MORPH_DECODE_ERROR)
        d->reason = in->codec_why;
    return st;
}

/* encode(reply, conn) returns the bytes to send. A failed message is not
 * encoded: nothing is sent for it. */
static int script_encode(void *instance, void *state, const unsigned char *reply,
                         size_t len, uint64_t tag, uint32_t flags,
                         morph_out_t *out)
{
    (void)tag;
    lua_instance_t *in = instance;
    if (flags & MORPH_ENCODE_FAILED)
        return MORPH_OK;
    lua_State *L = in->L;
    codec_call_t x = {reply, len, (int)(intptr_t)state, 1};
    int rc = call_codec(in, SLOT_ENCODE, &x);
    char why[512];
    if (rc != LUA_OK) {
        call_error(in, rc, why, sizeof why);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *bytes = lua_tolstring(L, -1, &n);
        rc = morph_out_append(out, bytes, n);
        lua_settop(L, SLOTS);
        return rc;
    } else {
        snprintf(why, sizeof why, "%s: encode returned %s, not the bytes to "
                 "send (a string)", in->script->path, luaL_typename(L, -1));
    }
    lua_settop(L, SLOTS);
    script_log(in, MORPH_LOG_WARN, why);
    return MORPH_ERROR;
}

static const morph_codec_t script_codec = {
    .struct_size = sizeof(morph_codec_t),
    .decode = script_decode,
    .encode = script_encode,
};

/* --- loading: what the script returns, checked ------------------------------ */

static char *keep(morphd_script_t *s, const char *text)
{
    char **grown = realloc(s->strings, (s->n_strings + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    s->strings = grown;
    char *copy = strdup(text);
    if (copy != NULL)
        s->strings[s->n_strings++] = copy;
    return copy;
}

/* An optional string field of the table at `t`: NULL when absent; -1 with
 * err set when it is there but not a string. */
static int string_field(lua_State *L, int t, const morphd_script_t *s,
                        const char *key, char **out, char *err,
                        size_t err_size)
{
    *out = NULL;
    int type = raw_field(L, t, key);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type != LUA_TSTRING) {
        snprintf(err, err_size, "%s:%d: %s is %s; it must be a string",
                 s->path, s->last_line, key, luaL_typename(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    *out = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return *out == NULL ? -1 : 0;
}

static bool valid_name(const char *k)
{
    if (*k == '\0')
        return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_'))
            return false;
    return true;
}

/* Sorted keys make --help-config and errors the same on every run (a Lua
 * table has no order). */
static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The string keys of the table at the top of the stack, sorted, into
 * keys[] (malloc'd, strings kept in s). Returns the count, or -1 with err
 * set for a key that is not a valid name. */
static long table_keys(lua_State *L, morphd_script_t *s, const char *what,
                       char ***keys, char *err, size_t err_size)
{
    *keys = NULL;
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                        : NULL;
        if (k == NULL || !valid_name(k) || n == 256) {
            snprintf(err, err_size, "%s:%d: %s: %s; names are lowercase "
                     "letters, digits and _ (256 at most)", s->path,
                     s->last_line, what,
                     k ? k : "a key that is not a string");
            lua_pop(L, 1);
            free(*keys);
            *keys = NULL;
            return -1;
        }
        char **grown = realloc(*keys, (n + 1) * sizeof *grown);
        char *copy = grown ? keep(s, k) : NULL;
        if (copy == NULL) {
            free(grown ? grown : *keys);
            *keys = NULL;
            snprintf(err, err_size, "out of memory");
            lua_pop(L, 1);
            return -1;
        }
        *keys = grown;
        (*keys)[n++] = copy;
    }
    qsort(*keys, n, sizeof **keys, compare_names);
    return (long)n;
}

/* An option given as a table: { default, min = N, max = N } for an
 * integer, { default, one_of = { "a", "b" } } for a string that must be
 * one of those (as C plugins declare with MORPH_OPTION_INT and
 * MORPH_OPTION_ENUM). Reads the bounds or the choices into `d` and leaves
 * the default in the table's place at the top of the stack. */
static int read_option_spec(lua_State *L, morphd_script_t *s, const char *k,
                            morph_option_decl_t *d, char *err, size_t err_size)
{
    int t = lua_gettop(L);
    int min_type = raw_field(L, t, "min"), max_type = raw_field(L, t, "max");
    int one_of = raw_field(L, t, "one_of");
    lua_rawgeti(L, t, 1); /* the default */
    bool is_int = lua_isinteger(L, -1);
    if ((min_type != LUA_TNIL || max_type != LUA_TNIL) &&
        (!is_int || (min_type != LUA_TNIL && !lua_isinteger(L, t + 1)) ||
         (max_type != LUA_TNIL && !lua_isinteger(L, t + 2)))) {
        snprintf(err, err_size, "%s:%d: options: '%s' has min or max, so it "
                 "is an integer option: its default ([1]) and bounds must be "
                 "integers", s->path, s->last_line, k);
        return -1;
    }
    if (min_type != LUA_TNIL || max_type != LUA_TNIL) {
        d->min = min_type != LUA_TNIL ? (int64_t)lua_tointeger(L, t + 1) : INT64_MIN;
        d->max = max_type != LUA_TNIL ? (int64_t)lua_tointeger(L, t + 2) : INT64_MAX;
        lua_Integer def = lua_tointeger(L, -1);
        if (d->min > d->max || def < d->min || def > d->max) {
            snprintf(err, err_size, "%s:%d: options: '%s': its default %lld is "
                     "not within min and max", s->path, s->last_line, k,
                     (long long)def);
            return -1;
        }
    }
    if (one_of != LUA_TNIL) {
        if (one_of != LUA_TTABLE || lua_type(L, -1) != LUA_TSTRING) {
            snprintf(err, err_size, "%s:%d: options: '%s': one_of is a list "
                     "of strings, and the default ([1]) one of them", s->path,
                     s->last_line, k);
            return -1;
        }
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        bool found = false;
        lua_Integer n = (lua_Integer)lua_rawlen(L, t + 3);
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1)
                luaL_addchar(&b, '|');
            if (lua_rawgeti(L, t + 3, i) != LUA_TSTRING) {
                snprintf(err, err_size, "%s:%d: options: '%s': one_of[%lld] "
                         "is not a string", s->path, s->last_line, k,
                         (long long)i);
                return -1;
            }
            found |= strcmp(lua_tostring(L, -1), lua_tostring(L, t + 4)) == 0;
            luaL_addvalue(&b); /* the value on top, as luaL_Buffer wants */
        }
        luaL_pushresult(&b);
        if (!found || n == 0) {
            snprintf(err, err_size, "%s:%d: options: '%s': the default '%s' is "
                     "not one of one_of", s->path, s->last_line, k,
                     lua_tostring(L, t + 4));
            return -1;
        }
        d->type = MORPH_OPT_ENUM;
        if ((d->values = keep(s, lua_tostring(L, -1))) == NULL) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        lua_pop(L, 1);
    }
    lua_replace(L, t);    /* the default where the table was */
    lua_settop(L, t);
    return 0;
}

/* `options = { key = default, ... }`: one declaration per key, its type
 * from its default's (a table gives bounds or choices: read_option_spec).
 * Then the two every script has. */
static int read_options(lua_State *L, int t, morphd_script_t *s, char *err,
                        size_t err_size)
{
    char **keys = NULL;
    long n = 0;
    int type = raw_field(L, t, "options");
    if (type != LUA_TNIL && type != LUA_TTABLE) {
        snprintf(err, err_size, "%s:%d: options is %s; it must be a table "
                 "of defaults: options = { key = default, ... }", s->path,
                 s->last_line, luaL_typename(L, -1));
        return -1;
    }
    if (type == LUA_TTABLE &&
        (n = table_keys(L, s, "options", &keys, err, err_size)) < 0)
        return -1;
    /* help = { key = "what it does" }: shown by --help-config and
     * `morph plugin info` */
    int help_type = raw_field(L, t, "help");
    lua_insert(L, -2); /* (help, options) */
    if (help_type != LUA_TNIL && help_type != LUA_TTABLE) {
        snprintf(err, err_size, "%s:%d: help is %s; it must be a table: help "
                 "= { key = \"what the option does\", ... }", s->path,
                 s->last_line, lua_typename(L, help_type));
        free(keys);
        return -1;
    }
    s->decls = calloc((size_t)n + 3, sizeof *s->decls);
    s->kinds = calloc((size_t)n + 1, sizeof *s->kinds);
    if (s->decls == NULL || s->kinds == NULL) {
        free(keys);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (long i = 0; i < n; i++) {
        const char *k = keys[i];
        if (strcmp(k, "budget") == 0 || strcmp(k, "memory") == 0) {
            snprintf(err, err_size, "%s:%d: options: '%s' is the name of an "
                     "option every script has (%s.%s); pick another",
                     s->path, s->last_line, k, s->name, k);
            free(keys);
            return -1;
        }
        morph_option_decl_t *d = &s->decls[i];
        *d = (morph_option_decl_t)MORPH_OPTION_STRING(k, NULL,
                                                      "an option of the script");
        if (help_type == LUA_TTABLE && raw_field(L, -2, k) == LUA_TSTRING &&
            (d->help = keep(s, lua_tostring(L, -1))) == NULL) {
            free(keys);
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        if (help_type == LUA_TTABLE)
            lua_pop(L, 1);
        raw_field(L, -1, k);
        if (lua_type(L, -1) == LUA_TTABLE &&
            read_option_spec(L, s, k, d, err, err_size) != 0) {
            free(keys);
            return -1;
        }
        char text[64];
        const char *def = NULL;
        switch (lua_type(L, -1)) {
        case LUA_TBOOLEAN:
            d->type = MORPH_OPT_BOOL;
            s->kinds[i] = OPT_BOOLEAN;
            def = lua_toboolean(L, -1) ? "yes" : "no";
            break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, -1)) {
                d->type = MORPH_OPT_INT; /* with min and max, if given */
                s->kinds[i] = OPT_INTEGER;
                snprintf(text, sizeof text, "%lld",
                         (long long)lua_tointeger(L, -1));
            } else { /* checked by the script itself, passed as a number */
                s->kinds[i] = OPT_NUMBER;
                snprintf(text, sizeof text, "%.17g", lua_tonumber(L, -1));
            }
            def = text;
            break;
        case LUA_TSTRING:
            s->kinds[i] = OPT_STRING; /* MORPH_OPT_ENUM with one_of */
            def = lua_tostring(L, -1);
            if (*def == '\0')
                def = NULL; /* "": no default; the script sees "" */
            break;
        default:
            snprintf(err, err_size, "%s:%d: options: the default of '%s' is "
                     "%s; it must be a string, a number or a boolean",
                     s->path, s->last_line, k, luaL_typename(L, -1));
            free(keys);
            return -1;
        }
        if (def != NULL && (d->def = keep(s, def)) == NULL) {
            free(keys);
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        lua_pop(L, 1);
    }
    free(keys);
    lua_pop(L, 2); /* options, help */
    s->n_own = (size_t)n;
    char budget[32];
    snprintf(budget, sizeof budget, "%d", MORPHD_SCRIPT_BUDGET_DEFAULT);
    s->decls[n] = (morph_option_decl_t)MORPH_OPTION_INT(
        "budget", keep(s, budget), 1000, INT32_MAX,
        "VM instructions each call may run; past it the message fails");
    s->decls[n + 1] = (morph_option_decl_t)MORPH_OPTION_SIZE(
        "memory", MORPHD_SCRIPT_MEMORY_DEFAULT, 256 * 1024,
        (int64_t)4 << 30,
        "the cap on the memory of the script's state (per service and "
        "worker); past it the message fails");
    s->decls[n + 2] = (morph_option_decl_t)MORPH_OPTIONS_END;
    if (s->decls[n].def == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

/* `counters = { name = "what it counts", ... }` */
static int read_counters(lua_State *L, int t, morphd_script_t *s, char *err,
                         size_t err_size)
{
    int type = raw_field(L, t, "counters");
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type != LUA_TTABLE) {
        snprintf(err, err_size, "%s:%d: counters is %s; it must be a table: "
                 "counters = { name = \"what it counts\", ... }", s->path,
                 s->last_line, luaL_typename(L, -1));
        return -1;
    }
    char **keys;
    long n = table_keys(L, s, "counters", &keys, err, err_size);
    if (n < 0)
        return -1;
    s->counters = calloc(2 * (size_t)n + 1, sizeof *s->counters);
    if (s->counters == NULL) {
        free(keys);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (long i = 0; i < n; i++) {
        raw_field(L, -1, keys[i]);
        const char *help = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                           : "";
        s->counters[2 * i] = keys[i];
        s->counters[2 * i + 1] = keep(s, help);
        lua_pop(L, 1);
        if (s->counters[2 * i + 1] == NULL) {
            free(keys);
            snprintf(err, err_size, "out of memory");
            return -1;
        }
    }
    s->n_counters = (size_t)n;
    free(keys);
    lua_pop(L, 1);
    return 0;
}

/* What the script returned (at the top of the stack), into its
 * descriptor. */
static int read_returned(lua_State *L, morphd_script_t *s, char *err,
                         size_t err_size)
{
    int t = lua_gettop(L);
    int dec = raw_field(L, t, "decode"), enc = raw_field(L, t, "encode");
    lua_pop(L, 2);
    if ((dec != LUA_TNIL || enc != LUA_TNIL) &&
        (dec != LUA_TFUNCTION || enc != LUA_TFUNCTION)) {
        snprintf(err, err_size, "%s:%d: a codec has a decode and an encode "
                 "function (decode is %s, encode %s)", s->path, s->last_line,
                 lua_typename(L, dec), lua_typename(L, enc));
        return -1;
    }
    s->codec = dec == LUA_TFUNCTION;
    int tr = raw_field(L, t, "transform");
    s->transforms = tr == LUA_TFUNCTION;
    if (!s->transforms && (tr != LUA_TNIL || !s->codec)) {
        snprintf(err, err_size, "%s:%d: the table the script returns has no "
                 "transform function (transform is %s): return { transform "
                 "= function(message, conn, options) ... end }, or decode "
                 "and encode for a codec", s->path, s->last_line,
                 luaL_typename(L, -1));
        return -1;
    }
    lua_pop(L, 1);
    static const char *const fns[] = {"open", "close"};
    for (size_t i = 0; i < 2; i++) {
        int type = raw_field(L, t, fns[i]);
        lua_pop(L, 1);
        if (type != LUA_TNIL && type != LUA_TFUNCTION) {
            snprintf(err, err_size, "%s:%d: %s is %s; it must be a function "
                     "of the connection's table", s->path, s->last_line,
                     fns[i], lua_typename(L, type));
            return -1;
        }
        if ((type == LUA_TFUNCTION || s->codec) && i == 0)
            s->desc.conn_open2 = script_conn_open; /* a codec's table too */
    }
    int type = raw_field(L, t, "chunk_safe");
    bool chunk_safe = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (type != LUA_TNIL && type != LUA_TBOOLEAN) {
        snprintf(err, err_size, "%s:%d: chunk_safe is %s; it must be true or "
                 "false", s->path, s->last_line, lua_typename(L, type));
        return -1;
    }
    if (string_field(L, t, s, "version", &s->version, err, err_size) != 0 ||
        string_field(L, t, s, "description", &s->description, err,
                     err_size) != 0 ||
        read_options(L, t, s, err, err_size) != 0 ||
        read_counters(L, t, s, err, err_size) != 0)
        return -1;
    s->desc.flags = chunk_safe ? MORPH_PLUGIN_CHUNK_SAFE : 0;
    return 0;
}

typedef struct {
    morphd_script_t *s;
    char *err;
    size_t err_size;
    int rc;
} read_ctx_t;

/* (ctx, returned table): read_returned under lua_pcall */
static int read_protected(lua_State *L)
{
    read_ctx_t *x = lua_touserdata(L, 1);
    x->rc = read_returned(L, x->s, x->err, x->err_size);
    return 0;
}

/* Reads the file; counts its lines. */
static int read_source(morphd_script_t *s, const char *file, char *err,
                       size_t err_size)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, err_size, "%s: %s", s->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (sb.st_size > (off_t)MORPHD_SCRIPT_MAX_BYTES) {
        snprintf(err, err_size, "%s:1: the script is %lld bytes; scripts are "
                 "%u bytes at most", s->path, (long long)sb.st_size,
                 MORPHD_SCRIPT_MAX_BYTES);
        close(fd);
        return -1;
    }
    s->source = malloc((size_t)sb.st_size + 1);
    size_t got = 0;
    while (s->source != NULL && got < (size_t)sb.st_size) {
        ssize_t n = read(fd, s->source + got, (size_t)sb.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (s->source == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    s->source_len = got;
    s->last_line = 1;
    for (size_t i = 0; i < got; i++)
        if (s->source[i] == '\n' && i + 1 < got)
            s->last_line++;
    return 0;
}

void morphd_script_release_source(morphd_script_t *s)
{
    free(s->source);
    s->source = NULL;
    s->source_len = 0;
}

void morphd_script_free(morphd_script_t *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->path);
    free(s->source);
    free(s->version);
    free(s->description);
    free(s->decls);
    free(s->kinds);
    for (size_t i = 0; i < s->n_strings; i++)
        free(s->strings[i]);
    free(s->strings);
    free(s->counters);
    free(s);
}

int morphd_script_load(const char *file, const char *path, const char *name,
                       morphd_plugin_t *p, char *err, size_t err_size)
{
    morphd_script_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->name = strdup(name)) == NULL ||
        (s->path = strdup(path)) == NULL) {
        morphd_script_free(s);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    if (read_source(s, file, err, err_size) != 0)
        goto fail;
    lua_instance_t look = {.script = s, .budget = MORPHD_SCRIPT_BUDGET_DEFAULT};
    look.mem.cap = MORPHD_SCRIPT_MEMORY_DEFAULT_BYTES;
    char why[1024];
    if (state_new(&look, err, err_size) != 0)
        goto fail;
    char chunk[4200];
    snprintf(chunk, sizeof chunk, "@%s", path);
    lua_Debug ar;
    if (luaL_loadbufferx(look.L, "", 0, chunk, "t") == LUA_OK &&
        lua_getinfo(look.L, ">S", &ar))
        snprintf(s->short_src, sizeof s->short_src, "%s", ar.short_src);
    lua_settop(look.L, 0);
    int rc = run_script(&look, err, err_size);
    why[0] = '\0';
    if (rc == 0) { /* reading it allocates: errors are possible */
        read_ctx_t x = {.s = s, .err = why, .err_size = sizeof why, .rc = -1};
        lua_pushcfunction(look.L, read_protected);
        lua_pushlightuserdata(look.L, &x);
        lua_rotate(look.L, 1, 2); /* (function, ctx, the table) */
        if (lua_pcall(look.L, 2, 0, 0) != LUA_OK)
            snprintf(why, sizeof why, "%s:%d: %s", s->path, s->last_line,
                     lua_type(look.L, -1) == LUA_TSTRING
                         ? lua_tostring(look.L, -1)
                         : "an error while reading what the script returned");
        rc = x.rc;
    }
    lua_close(look.L);
    if (rc != 0) {
        if (why[0] != '\0')
            snprintf(err, err_size, "%s", why);
        goto fail;
    }
    s->desc = (morph_plugin_t){
        MORPH_PLUGIN_HEADER_INIT,
        .name = s->name,
        .version = s->version,
        .description = s->description ? s->description : "a Lua script",
        .flags = s->desc.flags,
        .create = script_create,
        .destroy = script_destroy,
        .conn_open2 = s->desc.conn_open2,
        .conn_close = script_conn_close,
        .transform = s->transforms ? script_transform : NULL,
        .options = s->decls,
        .cancel = script_cancel,
        .codec = s->codec ? &script_codec : NULL,
    };
    p->desc = &s->desc;
    p->cancel = script_cancel;
    p->conn_open2 = s->desc.conn_open2;
    p->codec = s->desc.codec;
    p->script = s;
    p->abi = MORPH_PLUGIN_ABI_VERSION;
    p->abi_min = MORPH_PLUGIN_ABI_VERSION;
    p->declares_options = true;
    if (morphd_options_collect(s->decls, &p->options, &p->n_options, why,
                               sizeof why) != 0) {
        snprintf(err, err_size, "%s:%d: options: %s", path, s->last_line, why);
        goto fail;
    }
    return 0;

fail:
    p->desc = NULL;
    p->script = NULL;
    morphd_script_free(s);
    return -1;
}
