/*
 * morph/plugin.h -- the morph plugin ABI, version 5.
 *
 * This is the only header a plugin author needs. A plugin is a shared object
 * (`NAME.so`) that exports one data symbol, `morph_plugin`, of type
 * `morph_plugin_t`. morphd loads it with dlopen(RTLD_NOW | RTLD_LOCAL), checks
 * the descriptor's versions and size before touching anything else, and then
 * calls the plugin only through the function pointers in that descriptor.
 *
 * Minimal plugin (a complete, working file):
 *
 *     #include <morph/plugin.h>
 *
 *     static int shout(void *instance, void *state, const morph_msg_t *msg,
 *                      morph_out_t *out)
 *     {
 *         (void)instance; (void)state;
 *         for (size_t i = 0; i < msg->len; i++)   // out->cap >= msg->len
 *             out->data[i] = (msg->data[i] >= 'a' && msg->data[i] <= 'z')
 *                                ? (unsigned char)(msg->data[i] - 32)
 *                                : msg->data[i];
 *         out->len = msg->len;
 *         return MORPH_OK;
 *     }
 *
 *     MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
 *         MORPH_PLUGIN_HEADER_INIT,
 *         .name = "shout",
 *         .version = "1.0",
 *         .description = "ASCII uppercase",
 *         .flags = MORPH_PLUGIN_CHUNK_SAFE,
 *         .transform = shout,
 *     };
 *
 * Build: cc -std=c11 -shared -fPIC -I<prefix>/include shout.c -o shout.so
 *
 * ===================================================================
 * THE VERSIONING RULE (one rule, for every struct that crosses over)
 * ===================================================================
 *
 *  1. MORPH_PLUGIN_ABI_VERSION is one integer. Each release of this header
 *     that adds anything raises it by one. Nothing is ever removed,
 *     reordered, resized or given a new meaning; new members are only
 *     appended at the end of a struct, and each says "since ABI n".
 *
 *  2. Every struct that crosses the boundary carries `struct_size`, written
 *     by the side that made it: the plugin for its descriptor and option
 *     declarations; the host for morph_host_t, morph_msg_t, morph_out_t and
 *     morph_pending_t; the caller for morph_conn_info_t. The other side
 *     reads a member only when the struct is large enough to hold it:
 *     MORPH_HAS(ptr, member). A member past the writer's size is absent.
 *     No struct has "reserved" room: growth is by size, never by filling
 *     slots.
 *
 *  3. A plugin records the header it was built with (`abi_version`) and
 *     the oldest host it needs (`abi_min`; left 0 it means
 *     MORPH_PLUGIN_ABI_MIN_DEFAULT, the first ABI with this rule). A host
 *     older than `abi_min` refuses the plugin, naming both versions. A
 *     plugin built against a newer header than the host's loads when its
 *     `abi_min` allows: the host simply does not see the newer members.
 *     A plugin that uses something added in ABI n either sets
 *     `.abi_min = n`, or checks MORPH_HAS() before using it.
 *
 *  4. Flag bits the host does not know are refused, never ignored: a flag
 *     changes how the host must treat the plugin.
 *
 *  5. ABI 1 plugins (built with the header of morph 0.1) keep loading and
 *     serving unchanged: their descriptor is this one up to `transform`,
 *     followed by `void *reserved[8]`, which must be zero. Their source
 *     also compiles unchanged against this header, becoming ABI 3.
 *
 * The tests enforce each point: a fixture plugin is built from a frozen
 * copy of the ABI 1 header, and others claim newer ABIs and unknown flags.
 *
 * ===================================================================
 * THREADS
 * ===================================================================
 *  - morphd runs `workers` event-loop threads (1 by default) and creates
 *    one instance per (service, worker). conn_open, transform, conn_close
 *    and cancel on one instance come from that worker's thread and are
 *    never concurrent, so an instance needs no locking -- except for
 *    MORPH_PLUGIN_BLOCKING plugins (below).
 *  - load() and create() run on morphd's main thread; destroy() and
 *    unload() on the main thread or on the instance's worker thread.
 *    Neither overlaps any other call on the same instance.
 *  - Instances of the same plugin run concurrently on different threads:
 *    global mutable state in a plugin must be protected by the plugin.
 *  - transform() must not block: it runs on the loop that serves every
 *    client of its worker. A transform that waits either answers later
 *    (morph_out_defer: a timer or I/O on the worker's loop), or its plugin
 *    sets MORPH_PLUGIN_BLOCKING and morphd runs it on a thread pool.
 *  - morphd's watchdog is a timer signal (a real-time one, SIGRTMIN+3),
 *    sent one to ten times a second; its handler is installed with
 *    SA_RESTART, so blocking reads and writes restart, but a call that
 *    never restarts (nanosleep, poll, select, a socket with SO_RCVTIMEO)
 *    may return early with EINTR: loop on it, as delay.c does. Leave that
 *    signal alone (do not block, catch or ignore it).
 *
 * This header is C11, and usable from C++ (C++17 and later, with
 * -pedantic; see <morph/plugin.hpp> for the descriptor and for exceptions).
 */
