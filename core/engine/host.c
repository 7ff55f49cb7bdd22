/*
 * host.c -- the host services of morph_host_t (host.h). Timers are libuv
 * timers on the stage's loop, each in a list of its stage so that what a
 * plugin forgets is stopped when its instance goes. A timer that has ended
 * is kept (up to SPARE_TIMERS per stage) and started again for the next
 * request: a plugin that sets one timer per message costs no allocation
 * and no handle close per message.
 */
#include "engine/host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "engine/chain.h"
#include "base/log.h"
#include "codec/http.h"

struct morph_timer {
    uv_timer_t handle;
    void (*cb)(void *arg);
    void *arg;
    morphd_stage_t *stage;
    struct morph_timer *prev, *next;
    bool linked; /* started, neither fired nor stopped */
    uint64_t due; /* env->manual_clock: when it fires, in clock_ms */
};

static void stage_log(const morph_host_t *host, int level, const char *message)
{
    const morphd_stage_t *st = host->host_private;
    morphd_log(level, "plugin %s: %s", st->plugin->name, message ? message : "");
}

static void process_log(const morph_host_t *host, int level,
                        const char *message)
{
    morphd_log(level, "plugin %s: %s", (const char *)host->host_private,
               message ? message : "");
}

/* "1.2.3.4" and the port of an address; "" and 0 when unknown. */
static void describe(const struct sockaddr_storage *ss, char *text,
                     size_t size, uint16_t *port, uint32_t *family)
{
    text[0] = '\0';
    *port = 0;
    if (family)
        *family = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, text, (socklen_t)size);
        *port = ntohs(a->sin_port);
        if (family)
            *family = 4;
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, text, (socklen_t)size);
        *port = ntohs(a->sin6_port);
        if (family)
            *family = 6;
    }
}

static int conn_info(const morph_host_t *host, const morph_conn_t *conn,
                     morph_conn_info_t *info)
{
    const morphd_stage_t *st = host->host_private;
    const morphd_conn_t *c = (const morphd_conn_t *)conn;
    if (info == NULL || conn == NULL || info->struct_size < sizeof(uint32_t))
        return MORPH_ERROR;
    morph_conn_info_t full;
    memset(&full, 0, sizeof full);
    full.worker = st->chain->env->worker;
    full.transport = c->ops->transport;
    full.service = st->chain->service;
    struct sockaddr_storage peer, local;
    memset(&peer, 0, sizeof peer);
    memset(&local, 0, sizeof local);
    if (c->ops->addresses != NULL && (c->peer == NULL || c->local == NULL))
        c->ops->addresses(c, &peer, &local);
    if (c->local != NULL)
        memcpy(&local, c->local, sizeof local);
    if (c->peer != NULL)
        memcpy(&peer, c->peer, morphd_sockaddr_len(c->peer));
    describe(&peer, full.peer_address, sizeof full.peer_address,
             &full.peer_port, &full.peer_family);
    describe(&local, full.local_address, sizeof full.local_address,
             &full.local_port, NULL);
    full.peer_uid = full.peer_gid = full.peer_pid = -1;
    if (local.ss_family == AF_UNIX)
        snprintf(full.path, sizeof full.path, "%.*s",
                 (int)sizeof full.path - 1,
                 ((const struct sockaddr_un *)&local)->sun_path);
    morphd_cred_t cred;
    if (c->cred != NULL) {
        cred = *c->cred;
    } else if (c->ops->credentials == NULL || c->transport == NULL ||
               c->ops->credentials(c, &cred) != 0) {
        cred.uid = cred.gid = cred.pid = -1;
    }
    full.peer_uid = cred.uid;
    full.peer_gid = cred.gid;
    full.peer_pid = cred.pid;
    /* what both know: the caller's size, at most ours */
    uint32_t size = info->struct_size < sizeof full ? info->struct_size
                                                    : (uint32_t)sizeof full;
    full.struct_size = info->struct_size;
    memcpy(info, &full, size);
    return MORPH_OK;
}

/* --- timers ------------------------------------------------------------------- */

