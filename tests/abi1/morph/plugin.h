/*
 * morph/plugin.h -- the morph plugin ABI.
 *
 * This is the only header a plugin author needs. A plugin is a shared object
 * (`NAME.so`) that exports one data symbol, `morph_plugin`, of type
 * `morph_plugin_t`. morphd loads it with dlopen(RTLD_NOW | RTLD_LOCAL), checks
 * `abi_version` and `struct_size` before touching anything else, and then
 * calls the plugin only through the function pointers in that descriptor.
 *
 * Minimal plugin (a complete, working file):
 *
 *     #include <morph/plugin.h>
 *
 *     static int shout(void *instance, void *conn, const morph_msg_t *msg,
 *                      morph_out_t *out)
 *     {
 *         (void)instance; (void)conn;
 *         if (morph_out_reserve(out, msg->len) != 0)
 *             return morph_out_fail(out, "out of memory");
 *         for (size_t i = 0; i < msg->len; i++)
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
 * ABI rules (what keeps old plugins loading on new hosts):
 *   - MORPH_PLUGIN_ABI_VERSION changes only when an existing field changes
 *     meaning or position. morphd refuses a plugin whose abi_version differs
 *     from its own, naming the file and both versions.
 *   - New fields are only ever appended (into the reserved room), and each
 *     says "since ABI n". `struct_size` tells the host how much of the
 *     descriptor the plugin knows about.
 *
 * Threading contract:
 *   - morphd runs `workers` event-loop threads (1 by default) and creates
 *     one instance per (service, worker). All calls on one instance --
 *     conn_open, transform, conn_close -- come from that worker's thread
 *     and are never concurrent, so an instance needs no locking.
 *   - create() runs on morphd's main thread; destroy() on the main thread
 *     or on the instance's worker thread (after a reload, when the last
 *     connection using the old instance closes). Neither overlaps any
 *     other call on the same instance.
 *   - Instances of the same plugin run concurrently on different threads:
 *     global mutable state in a plugin must be protected by the plugin.
 *   - A plugin must not block: it runs on the event loop that serves every
 *     client of that worker.
 *
 * This header is C11, and usable from C++.
 */
#ifndef MORPH_PLUGIN_H
#define MORPH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define MORPH_PLUGIN_ABI_VERSION 1

/* Marks the descriptor as exported even when the plugin is built with
 * -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define MORPH_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define MORPH_PLUGIN_EXPORT
#endif

/* Return values of plugin callbacks. */
#define MORPH_OK 0
#define MORPH_ERROR (-1)

/* --- Descriptor flags ---------------------------------------------------- */

/* The transform gives correct results when a message arrives in arbitrary
 * pieces (TCP `framing = stream`). Only chains whose every plugin sets this
 * flag may run with stream framing. A chunk-safe plugin that needs to hold
 * back bytes between chunks (for example an incomplete UTF-8 sequence) keeps
 * them in its per-connection state and emits them when MORPH_MSG_END comes. */
#define MORPH_PLUGIN_CHUNK_SAFE (1u << 0)

/* --- Message flags (morph_msg_t.flags) ----------------------------------- */

/* This message is one chunk of a byte stream, not a whole message: more
 * bytes of the same stream may follow (stream framing). */
#define MORPH_MSG_CHUNK (1u << 0)
/* The peer has finished sending: this is the last call for the connection.
 * `len` may be 0; a plugin that held bytes back must emit them now. */
#define MORPH_MSG_END (1u << 1)

/* --- Options ------------------------------------------------------------- */

/* One option for this plugin from the service's INI section. The line
 *     reverse.unit = grapheme
 * reaches the `reverse` plugin as { key = "unit", value = "grapheme" }.
 * Strings are owned by the host and valid only during create(). */
typedef struct morph_option {
    const char *key;
    const char *value;
} morph_option_t;

/* --- Messages and output ------------------------------------------------- */

/* The input of one transform call. `data` is owned by the host and valid
 * only during the call. In line framing the line ending ("\n" or "\r\n") is
 * not part of the message: the host strips it and appends it to the reply.
 * Over UDP a message is one datagram, exactly as received. */