#ifndef MORPH_PLUGIN_H
#define MORPH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes (rule 1). */
#define MORPH_PLUGIN_ABI_VERSION 5
/* The first ABI version with the versioning rule above: the default
 * `abi_min`, and the oldest host a plugin built with this header can need. */
#define MORPH_PLUGIN_ABI_MIN_DEFAULT 2

/* Marks the descriptor as exported even when the plugin is built with
 * -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define MORPH_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define MORPH_PLUGIN_EXPORT
#endif

/* Whether the struct at `ptr`, whose writer set ptr->struct_size, holds
 * `member` (rule 2). */
#define MORPH_HAS(ptr, member)                                                 \
    ((size_t)(ptr)->struct_size >=                                             \
     offsetof(__typeof__(*(ptr)), member) + sizeof((ptr)->member))

/* Return values of plugin callbacks. */
#define MORPH_OK 0
#define MORPH_ERROR (-1)

/* --- Descriptor flags ---------------------------------------------------- */

/* The transform gives correct results when a message arrives in arbitrary
 * pieces (TCP `framing = stream`). Only chains whose every plugin sets this
 * flag may run with stream framing. A chunk-safe plugin that needs to hold
 * back bytes between chunks (for example an incomplete UTF-8 sequence) keeps
 * them in its per-connection state and emits them when MORPH_MSG_END comes.
 * (since ABI 1) */
#define MORPH_PLUGIN_CHUNK_SAFE (1u << 0)
/* transform() may block (sleep, a synchronous lookup). morphd calls it on a
 * thread pool instead of the event loop, so other clients keep being
 * served. Calls for different connections of one instance may then run at
 * the same time on different pool threads: treat the instance as shared
 * (read it only, or lock). Calls for one connection are never concurrent,
 * and messages on a connection are still answered in order. Such a
 * transform cannot defer (it already runs off the loop) and must not call
 * the loop services of morph_host_t. The pool has 4 threads unless
 * UV_THREADPOOL_SIZE says otherwise. (since ABI 2) */
#define MORPH_PLUGIN_BLOCKING (1u << 1)
/* In line framing, call transform() once more with MORPH_MSG_END (and an
 * empty message) when the client finishes sending, so the plugin can emit
 * a trailer. What it outputs then is sent as is, without a line ending.
 * (Stream framing always makes that call.) (since ABI 2) */
#define MORPH_PLUGIN_LINE_END (1u << 2)

/* Every flag of this ABI (rule 4). */
#define MORPH_PLUGIN_FLAGS_ABI1 MORPH_PLUGIN_CHUNK_SAFE
#define MORPH_PLUGIN_FLAGS_ABI2                                                \
    (MORPH_PLUGIN_CHUNK_SAFE | MORPH_PLUGIN_BLOCKING | MORPH_PLUGIN_LINE_END)

/* --- Message flags (morph_msg_t.flags) ----------------------------------- */

/* This message is one chunk of a byte stream, not a whole message: more
 * bytes of the same stream may follow (stream framing). (since ABI 1) */
#define MORPH_MSG_CHUNK (1u << 0)
/* The peer has finished sending: this is the last call for the connection.
 * `len` may be 0; a plugin that held bytes back must emit them now.
 * (since ABI 1; in line framing since ABI 2, see MORPH_PLUGIN_LINE_END) */
#define MORPH_MSG_END (1u << 1)

/* --- Options ------------------------------------------------------------- */

/* One option for this plugin from the service's INI section. The line
 *     reverse.unit = grapheme
 * reaches the `reverse` plugin as { key = "unit", value = "grapheme" }.
 * Strings are owned by the host and valid only during create().
 * (since ABI 1; this struct is an array element and never grows) */
typedef struct morph_option {
    const char *key;
    const char *value;
} morph_option_t;

/* Option types for declared options (morph_option_decl_t.type). */
#define MORPH_OPT_STRING 1   /* any non-empty text */
#define MORPH_OPT_INT 2      /* a decimal integer within [min, max] */
#define MORPH_OPT_BOOL 3     /* yes/no, true/false, on/off, 1/0 */
#define MORPH_OPT_SIZE 4     /* bytes, with B/K/KiB/M/MiB/G/GiB suffixes */
#define MORPH_OPT_DURATION 5 /* "250ms", "5s", "2m", "1h": an operator
                                writes the unit (only 0 may go without,
                                since morph 0.2); a declared default may be
                                a bare number of ms, as before */
#define MORPH_OPT_ENUM 6     /* one of `values`, e.g. "timer|sleep" */

