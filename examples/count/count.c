/*
 * count -- numbers the lines of each connection: "a\nb\n" -> "1: a\n2: b\n".
 *
 * Demonstrates per-connection state: conn_open() allocates a counter for
 * each TCP connection, transform() uses it, conn_close() frees it. Over
 * UDP every datagram is a connection of its own, so each reply is "1: ...".
 * Not chunk-safe (it numbers whole messages): use `framing = line`.
 *
 * Build: cc -std=c11 $(pkg-config --cflags morph-plugin) -shared -fPIC \
 *            count.c -o count.so
 */
#include <stdio.h>
#include <stdlib.h>

#include <morph/plugin.h>

typedef struct count_conn {
    unsigned long lines;
} count_conn_t;

static int count_conn_open(void *instance, void **conn)
{
    (void)instance;
    *conn = calloc(1, sizeof(count_conn_t));
    return *conn != NULL ? MORPH_OK : MORPH_ERROR;
}

static void count_conn_close(void *instance, void *conn)
{
    (void)instance;
    free(conn);
}

static int count_transform(void *instance, void *conn, const morph_msg_t *msg,
                           morph_out_t *out)
{
    (void)instance;
    count_conn_t *c = conn;
    if (msg->len == 0 && (msg->flags & MORPH_MSG_END))
        return MORPH_OK; /* end of a connection: nothing to number */
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "%lu: ", ++c->lines);
    if (morph_out_append(out, prefix, (size_t)n) != MORPH_OK ||
        morph_out_append(out, msg->data, msg->len) != MORPH_OK)
        return morph_out_fail(out, "reply too large");
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "count",
    .version = "1.0.0",
    .description = "numbers the lines of each connection",
    .conn_open = count_conn_open,
    .conn_close = count_conn_close,
    .transform = count_transform,
};