typedef struct morph_msg {
    const unsigned char *data;
    size_t len;
    uint32_t flags; /* MORPH_MSG_* */
} morph_msg_t;

typedef struct morph_out morph_out_t;

/* The output of one transform call: the plugin writes its reply into
 * data[0 .. len). When transform() is called, len is 0 and cap is at least
 * the message's length, so a transform whose output is never longer than
 * its input need not call reserve(). Anything longer must be reserved first;
 * the host owns and frees the memory. */
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
     * connection stays open and later messages are served. Returns
     * MORPH_ERROR so a transform can `return morph_out_fail(out, "...")`.
     * Use morph_out_fail() rather than calling this directly. */
    int (*fail_message)(morph_out_t *out, const char *reason);

    void *host_private; /* for the host; plugins must not touch it */
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
    const unsigned char *src = (const unsigned char *)bytes;
    for (size_t i = 0; i < n; i++)
        out->data[out->len + i] = src[i];
    out->len += n;
    return MORPH_OK;
}

/* Fails the current message; see morph_out_t.fail_message. */
static inline int morph_out_fail(morph_out_t *out, const char *reason)
{
    return out->fail_message(out, reason);
}

/* --- Host services ------------------------------------------------------- */

/* Log levels for morph_host_t.log. */
#define MORPH_LOG_ERROR 0
#define MORPH_LOG_WARN 1
#define MORPH_LOG_INFO 2
#define MORPH_LOG_DEBUG 3

/* What the host offers a plugin, passed to create(). Valid until destroy().
 * Entries are only appended; an entry this host lacks is NULL. */
typedef struct morph_host {
    uint32_t abi_version; /* the host's MORPH_PLUGIN_ABI_VERSION */
    uint32_t struct_size; /* sizeof(morph_host_t) in the host */

    /* Writes one line to morphd's log, prefixed with the plugin's name.
     * `message` is plain text without a trailing newline. (since ABI 1) */
    void (*log)(const struct morph_host *host, int level, const char *message);

    void *host_private; /* for the host; plugins must not touch it */
} morph_host_t;

/* --- The descriptor ------------------------------------------------------ */

typedef struct morph_plugin {
    /* Set these two with MORPH_PLUGIN_HEADER_INIT. */
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
     * NUL-terminated string. A plugin must reject options it does not know.
     * On error the host calls nothing else on this instance. */
    int (*create)(const morph_host_t *host, const morph_option_t *options,
                  size_t n_options, void **instance, char *err,
                  size_t err_size);

    /* Frees an instance made by create() (optional). */
    void (*destroy)(void *instance);

    /* Per-connection state (both optional). conn_open() runs when a TCP
     * connection is accepted, and conn_close() when it ends; over UDP each
     * datagram is a connection of its own. Whatever conn_open() stores in
     * *conn is passed to transform() and conn_close(). Return MORPH_ERROR
     * to refuse the connection (it is closed and logged). */
    int (*conn_open)(void *instance, void **conn);
    void (*conn_close)(void *instance, void *conn);

    /* Transforms one message (or chunk; see MORPH_MSG_CHUNK) into `out`.
     * Required. Returns MORPH_OK, or the value of morph_out_fail(). */
    int (*transform)(void *instance, void *conn, const morph_msg_t *msg,
                     morph_out_t *out);

    /* Room for fields appended by later ABI minor additions; keep zero. */
    void *reserved[8];
} morph_plugin_t;

/* Initialises abi_version and struct_size in a designated initializer. */
#define MORPH_PLUGIN_HEADER_INIT                                               \
    .abi_version = MORPH_PLUGIN_ABI_VERSION,                                   \
    .struct_size = (uint32_t)sizeof(morph_plugin_t)

/* The name of the symbol morphd looks up in every plugin. */
#define MORPH_PLUGIN_SYMBOL "morph_plugin"

#ifdef __cplusplus
}
#endif

#endif /* MORPH_PLUGIN_H */