/* One option a plugin declares (descriptor `options`, since ABI 2). The
 * host then parses and checks the INI's `NAME.KEY` lines itself: an
 * unknown key or a bad value is a configuration error at that line, with
 * the closest name suggested, and `morphd --help-config` and
 * `morph plugin info` list the options. create() receives every declared
 * option, in declaration order, with its value normalised:
 *   STRING, ENUM  as given (an ENUM as the listed spelling)
 *   INT           decimal
 *   SIZE          decimal bytes
 *   DURATION      decimal milliseconds
 *   BOOL          "yes" or "no"
 * and `value` is NULL for an option without a default that is not set.
 * Read them with morph_option_get() / morph_option_int() / ..._bool().
 * Write the array with the MORPH_OPTION_* macros, ended by
 * MORPH_OPTIONS_END; each element carries its size (rule 2), and the host
 * steps through the array by the first element's size. */
typedef struct morph_option_decl {
    uint32_t struct_size; /* sizeof(morph_option_decl_t) at build time */
    uint32_t type;        /* MORPH_OPT_*; 0 ends the list */
    const char *name;     /* the KEY of NAME.KEY: [a-z0-9_] */
    const char *def;      /* default as INI text, or NULL for none */
    const char *help;     /* one line, shown by --help-config */
    const char *values;   /* MORPH_OPT_ENUM: "a|b|c"; otherwise NULL */
    int64_t min, max;     /* INT, SIZE (bytes), DURATION (ms): bounds;
                             both 0: no bounds */
} morph_option_decl_t;

#define MORPH_OPTION_DECL_(type, name, def, help, values, min, max)            \
    {(uint32_t)sizeof(morph_option_decl_t), (type), (name), (def), (help),     \
     (values), (min), (max)}
#define MORPH_OPTION_STRING(name, def, help)                                   \
    MORPH_OPTION_DECL_(MORPH_OPT_STRING, name, def, help, NULL, 0, 0)
#define MORPH_OPTION_INT(name, def, min, max, help)                            \
    MORPH_OPTION_DECL_(MORPH_OPT_INT, name, def, help, NULL, min, max)
#define MORPH_OPTION_BOOL(name, def, help)                                     \
    MORPH_OPTION_DECL_(MORPH_OPT_BOOL, name, def, help, NULL, 0, 0)
#define MORPH_OPTION_SIZE(name, def, min, max, help)                           \
    MORPH_OPTION_DECL_(MORPH_OPT_SIZE, name, def, help, NULL, min, max)
#define MORPH_OPTION_DURATION(name, def, min, max, help)                       \
    MORPH_OPTION_DECL_(MORPH_OPT_DURATION, name, def, help, NULL, min, max)
#define MORPH_OPTION_ENUM(name, def, values, help)                             \
    MORPH_OPTION_DECL_(MORPH_OPT_ENUM, name, def, help, values, 0, 0)
#define MORPH_OPTIONS_END MORPH_OPTION_DECL_(0, NULL, NULL, NULL, NULL, 0, 0)

/* The value of option `key` in create()'s list, or NULL. */
static inline const char *morph_option_get(const morph_option_t *options,
                                           size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const char *a = options[i].key, *b = key;
        while (*a != '\0' && *a == *b)
            a++, b++;
        if (*a == *b)
            return options[i].value;
    }
    return NULL;
}

/* A declared INT, SIZE or DURATION option as a number (its normalised
 * decimal text), or `fallback` when absent. */
static inline int64_t morph_option_int(const morph_option_t *options, size_t n,
                                       const char *key, int64_t fallback)
{
    const char *v = morph_option_get(options, n, key);
    if (v == NULL || *v == '\0')
        return fallback;
    int neg = *v == '-';
    int64_t x = 0;
    for (v += neg; *v >= '0' && *v <= '9'; v++)
        x = x * 10 + (*v - '0');
    return neg ? -x : x;
}

/* A declared BOOL option (normalised "yes"/"no"), or `fallback`. */
static inline int morph_option_bool(const morph_option_t *options, size_t n,
                                    const char *key, int fallback)
{
    const char *v = morph_option_get(options, n, key);
    return v == NULL ? fallback : v[0] == 'y';
}

/* --- Connections ---------------------------------------------------------- */

/* The connection a message came from: a TCP connection, or one UDP
 * datagram. Opaque; morph_host_t.conn_info describes it. A pointer is
 * valid during the call that received it; a deferred message has its own
 * in morph_pending_t.conn. */
typedef struct morph_conn morph_conn_t;

/* What morph_host_t.conn_info fills in. The caller sets struct_size to
 * sizeof(morph_conn_info_t); the host fills what both know. Addresses are
 * numeric text ("127.0.0.1", "::1"); "" with port 0 when unknown (so over
 * unix://, where `path` and the peer_* credentials say who and where).
 * After the PROXY protocol, `peer` is the proxied client. */
