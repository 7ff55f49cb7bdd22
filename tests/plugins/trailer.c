/* Counts the lines of a connection and, asked for MORPH_MSG_END in line
 * framing (MORPH_PLUGIN_LINE_END), ends it with "lines: N\n". Its state is
 * made lazily (morph_msg_t.state) and freed by conn_close. */
#include <stdio.h>
#include <stdlib.h>

#include <morph/plugin.h>

static int t(void *i, void *conn, const morph_msg_t *m, morph_out_t *o)
{
    (void)i;
    unsigned long *n = conn;
    if (n == NULL) {
        n = calloc(1, sizeof *n);
        if (n == NULL)
            return morph_out_fail(o, "out of memory");
        *m->state = n;
    }
    if (m->flags & MORPH_MSG_END) {
        char line[64];
        int len = snprintf(line, sizeof line, "lines: %lu\n", *n);
        return morph_out_append(o, line, (size_t)len);
    }
    ++*n;
    return morph_out_append(o, m->data, m->len);
}

static void conn_close(void *i, void *conn)
{
    (void)i;
    free(conn);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "trailer",
    .flags = MORPH_PLUGIN_LINE_END,
    .conn_close = conn_close,
    .transform = t,
};