static void unlink_timer(struct morph_timer *t)
{
    if (!t->linked)
        return;
    t->linked = false;
    if (t->prev)
        t->prev->next = t->next;
    else
        t->stage->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

#define SPARE_TIMERS 64

static void free_timer(uv_handle_t *h) { free(h); }

/* An ended timer: kept for reuse, or closed. */
static void retire_timer(struct morph_timer *t)
{
    morphd_stage_t *st = t->stage;
    if (st->n_spare_timers < SPARE_TIMERS) {
        t->next = st->spare_timers;
        st->spare_timers = t;
        st->n_spare_timers++;
    } else {
        uv_close((uv_handle_t *)&t->handle, free_timer);
    }
}

static void on_timer(uv_timer_t *h)
{
    struct morph_timer *t = (struct morph_timer *)h;
    if (!t->linked)
        return;
    unlink_timer(t);
    void (*cb)(void *) = t->cb;
    void *arg = t->arg;
    retire_timer(t); /* before cb: it may start a timer, this one */
    cb(arg);
}

static morph_timer_t *timer_start(const morph_host_t *host, uint64_t ms,
                                  void (*cb)(void *arg), void *arg)
{
    morphd_stage_t *st = host->host_private;
    uv_loop_t *loop = st->chain->env->loop;
    if (loop == NULL || cb == NULL)
        return NULL;
    struct morph_timer *t = st->spare_timers;
    if (t != NULL) {
        st->spare_timers = t->next;
        st->n_spare_timers--;
    } else {
        t = calloc(1, sizeof *t);
        if (t == NULL)
            return NULL;
        t->stage = st;
        uv_timer_init(loop, &t->handle);
    }
    t->cb = cb;
    t->arg = arg;
    t->prev = NULL;
    if (st->chain->env->manual_clock)
        t->due = st->chain->env->clock_ms + ms; /* morphd_host_advance */
    else
        uv_timer_start(&t->handle, on_timer, ms, 0);
    t->linked = true;
    t->next = st->timers;
    if (st->timers)
        st->timers->prev = t;
    st->timers = t;
    return t;
}

static void timer_stop(const morph_host_t *host, morph_timer_t *timer)
{
    (void)host;
    struct morph_timer *t = timer;
    if (t == NULL || !t->linked) /* fired (or stopped) already */
        return;
    unlink_timer(t);
    uv_timer_stop(&t->handle);
    retire_timer(t);
}

unsigned morphd_host_advance(morphd_chain_t *chain, uint64_t ms)
{
    morphd_chain_env_t *env = chain->env;
    uint64_t target = env->clock_ms + ms;
    unsigned fired = 0;
    /* bounded: a timer that starts itself again at 0 ms stops here */
    for (unsigned round = 0; round < 1000000; round++) {
        struct morph_timer *next = NULL;
        for (size_t i = 0; i < chain->n; i++)
            for (struct morph_timer *t = chain->stages[i].timers; t; t = t->next)
                if (t->due <= target && (next == NULL || t->due < next->due))
                    next = t;
        if (next == NULL)
            break;
        if (next->due > env->clock_ms)
            env->clock_ms = next->due;
        on_timer(&next->handle);
        fired++;
    }
    env->clock_ms = target;
    return fired;
}

static void *uv_loop_of(const morph_host_t *host)
{
    const morphd_stage_t *st = host->host_private;
    return st->chain->env->loop;
}

/* --- counters ------------------------------------------------------------------ */

static morph_counter_t *counter(const morph_host_t *host, const char *name,
                                const char *help)
{
    morphd_stage_t *st = host->host_private;
    if (!st->creating || name == NULL || *name == '\0')
        return NULL;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return NULL;
    return (morph_counter_t *)morphd_stats_counter(st->pstats, name, help);
}

static void counter_add(morph_counter_t *c, uint64_t n)
{
    if (c != NULL)
        __atomic_fetch_add(&((morphd_plugin_counter_t *)c)->value, n,
                           __ATOMIC_RELAXED);
}

static int instance_flags(const morph_host_t *host, uint32_t flags)
{
    morphd_stage_t *st = host->host_private;
    if (!st->creating ||
        (flags & ~(uint32_t)(MORPH_PLUGIN_BLOCKING | MORPH_PLUGIN_LINE_END)))
        return MORPH_ERROR;
    st->flags |= flags;
    return MORPH_OK;
}

/* --- HTTP ---------------------------------------------------------------------- */

static morphd_http_exchange_t *exchange_of(const morph_out_t *out)
{
    return morphd_http_exchange_of(morphd_chain_out_frame(out));
}

static int http_request(const morph_host_t *host, const morph_out_t *out,
                        morph_http_request_t *req)
{
    (void)host;
    const morphd_http_exchange_t *x = exchange_of(out);
    if (x == NULL || req == NULL ||
        req->struct_size < offsetof(morph_http_request_t, target_len) +
                               sizeof req->target_len)
        return MORPH_ERROR;
    req->version = x->minor == 0 ? 10 : 11;
    req->method = (const char *)x->method.p;
    req->method_len = x->method.len;
    req->target = (const char *)x->target.p;
    req->target_len = x->target.len;
    return MORPH_OK;
}

static int http_header(const morph_host_t *host, const morph_out_t *out,
                       const char *name, size_t index,
                       morph_http_field_t *field)
{
    (void)host;
    const morphd_http_exchange_t *x = exchange_of(out);
    if (x == NULL || field == NULL ||
        field->struct_size < offsetof(morph_http_field_t, value_len) +
                                 sizeof field->value_len)
        return MORPH_ERROR;
    morphd_http1_span_t n, v;
    if (!morphd_http1_field_at(x->head, x->head_len, name, index, &n, &v))
        return MORPH_ERROR;
    field->name = (const char *)n.p;
    field->name_len = n.len;
    field->value = (const char *)v.p;
    field->value_len = v.len;
    return MORPH_OK;
}

static int http_refused(const morph_host_t *host, const char *why)
{
    const morphd_stage_t *st = host->host_private;
    morphd_log(MORPH_LOG_WARN, "plugin %s: %s; not set", st->plugin->name,
               why);
    return MORPH_ERROR;
}

static int http_status(const morph_host_t *host, morph_out_t *out, int status)
{
    morphd_http_exchange_t *x = exchange_of(out);
    char why[200];
    if (x == NULL)
        return MORPH_ERROR;
    if (morphd_http_set_status(x, status, why, sizeof why) != 0)
        return http_refused(host, why);
    return MORPH_OK;
}

static int http_header_add(const morph_host_t *host, morph_out_t *out,
                           const char *name, const char *value)
{
    morphd_http_exchange_t *x = exchange_of(out);
    char why[200];
    if (x == NULL || name == NULL || value == NULL)
        return MORPH_ERROR;
    if (morphd_http_add_header(x, name, value, why, sizeof why) != 0)
        return http_refused(host, why);
    return MORPH_OK;
}

void morphd_host_stage_init(morphd_stage_t *st)
{
    morph_host_t *h = &st->host;
    memset(h, 0, sizeof *h);
    h->abi_version = MORPH_PLUGIN_ABI_VERSION;
    h->struct_size = sizeof *h;
    h->log = stage_log;
    h->host_private = st;
    h->service = st->chain->service;
    h->worker = st->chain->env->worker;
    h->conn_info = conn_info;
    h->timer_start = timer_start;
    h->timer_stop = timer_stop;
    h->uv_loop = uv_loop_of;
    h->counter = counter;
    h->counter_add = counter_add;
    h->instance_flags = instance_flags;
    h->http_request = http_request;
    h->http_header = http_header;
    h->http_status = http_status;
    h->http_header_add = http_header_add;
}

void morphd_host_stage_done(morphd_stage_t *st)
{
    size_t n = 0;
    while (st->timers != NULL) {
        timer_stop(&st->host, st->timers);
        n++;
    }
    while (st->spare_timers != NULL) {
        struct morph_timer *t = st->spare_timers;
        st->spare_timers = t->next;
        uv_close((uv_handle_t *)&t->handle, free_timer);
    }
    st->n_spare_timers = 0;
    if (n > 0)
        morphd_log(MORPH_LOG_WARN, "plugin %s: %zu timer%s still running when "
                   "its instance was destroyed; stopped", st->plugin->name, n,
                   n == 1 ? "" : "s");
}

void morphd_host_process_init(morph_host_t *host, const char *plugin_name)
{
    memset(host, 0, sizeof *host);
    host->abi_version = MORPH_PLUGIN_ABI_VERSION;
    host->struct_size = sizeof *host;
    host->log = process_log;
    host->host_private = (void *)plugin_name;
    host->service = "";
}