typedef struct morph_conn_info {
    uint32_t struct_size;
    uint32_t worker;           /* the worker (event loop) index, from 0 */
    const char *transport;     /* "tcp", "udp", "tls" or "unix" */
    const char *service;       /* the service's name */
    char peer_address[48];
    char local_address[48];
    uint16_t peer_port;
    uint16_t local_port;
    uint32_t peer_family;      /* 4, 6, or 0 when unknown */
    char path[108];            /* unix://: the socket file; "" otherwise */
    int64_t peer_uid;          /* unix://: the client process's user, */
    int64_t peer_gid;          /* group and pid (SO_PEERCRED); */
    int64_t peer_pid;          /* -1 when unknown or not unix:// */
} morph_conn_info_t;

/* Over UDP, each datagram is a connection of its own: conn_open, one
 * transform, conn_close. There is deliberately no per-client state for UDP:
 * a datagram's source address is not authenticated, so state keyed by it
 * could be created in bulk, filled or poisoned by anyone able to spoof
 * sources, and any bound on it lets them evict the real clients' state.
 * Keep such state in the messages themselves, or serve the protocol over
 * TCP. */

/* --- Messages and output ------------------------------------------------- */

/* The input of one transform call, made by the host. `data` is owned by the
 * host and valid only during the call. In line framing the line ending
 * ("\n" or "\r\n") is not part of the message: the host strips it and
 * appends it to the reply. Over UDP a message is one datagram, exactly as
 * received. */
typedef struct morph_msg {
    const unsigned char *data;
    size_t len;
    uint32_t flags; /* MORPH_MSG_* */
    /* since ABI 2 */
    uint32_t struct_size;
    /* The connection (see morph_host_t.conn_info). */
    const morph_conn_t *conn;
    /* This plugin's per-connection state slot: what conn_open() stored,
     * passed to transform() as `conn`. A transform may set it, to create
     * state only when it is needed (a connection that never needs any then
     * costs nothing); the host passes it to conn_close(), which frees it.
     * Over UDP the slot lives for one datagram. */
    void **state;
} morph_msg_t;

typedef struct morph_out morph_out_t;
typedef struct morph_pending morph_pending_t;

/* Reply flags a transform may set in morph_out_t.reply (since ABI 2). */
/* Send nothing for this message: no bytes, no line ending, no datagram.
 * The rest of the chain is not called. */
#define MORPH_REPLY_NONE (1u << 0)
/* Close the connection once this reply is written (TCP). */
#define MORPH_REPLY_CLOSE (1u << 1)
/* Over UDP an empty reply sends no datagram; with this flag it sends a
 * datagram of 0 bytes. (ABI 1 plugins always did.) */
#define MORPH_REPLY_EMPTY_DATAGRAM (1u << 2)

/* The output of one transform call: the plugin writes its reply into
 * data[0 .. len). When transform() is called, len is 0 and cap is at least
 * the message's length, so a transform whose output is never longer than
 * its input need not call reserve(). Anything longer must be reserved first;
 * the host owns and frees the memory. Writing past data[cap] is undefined:
 * morphd itself does not check (it would cost every message), while
 * `morph pipe`, <morph/testing.h> and a sanitizer build keep a guard after
 * cap and fail the message with "plugin NAME wrote past its output buffer
 * (cap N)" (AddressSanitizer reports the write itself). Test there. */
struct morph_out {
    unsigned char *data;
    size_t len;
    size_t cap;

    /* Grows `cap` to at least `min_cap`, keeping data[0 .. len).
     * Returns MORPH_OK, or MORPH_ERROR when the host refuses (out of memory,
     * or the output would exceed the service's limit). Use
     * morph_out_reserve() rather than calling this directly. */
    int (*reserve)(morph_out_t *out, size_t min_cap);

    /* Fails this message with a human-readable reason. The host logs
     * "plugin NAME: REASON" and does not send a reply for this message; the
     * connection stays open and later messages are served (in stream
     * framing, where a failed chunk would leave a gap in the stream, the
     * connection is closed after the replies before it). Returns
     * MORPH_ERROR so a transform can `return morph_out_fail(out, "...")`.
     * Use morph_out_fail() rather than calling this directly. */
    int (*fail_message)(morph_out_t *out, const char *reason);

    void *host_private; /* for the host; plugins must not touch it */

    /* since ABI 2 */
    uint32_t struct_size;
    uint32_t reply; /* MORPH_REPLY_*, set by the transform */

