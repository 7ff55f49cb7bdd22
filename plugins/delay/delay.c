/*
 * delay -- answers each message with the message itself, `delay.ms`
 * milliseconds later: the test bed for replies that come later.
 *
 *   delay.ms   = 100     how long to wait (0 .. 3600000)
 *   delay.mode = timer   wait on the worker's loop: the message is deferred
 *                        (morph_out_defer) and a host timer completes it;
 *                        the worker serves everyone else meanwhile
 *              = sleep   call a blocking sleep: the instance declares
 *                        itself blocking, so morphd runs it on its thread
 *                        pool instead of the loop
 *
 * Works over TCP and UDP. Demonstrates declared options, deferring with a
 * cancel() callback, per-instance flags, and counters of its own.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <morph/plugin.h>

typedef struct delay {
    const morph_host_t *host;
    uint64_t ms;
    int sleep_mode;
    morph_counter_t *cancelled;
} delay_t;

static const morph_option_decl_t options[] = {
    MORPH_OPTION_INT("ms", "100", 0, 3600000, "milliseconds to wait before "
                     "answering"),
    MORPH_OPTION_ENUM("mode", "timer", "timer|sleep",
                      "timer: wait on the loop (deferred); sleep: a blocking "
                      "sleep on the thread pool"),
    MORPH_OPTIONS_END,
};

static int delay_create(const morph_host_t *host, const morph_option_t *opts,
                        size_t n_opts, void **instance, char *err,
                        size_t err_size)
{
    (void)err;
    (void)err_size;
    delay_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return MORPH_ERROR;
    d->host = host;
    d->ms = (uint64_t)morph_option_int(opts, n_opts, "ms", 100);
    d->sleep_mode = strcmp(morph_option_get(opts, n_opts, "mode"), "sleep") == 0;
    if (d->sleep_mode &&
        host->instance_flags(host, MORPH_PLUGIN_BLOCKING) != MORPH_OK) {
        free(d);
        return MORPH_ERROR;
    }
    d->cancelled = host->counter(host, "cancelled",
                                 "messages whose client left before the reply");
    *instance = d;
    return MORPH_OK;
}

static void delay_destroy(void *instance) { free(instance); }

/* A deferred message's timer has fired: its reply (the message) is in
 * p->out already. */
static void on_timer(void *arg)
{
    morph_pending_t *p = arg;
    p->done(p);
}

static int delay_transform(void *instance, void *conn, const morph_msg_t *msg,
                           morph_out_t *out)
{
    delay_t *d = instance;
    (void)conn;
    if ((msg->flags & MORPH_MSG_END) && msg->len == 0)
        return MORPH_OK;
    if (morph_out_append(out, msg->data, msg->len) != MORPH_OK)
        return morph_out_fail(out, "out of memory");
    if (d->sleep_mode) { /* on a pool thread: blocking is fine here */
        struct timespec ts = {(time_t)(d->ms / 1000),
                              (long)(d->ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0)
            ;
        return MORPH_OK;
    }
    morph_pending_t *p = morph_out_defer(out, NULL);
    if (p == NULL)
        return morph_out_fail(out, "too many messages waiting");
    /* the pending message keeps its timer, for cancel() */
    p->user = d->host->timer_start(d->host, d->ms, on_timer, p);
    if (p->user == NULL) /* deferred already: end it through the handle */
        p->fail(p, "out of memory");
    return MORPH_OK;
}

static void delay_cancel(void *instance, morph_pending_t *pending)
{
    delay_t *d = instance;
    d->host->timer_stop(d->host, pending->user);
    d->host->counter_add(d->cancelled, 1);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "delay",
    .version = MORPH_VERSION,
    .description = "answers with the message itself, delay.ms later",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .create = delay_create,
    .destroy = delay_destroy,
    .transform = delay_transform,
    .options = options,
    .cancel = delay_cancel,
};
