/*
 * later -- answers each message with itself, `later.ms` milliseconds
 * later, without holding up anyone else.
 *
 * Demonstrates answering later: transform() writes the reply, defers the
 * message (morph_out_defer) and starts a timer on the worker's loop
 * (morph_host_t.timer_start); the timer completes it (pending->done).
 * cancel() stops the timer when the client leaves first. Messages on one
 * connection are still answered in order; every other client is served
 * meanwhile. A lookup in a database or over the network is the same
 * shape: defer, start the I/O on the loop, complete from its callback.
 *
 * Build: cc -std=c11 $(pkg-config --cflags morph-plugin) -shared -fPIC \
 *            later.c -o later.so
 */
#include <stdlib.h>

#include <morph/plugin.h>

typedef struct later {
    const morph_host_t *host;
    uint64_t ms;
} later_t;

static const morph_option_decl_t options[] = {
    MORPH_OPTION_DURATION("ms", "250", 0, 60000, "how long to wait"),
    MORPH_OPTIONS_END,
};

static int later_create(const morph_host_t *host, const morph_option_t *opts,
                        size_t n_opts, void **instance, char *err,
                        size_t err_size)
{
    (void)err;
    (void)err_size;
    later_t *l = malloc(sizeof *l);
    if (l == NULL)
        return MORPH_ERROR;
    l->host = host;
    l->ms = (uint64_t)morph_option_int(opts, n_opts, "ms", 250);
    *instance = l;
    return MORPH_OK;
}

static void later_destroy(void *instance) { free(instance); }

static void on_timer(void *arg)
{
    morph_pending_t *p = arg;
    p->done(p); /* the reply is in p->out already */
}

static int later_transform(void *instance, void *conn, const morph_msg_t *msg,
                           morph_out_t *out)
{
    later_t *l = instance;
    (void)conn;
    if (morph_out_append(out, msg->data, msg->len) != MORPH_OK)
        return morph_out_fail(out, "out of memory");
    morph_pending_t *p = morph_out_defer(out, NULL);
    if (p == NULL) /* the host keeps no more messages waiting */
        return morph_out_fail(out, "too busy to wait");
    p->user = l->host->timer_start(l->host, l->ms, on_timer, p);
    if (p->user == NULL)
        p->fail(p, "out of memory");
    return MORPH_OK;
}

static void later_cancel(void *instance, morph_pending_t *p)
{
    later_t *l = instance;
    l->host->timer_stop(l->host, p->user);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "later",
    .version = "1.0.0",
    .description = "answers each message with itself, later.ms later",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .create = later_create,
    .destroy = later_destroy,
    .transform = later_transform,
    .options = options,
    .cancel = later_cancel,
};