    /* Leaves the message pending: the reply comes later, when the plugin
     * calls pending->done() (or ->fail()) on the worker's thread -- from a
     * timer or I/O callback on the worker's loop (see morph_host_t).
     * Returns the pending message, whose `out` is where the reply goes
     * (anything already written to this `out` is carried over), or NULL
     * when the host cannot keep the message (too many pending, a
     * MORPH_PLUGIN_BLOCKING plugin, or a plugin without a cancel()
     * callback): then answer now or fail. After a successful defer the
     * transform returns MORPH_OK and must not touch this `out` again.
     * Use morph_out_defer(). */
    morph_pending_t *(*defer)(morph_out_t *out, void *user);
};
/* (The member is not called `fail`: Check, the C test framework, defines a
 * macro of that name.) */

/* Ensures room for `min_cap` bytes of output in total. */
static inline int morph_out_reserve(morph_out_t *out, size_t min_cap)
{
    return min_cap <= out->cap ? MORPH_OK : out->reserve(out, min_cap);
}

/* Appends `n` bytes to the output, growing it as needed. */
static inline int morph_out_append(morph_out_t *out, const void *bytes,
                                   size_t n)
{
    if (morph_out_reserve(out, out->len + n) != MORPH_OK)
        return MORPH_ERROR;
#if defined(__GNUC__) || defined(__clang__)
    if (n > 0) /* the header needs no <string.h> */
        __builtin_memcpy(out->data + out->len, bytes, n);
#else
    const unsigned char *src = (const unsigned char *)bytes;
    for (size_t i = 0; i < n; i++)
        out->data[out->len + i] = src[i];
#endif
    out->len += n;
    return MORPH_OK;
}

/* Fails the current message; see morph_out_t.fail_message. */
static inline int morph_out_fail(morph_out_t *out, const char *reason)
{
    return out->fail_message(out, reason);
}

/* Sends nothing for this message (MORPH_REPLY_NONE). (since ABI 2) */
static inline int morph_out_no_reply(morph_out_t *out)
{
    out->reply |= MORPH_REPLY_NONE;
    return MORPH_OK;
}

/* Closes the connection after this reply (MORPH_REPLY_CLOSE). (since ABI 2) */
static inline int morph_out_close(morph_out_t *out)
{
    out->reply |= MORPH_REPLY_CLOSE;
    return MORPH_OK;
}

/* Defers the reply; see morph_out_t.defer. (since ABI 2) */
static inline morph_pending_t *morph_out_defer(morph_out_t *out, void *user)
{
    return out->defer(out, user);
}

/* A message whose reply comes later (since ABI 2). Made by the host; valid
 * until the plugin calls done() or fail(), or the host calls the plugin's
 * cancel() with it. Exactly one of those three ends every pending message.
 * The connection may close meanwhile: the host then calls cancel(), so a
 * plugin never completes a message nobody waits for. */
struct morph_pending {
    uint32_t struct_size;
    uint32_t flags;            /* the message's MORPH_MSG_* */
    morph_out_t *out;          /* write the reply here before done() */
    void *user;                /* the plugin's: set by defer(), and the
                                  plugin's to change (e.g. to its timer) */
    const morph_conn_t *conn;  /* the message's connection */
    /* The reply in `out` is complete: send it (through the rest of the
     * chain). Call on the worker's thread. */
    void (*done)(morph_pending_t *pending);
    /* Fails the message, as morph_out_fail() would have. */
    void (*fail)(morph_pending_t *pending, const char *reason);
    void *host_private; /* for the host; plugins must not touch it */
};

/* --- Host services ------------------------------------------------------- */

/* Log levels for morph_host_t.log. */
#define MORPH_LOG_ERROR 0
#define MORPH_LOG_WARN 1
#define MORPH_LOG_INFO 2
#define MORPH_LOG_DEBUG 3

/* A timer on the worker's loop (morph_host_t.timer_start). */
typedef struct morph_timer morph_timer_t;
/* A counter of the plugin's own (morph_host_t.counter). */
typedef struct morph_counter morph_counter_t;

/* An HTTP request's line, as morph_host_t.http_request gives it (since
 * ABI 5). The caller sets struct_size. The text is the request's own,
 * not NUL-terminated, valid during the call that got `out`. */
typedef struct morph_http_request {
    uint32_t struct_size;
    uint32_t version;   /* 10 or 11: HTTP/1.0, HTTP/1.1 */
    const char *method; /* "POST" */
    size_t method_len;
    const char *target; /* the path with its query, as sent: "/a?b=1" */
    size_t target_len;
} morph_http_request_t;

/* One of its header fields (morph_host_t.http_header; since ABI 5). The
 * caller sets struct_size. The value is trimmed of blanks. */
typedef struct morph_http_field {
    uint32_t struct_size;
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} morph_http_field_t;

/* What the host offers a plugin: passed to load() (process-wide: only
 * `log` may be used there) and to create() (this instance's: valid until
 * destroy()). Members are only appended: check MORPH_HAS(host, member)
 * before using one newer than your `abi_min`. */
typedef struct morph_host {
    uint32_t abi_version; /* the host's MORPH_PLUGIN_ABI_VERSION */
    uint32_t struct_size; /* sizeof(morph_host_t) in the host */

    /* Writes one line to morphd's log, prefixed with the plugin's name.
     * `message` is plain text without a trailing newline. Any thread.
     * (since ABI 1) */
    void (*log)(const struct morph_host *host, int level, const char *message);

    void *host_private; /* for the host; plugins must not touch it */

    /* --- since ABI 2 --- */
    const char *service; /* the service of this instance ("" in load()) */
    uint32_t worker;     /* its worker index */

    /* Describes a connection (see morph_conn_info_t). Returns MORPH_OK, or
     * MORPH_ERROR when `info` is too small to hold its own struct_size.
     * The addresses may cost a system call: ask when needed, not per
     * message by habit. Any thread during the call that got `conn`. */
    int (*conn_info)(const struct morph_host *host, const morph_conn_t *conn,
                     morph_conn_info_t *info);

    /* Calls cb(arg) once after `ms` milliseconds, on the worker's thread.
     * Returns the timer (valid until it fires or is stopped), or NULL when
     * out of memory. Worker thread only. */
    morph_timer_t *(*timer_start)(const struct morph_host *host, uint64_t ms,
                                  void (*cb)(void *arg), void *arg);
    /* Stops a timer that has not fired yet. Worker thread only. */
    void (*timer_stop)(const struct morph_host *host, morph_timer_t *timer);

    /* The worker's libuv loop (a uv_loop_t *), for plugins that link libuv
     * (version 1) and watch their own I/O. Worker thread only. What a
     * plugin may do with it:
     *  - open handles and requests of its own (timers, sockets, pipes,
     *    polls, work on the thread pool) and set their `data` as it likes:
     *    morphd keeps its own list of its connections and never looks at
     *    a handle it did not make, nor at the loop's `data`, which is the
     *    plugin's to leave alone too (other plugins share the loop);
     *  - leave them active and referenced: morphd stops the loop itself
     *    when the worker has finished (uv_stop), whatever else is open;
     *  - uv_close every one of them in destroy() at the latest (unload()
     *    is too late: the loop may be gone). Their close callbacks run on
     *    a later turn of the loop, after destroy() has returned, so free
     *    what they use there. A plugin's code stays mapped after it is
     *    released (no plugin is ever unmapped), so the callbacks are safe.
     * It must not run, stop or close the loop, nor walk its handles. */
    void *(*uv_loop)(const struct morph_host *host);

    /* Registers a counter of the plugin's own, shown by `morph stats`
     * under the plugin and exported as the Prometheus counter
     * morph_plugin_PLUGIN_NAME_total with `help` as its help. `name` is
     * [a-z0-9_]; registering a name twice returns the same counter.
     * During create() only; NULL when out of room (64 per plugin). */
    morph_counter_t *(*counter)(const struct morph_host *host,
                                const char *name, const char *help);
    /* Adds to a counter. Any thread. */
    void (*counter_add)(morph_counter_t *counter, uint64_t n);

    /* During create() only: sets MORPH_PLUGIN_BLOCKING and/or
     * MORPH_PLUGIN_LINE_END for this instance, when it depends on its
     * options (the descriptor's flags hold for every instance). Returns
     * MORPH_OK, or MORPH_ERROR for another flag or outside create(). */
    int (*instance_flags)(const struct morph_host *host, uint32_t flags);

    /* --- since ABI 5: HTTP ---
     * A message that came in an HTTP request (an http:// endpoint: its
     * body) has the request's line and header fields, and a response
     * whose status and header fields the plugins may set. `out` names the
     * message: the morph_out_t of the transform() call, or a pending
     * message's (morph_pending_t.out), for as long as either is valid. A
     * later stage of the chain sees what an earlier one set, and may set
     * it again. Worker thread (a MORPH_PLUGIN_BLOCKING plugin: its own
     * call). Each returns MORPH_ERROR for a message that came in no HTTP
     * request. */

    /* Fills `req` (struct_size set by the caller). */
    int (*http_request)(const struct morph_host *host, const morph_out_t *out,
                        morph_http_request_t *req);
    /* The `index`-th (from 0) header field named `name`, any case (NULL:
     * of any name, for walking them all), into `field`. MORPH_ERROR when
     * there is no such field. */
    int (*http_header)(const struct morph_host *host, const morph_out_t *out,
                       const char *name, size_t index,
                       morph_http_field_t *field);
    /* The response's status (200 unless set): 200..599, but 204 and 304
     * (no body: for a 204, send no reply, morph_out_no_reply). A message
     * that fails is answered 500 whatever was set. */
    int (*http_status)(const struct morph_host *host, morph_out_t *out,
                       int status);
    /* Adds a header field to the response: `name` a token, `value` without
     * control characters (CR, LF), 4 KiB of them at most. Content-Type
     * replaces the request's, which the response echoes otherwise. The
     * fields morphd writes itself (Content-Length, Transfer-Encoding,
     * Connection, Date, Server...) are refused. The reason of a refusal
     * goes to morphd's log. */
    int (*http_header_add)(const struct morph_host *host, morph_out_t *out,
                           const char *name, const char *value);
} morph_host_t;

/* --- Codecs (since ABI 4) ------------------------------------------------- */

/* A plugin whose descriptor sets `codec` is a codec: `framing = NAME` in a
 * service's section makes it cut the service's stream connections (tcp,
 * tls, unix) into messages, and frame each reply, as the built-in
 * framings (line, length, ...) do. It is created, opened per connection
 * (conn_open/conn_open2, conn_close: its per-connection state) and
 * destroyed like any plugin, on the worker's thread, and may be a
 * transform as well (`transform` may be NULL for a codec alone).
 *
 * What decode() found at the start of the bytes it was given: */
#define MORPH_DECODE_MESSAGE 0 /* d->msg, d->len: one message; d->used bytes */
#define MORPH_DECODE_SKIP 1    /* d->used bytes that hold no message (a
                                  keep-alive, a ping answered in d->reply) */
#define MORPH_DECODE_MORE 2    /* no whole message yet: call again with more
                                  bytes (the same bytes first) */
#define MORPH_DECODE_ERROR 3   /* not this protocol: d->reason; the
                                  connection is closed after the replies to
                                  the messages before it (and d->reply) */

/* morph_decoded_t.flags, set by the host */
#define MORPH_DECODE_EOF (1u << 0) /* the peer has finished sending: bytes
                                      that are no whole message are the last
                                      one, or an error */
/* encode()'s flags */
#define MORPH_ENCODE_FAILED (1u << 0) /* the message failed (no reply: the
                                         host logged why): say so in the
                                         protocol's way, or write nothing */

/* What decode() fills in; made by the host for each call. */
typedef struct morph_decoded {
    uint32_t struct_size;     /* the host's */
    uint32_t flags;           /* MORPH_DECODE_EOF */
    /* MESSAGE: the message. It may lie in the bytes given (no copy: the
     * usual case) or in memory the codec owns, valid until its next call
     * for this connection. */
    const unsigned char *msg;
    size_t len;
    size_t used;              /* MESSAGE, SKIP: bytes consumed, from 0 */
    /* MESSAGE: the codec's own note about the message (a request id, a
     * stream), given back to encode() with its reply */
    uint64_t tag;
    /* MORE: the length of the message as a header already said, or 0: a
     * message announced over the service's max_message is refused at
     * once, before its bytes are read (fail fast) */
    uint64_t announced;
    const char *reason;       /* ERROR: why, for the log (static text or
                                 the codec's memory) */
    /* Bytes to send now, before the replies of later messages: a
     * protocol-level answer (a pong, a greeting, an error frame) the
     * chain never sees. Append with morph_out_append(); set
     * MORPH_REPLY_CLOSE in reply->reply to close the connection once it
     * is written. */
    morph_out_t *reply;
} morph_decoded_t;

typedef struct morph_codec {
    uint32_t struct_size;     /* sizeof(morph_codec_t) at build time */
    uint32_t flags;           /* none yet: 0 */
    /* Looks for one message at the start of data[0, len). Returns a
     * MORPH_DECODE_*. Memory stays bounded: the host never holds more
     * than twice max_message (and 4 KiB) of a frame not yet whole, and
     * refuses a message longer than max_message. */
    int (*decode)(void *instance, void *state, const unsigned char *data,
                  size_t len, morph_decoded_t *d);
    /* Frames one reply (the chain's output) for the peer: appends to `out`
     * what the peer receives, a header, the reply, a trailer. `tag` is
     * decode()'s. Returns MORPH_OK, or MORPH_ERROR (out of memory). */
    int (*encode)(void *instance, void *state, const unsigned char *reply,
                  size_t len, uint64_t tag, uint32_t flags, morph_out_t *out);
} morph_codec_t;

/* --- The descriptor ------------------------------------------------------ */

typedef struct morph_plugin {
    /* Set these with MORPH_PLUGIN_HEADER_INIT. */
    uint32_t abi_version; /* MORPH_PLUGIN_ABI_VERSION at build time */
    uint32_t struct_size; /* sizeof(morph_plugin_t) at build time */

    const char *name;        /* the name used in `transform =`; [a-z0-9_-] */
    const char *version;     /* the plugin's own version, e.g. "1.2.0" */
    const char *description; /* one line, shown by `morphd -t` */
    uint32_t flags;          /* MORPH_PLUGIN_* */

    /* Creates one instance with its options (optional: when NULL, the
     * plugin takes no options and *instance is NULL). Return MORPH_OK, or
     * MORPH_ERROR after writing a reason such as "unknown option 'x'" or
     * "shift must be 1..25, not 40" into err[0 .. err_size) as a
     * NUL-terminated string. A plugin without declared options must reject
     * options it does not know; with declared options (`options`), the
     * host has checked them already. On error the host calls nothing else
     * on this instance. */
    int (*create)(const morph_host_t *host, const morph_option_t *options,
                  size_t n_options, void **instance, char *err,
                  size_t err_size);

    /* Frees an instance made by create() (optional). */
    void (*destroy)(void *instance);

    /* Per-connection state (both optional). conn_open() runs when a TCP
     * connection is accepted, and conn_close() when it ends; over UDP each
     * datagram is a connection of its own. Whatever conn_open() stores in
     * *state is passed to transform() and conn_close(). Return MORPH_ERROR
     * to refuse the connection (it is closed and logged). A plugin that
     * creates its state lazily (morph_msg_t.state) needs only conn_close(),
     * which the host then calls for a state that is set. (`state` is the
     * plugin's own per-connection state; the connection itself is
     * morph_msg_t.conn. Until 0.2 the parameter was named `conn`: only
     * the name changed, not the type or the ABI.) */
    int (*conn_open)(void *instance, void **state);
    void (*conn_close)(void *instance, void *state);

    /* Transforms one message (or chunk; see MORPH_MSG_CHUNK) into `out`.
     * `state`: the plugin's per-connection state (NULL when it has none).
     * Required. Returns MORPH_OK, or the value of morph_out_fail(). */
    int (*transform)(void *instance, void *state, const morph_msg_t *msg,
                     morph_out_t *out);

    /* --- since ABI 2 (ABI 1 descriptors had `void *reserved[8]` here) --- */

    /* The oldest host ABI this plugin needs (rule 3); 0 means
     * MORPH_PLUGIN_ABI_MIN_DEFAULT. */
    uint32_t abi_min;

    /* The options this plugin takes, ended by MORPH_OPTIONS_END (optional:
     * NULL keeps the ABI 1 behaviour, where create() checks raw strings). */
    const morph_option_decl_t *options;

    /* Once per process, when morphd loads the file (optional): set up
     * what every instance shares. `host` offers `log` only. Return
     * MORPH_OK, or MORPH_ERROR with a reason in err: the plugin is then
     * not used. */
    int (*load)(const morph_host_t *host, char *err, size_t err_size);
    /* Once per process, after the last instance is destroyed (optional). */
    void (*unload)(void);

    /* The host no longer wants a deferred message: its connection closed,
     * or morphd is shutting down. Stop the work (a timer, I/O), free what
     * pending->user holds, and never call pending->done()/fail() for it.
     * Required to defer. */
    void (*cancel)(void *instance, morph_pending_t *pending);

    /* Not room to grow into (rule 2): kept only so that ABI 1 sources
     * that spelled out `.reserved = {}` still compile. Must stay zero;
     * members added later go after it. */
    void *reserved[8];

    /* --- since ABI 3 --- */

    /* conn_open() with its connection (optional): when set, the host calls
     * it instead of conn_open(). `conn` is what morph_host_t.conn_info
     * describes -- the peer's address and port (after the PROXY protocol,
     * the proxied client), the transport, unix:// credentials -- valid
     * during the call, so a plugin can refuse a connection by its peer
     * (return MORPH_ERROR: it is closed and logged; over UDP the datagram
     * is not answered). Whatever it stores in *state is passed to
     * transform() and conn_close(), as for conn_open(). A host before ABI
     * 3 does not see this member: set abi_min = 3 when the plugin relies
     * on it, or set conn_open() as well for older hosts. */
    int (*conn_open2)(void *instance, const morph_conn_t *conn, void **state);

    /* --- since ABI 4 --- */

    /* Makes the plugin a codec (see "Codecs" above): `framing = NAME`.
     * A host before ABI 4 does not see it: set abi_min = 4. */
    const morph_codec_t *codec;
} morph_plugin_t;

/* Initialises abi_version and struct_size in a designated initializer (C,
 * or C++20, where designators must keep the members' order; for C++17 see
 * <morph/plugin.hpp>). */
#define MORPH_PLUGIN_HEADER_INIT                                               \
    .abi_version = MORPH_PLUGIN_ABI_VERSION,                                   \
    .struct_size = (uint32_t)sizeof(morph_plugin_t)

/* The name of the symbol morphd looks up in every plugin. It must have C
 * linkage: in C++, declare it `extern "C"`. */
#define MORPH_PLUGIN_SYMBOL "morph_plugin"

#ifdef __cplusplus
}
#endif

#endif /* MORPH_PLUGIN_H */
