/*
 * worker.c -- the per-loop half of morphd (worker.h): opening, handing
 * over and closing listeners, retiring sites, the idle sweep, and graceful
 * shutdown, always on the worker's own thread. The main thread (server.c)
 * builds the sites and decides; a worker only carries out.
 */
#include "daemon/activation.h"
#include "daemon/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* Every transport, for what acts on all connections of a loop. */
static const morphd_listener_ops_t *const transports[] = {
    &morphd_listener_tcp,
    &morphd_listener_udp,
};
#define N_TRANSPORTS (sizeof transports / sizeof *transports)

const morphd_listener_ops_t *morphd_listener_ops_for(morphd_transport_t t)
{
    switch (t) {
    case MORPHD_TCP:
    case MORPHD_HTTP: /* tcp's listener; its connections' codec is http */
        return &morphd_listener_tcp;
    case MORPHD_UNIX:
        return &morphd_listener_unix;
    case MORPHD_TLS:
    case MORPHD_HTTPS: /* tls's listener; its connections' codec is http */
        return &morphd_listener_tls;
    case MORPHD_UDP:
        break;
    }
    return &morphd_listener_udp;
}

int (*morphd_worker_inherited_socket)(const morphd_listener_t *l);

/* --- sites ---------------------------------------------------------------------- */

morphd_worker_service_t *morphd_worker_service_new(morphd_service_t *svc)
{
    const morphd_service_conf_t *conf = svc->conf;
    morphd_worker_service_t *site = calloc(1, sizeof *site);
    morphd_listener_t *ls = calloc(conf->n_listen ? conf->n_listen : 1,
                                   sizeof *ls);
    if (site == NULL || ls == NULL) {
        free(site);
        free(ls);
        return NULL;
    }
    site->svc = svc;
    site->listeners = ls;
    site->n_listeners = conf->n_listen;
    for (size_t i = 0; i < conf->n_listen; i++) {
        ls[i].ops = morphd_listener_ops_for(conf->listen[i].transport);
        ls[i].service = svc;
        ls[i].endpoint = conf->listen[i];
        ls[i].owner = site;
    }
    return site;
}

static void site_free(morphd_worker_service_t *site)
{
    morphd_service_t *svc = site->svc;
    free(site->listeners);
    free(site);
    svc->retired = true;
    morphd_service_unref(svc);
}

void morphd_worker_service_discard(morphd_worker_service_t *site)
{
    if (site != NULL)
        site_free(site);
}

/* A site no longer current with no listener open goes. */
static void site_maybe_gone(morphd_worker_service_t *site)
{
    if (site->current || site->n_open > 0)
        return;
    morphd_worker_t *w = site->worker;
    if (site->prev)
        site->prev->next = site->next;
    else
        w->all_sites = site->next;
    if (site->next)
        site->next->prev = site->prev;
    site_free(site);
}

/* --- finishing ------------------------------------------------------------------ */

static void on_closed_noop(uv_handle_t *h) { (void)h; }

static size_t open_conns(const morphd_worker_t *w)
{
    size_t n = 0;
    for (const morphd_service_t *svc = w->all_services; svc; svc = svc->next)
        n += svc->n_conns;
    return n;
}

/* Closes the worker's own timers (once: a finished worker's are closed
 * already when it is freed). */
static void close_timers(morphd_worker_t *w)
{
    if (!w->timers_on)
        return;
    w->timers_on = false;
    uv_close((uv_handle_t *)&w->shutdown_timer, on_closed_noop);
    uv_close((uv_handle_t *)&w->sweep_timer, on_closed_noop);
    uv_close((uv_handle_t *)&w->drain_timer, on_closed_noop);
    uv_close((uv_handle_t *)&w->io.drops_timer, on_closed_noop);
}

/* A stopping worker with nothing left open ends its loop: uv_stop, not
 * waiting for the loop to run out of handles, since a plugin may keep
 * handles of its own on it (plugin.h), which it closes in destroy(), once
 * the loop has stopped (morphd_worker_free). */
static void maybe_finish(morphd_worker_t *w)
{
    if (!w->stopping || w->finished || w->n_open_listeners > 0 ||
        open_conns(w) > 0 || w->env.n_jobs > 0)
        return;
    w->finished = true;
    close_timers(w);
    morphd_chain_env_close(&w->env);
    if (w->threaded)
        uv_close((uv_handle_t *)&w->wakeup, on_closed_noop);
    if (w->on_idle != NULL)
        w->on_idle(w, w->on_idle_arg);
    uv_stop(&w->loop);
}

static void on_conns_gone(morphd_service_t *svc) { maybe_finish(svc->owner); }

static void on_jobs_gone(morphd_chain_env_t *env) { maybe_finish(env->owner); }

static void on_listener_closed(morphd_listener_t *l)
{
    morphd_worker_service_t *site = l->owner;
    morphd_worker_t *w = site->worker;
    morphd_log(MORPH_LOG_INFO, "service %s: closed %s", site->svc->conf->name,
               l->bound);
    w->n_open_listeners--;
    site->n_open--;
    site_maybe_gone(site); /* may free l: last use above */
    maybe_finish(w);
}

/* --- the idle sweep ---------------------------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
    for (size_t i = 0; i < N_TRANSPORTS; i++)
        if (transports[i]->sweep_conns != NULL)
            transports[i]->sweep_conns(&((morphd_worker_t *)t->data)->io);
}

/* How often to look for idle connections (and TLS handshakes or PROXY
 * headers that take too long): a quarter of the shortest idle_timeout,
 * tls_handshake_timeout or proxy_timeout, so a connection is closed at most 25% late,
 * between 50 ms and 1 s. Connections of retired services keep their own
 * timeouts and are swept on the same beat. */
static void start_sweep(morphd_worker_t *w)
{
    uint64_t every = 0;
    for (morphd_service_t *svc = w->all_services; svc; svc = svc->next) {
        unsigned idle = svc->conf->idle_timeout_ms;
        unsigned tls = svc->tls != NULL ? svc->conf->tls_handshake_timeout_ms : 0;
        if (idle == 0 || (tls != 0 && tls < idle))
            idle = tls;
        unsigned proxy = svc->conf->proxy_protocol && morphd_service_conf_has_stream(svc->conf)
                             ? svc->conf->proxy_timeout_ms : 0;
        if (idle == 0 || (proxy != 0 && proxy < idle))
            idle = proxy;
        unsigned http = morphd_service_conf_has_http(svc->conf)
                            ? svc->conf->http_request_timeout_ms : 0;
        if (idle == 0 || (http != 0 && http < idle))
            idle = http;
        unsigned detect = morphd_service_conf_detects(svc->conf)
                              ? svc->conf->detect_timeout_ms : 0;
        if (idle == 0 || (detect != 0 && detect < idle))
            idle = detect;
        if (idle == 0)
            continue;
        uint64_t e = idle / 4;
        e = e < 50 ? 50 : e > 1000 ? 1000 : e;
        if (every == 0 || e < every)
            every = e;
    }
    if (every == w->sweep_ms)
        return;
    w->sweep_ms = every;
    if (every == 0)
        uv_timer_stop(&w->sweep_timer);
    else
        uv_timer_start(&w->sweep_timer, on_sweep, every, every);
}

/* --- init --------------------------------------------------------------------- */

int morphd_worker_init(morphd_worker_t *w, unsigned index, unsigned n_workers)
{
    memset(w, 0, sizeof *w);
    w->index = index;
    int rc = uv_loop_init(&w->loop);
    if (rc != 0)
        return rc;
    w->io.read_buf_size = MORPHD_READ_BUF_SIZE;
    w->io.read_buf = malloc(w->io.read_buf_size);
    if (w->io.read_buf == NULL) {
        uv_loop_close(&w->loop);
        return UV_ENOMEM;
    }
    morphd_chain_env_init(&w->env, &w->loop, index, n_workers);
    w->env.on_jobs_gone = on_jobs_gone;
    w->env.owner = w;
    uv_timer_init(&w->loop, &w->shutdown_timer);
    uv_timer_init(&w->loop, &w->sweep_timer);
    uv_timer_init(&w->loop, &w->drain_timer);
    uv_timer_init(&w->loop, &w->io.drops_timer);
    w->io.drops_timer.data = &w->io;
    w->shutdown_timer.data = w;
    w->sweep_timer.data = w;
    w->drain_timer.data = w;
    /* none keeps the loop alive */
    uv_unref((uv_handle_t *)&w->shutdown_timer);
    uv_unref((uv_handle_t *)&w->sweep_timer);
    uv_unref((uv_handle_t *)&w->drain_timer);
    uv_unref((uv_handle_t *)&w->io.drops_timer);
    w->timers_on = true;
    uv_mutex_init(&w->lock);
    uv_cond_init(&w->done_cond);
    return 0;
}

/* --- listeners ---------------------------------------------------------------- */

/* Calls fn on every open listener of the current sites. */
static void for_each_listener(morphd_worker_t *w,
                              void (*fn)(morphd_listener_t *))
{
    for (size_t i = 0; i < w->n_sites; i++)
        for (size_t j = 0; j < w->sites[i]->n_listeners; j++)
            if (w->sites[i]->listeners[j].impl != NULL)
                fn(&w->sites[i]->listeners[j]);
}

/* Calls fn on every listener still open, of any site. fn may free a site,
 * so the next one is read first. */
static void for_every_listener(morphd_worker_t *w,
                               void (*fn)(morphd_listener_t *))
{
    for (morphd_worker_service_t *site = w->all_sites, *next; site; site = next) {
        next = site->next;
        bool keep = site->current;
        site->current = true; /* not freed while fn runs */
        for (size_t j = 0; j < site->n_listeners; j++)
            if (site->listeners[j].impl != NULL)
                fn(&site->listeners[j]);
        site->current = keep;
        site_maybe_gone(site);
    }
}

static void close_listener(morphd_listener_t *l) { l->ops->close(l); }
static void abort_listener(morphd_listener_t *l) { l->ops->abort(l); }

/* "datagrams", or "line framing", "length framing"... */
static const char *listener_kind(const morphd_listener_t *l, char *buf,
                                 size_t size)
{
    if (l->endpoint.transport == MORPHD_UDP)
        return "datagrams";
    snprintf(buf, size, "%s framing", l->service->conf->codec.ops->name);
    return buf;
}

static int open_listener(morphd_worker_t *w, morphd_listener_t *l,
                         morphd_errors_t *errs)
{
    char err[256];
    morphd_worker_service_t *site = l->owner;
    const morphd_service_conf_t *conf = l->service->conf;
    l->reuseport = w->reuseport;
    l->on_closed = on_listener_closed;
    const char *from = ", from systemd";
    if (morphd_worker_inherited_socket != NULL && l->share == NULL) {
        int fd = morphd_worker_inherited_socket(l); /* the main process's */
        if (fd >= 0) {
            l->adopted = true;
            l->fd = fd;
            from = ", from the main process";
        }
    } else if (w->index == 0 && l->share == NULL) { /* systemd's, if any */
        int fd = morphd_activation_take(&l->endpoint);
        if (fd >= 0) {
            l->adopted = true;
            l->fd = fd;
        }
    }
    if (l->ops->open(l, &w->loop, err, sizeof err) != 0) {
        morphd_errors_add(errs, "%s:%d: service '%s': %s", l->service->file,
                          conf->listen_line, conf->name, err);
        return -1;
    }
    w->n_open_listeners++;
    site->n_open++;
    char kind[64];
    morphd_log(MORPH_LOG_INFO, "service %s: listening on %s (%s, worker %u%s)",
               conf->name, l->bound, listener_kind(l, kind, sizeof kind),
               w->index,
               l->adopted ? from : "");
    return 0;
}

/* The open listener of the current sites that `l` takes over, not
 * claimed by another new listener (morphd_endpoint_hands_over). */
static morphd_listener_t *find_running(morphd_worker_t *w,
                                       const morphd_listener_t *l)
{
    for (size_t i = 0; i < w->n_sites; i++)
        for (size_t j = 0; j < w->sites[i]->n_listeners; j++) {
            morphd_listener_t *old = &w->sites[i]->listeners[j];
            if (old->impl != NULL && !old->taken &&
                morphd_endpoint_hands_over(&old->endpoint,
                                           old->service->conf->name,
                                           &l->endpoint,
                                           l->service->conf->name))
                return old;
        }
    return NULL;
}

/* --- commands ------------------------------------------------------------------ */

static void do_abort(morphd_worker_t *w, morphd_worker_service_t **sites, size_t n);

static void adopt(morphd_worker_t *w, morphd_worker_service_t *site)
{
    morphd_service_t *svc = site->svc;
    site->worker = w;
    site->current = true;
    site->prev = NULL;
    site->next = w->all_sites;
    if (w->all_sites)
        w->all_sites->prev = site;
    w->all_sites = site;
    svc->owner = w;
    svc->worker = w->index;
    svc->io = &w->io;
    svc->on_conns_gone = on_conns_gone;
    svc->all = &w->all_services;
    svc->prev = NULL;
    svc->next = w->all_services;
    if (w->all_services)
        w->all_services->prev = svc;
    w->all_services = svc;
}

/* OPEN: adopt the new sites, pair each new listener with the running one
 * it will take over, and open the others. */
static int do_open(morphd_worker_t *w, morphd_worker_service_t **sites, size_t n,
                   morphd_errors_t *errs)
{
    for (size_t i = 0; i < n; i++)
        adopt(w, sites[i]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sites[i]->n_listeners; j++) {
            morphd_listener_t *l = &sites[i]->listeners[j];
            l->from = find_running(w, l);
            if (l->from != NULL)
                l->from->taken = true;
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sites[i]->n_listeners; j++) {
            morphd_listener_t *l = &sites[i]->listeners[j];
            if (l->from == NULL && open_listener(w, l, errs) != 0) {
                do_abort(w, sites, n);
                return -1;
            }
        }
    return 0;
}

/* ABORT: close what OPEN opened and drop the sites (they go once their
 * listeners have closed). */
static void do_abort(morphd_worker_t *w, morphd_worker_service_t **sites, size_t n)
{
    (void)w;
    for (size_t i = 0; i < n; i++) {
        morphd_worker_service_t *site = sites[i];
        site->current = true; /* not freed while its listeners abort */
        for (size_t j = 0; j < site->n_listeners; j++) {
            morphd_listener_t *l = &site->listeners[j];
            if (l->from != NULL)
                l->from->taken = false;
            l->from = NULL;
            if (l->impl != NULL)
                abort_listener(l);
        }
    }
    for (size_t i = 0; i < n; i++) {
        sites[i]->current = false;
        site_maybe_gone(sites[i]);
    }
}

/* COMMIT: hand each paired endpoint over, socket and all (nothing queued
 * on it is lost), close the endpoints no longer configured, and retire the
 * old sites: their TCP connections keep their services until they end. */
static void do_commit(morphd_worker_t *w, morphd_worker_service_t **sites, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < sites[i]->n_listeners; j++) {
            morphd_listener_t *l = &sites[i]->listeners[j], *old = l->from;
            if (old == NULL)
                continue;
            morphd_worker_service_t *old_site = old->owner;
            l->impl = old->impl;
            old->impl = NULL;
            old->taken = false;
            l->from = NULL;
            memcpy(l->bound, old->bound, sizeof l->bound);
            memcpy(&l->bound_addr, &old->bound_addr, sizeof l->bound_addr);
            l->reuseport = old->reuseport;
            l->adopted = old->adopted;
            l->fd = old->fd;
            l->on_closed = on_listener_closed;
            l->ops->rebind(l);
            sites[i]->n_open++;
            old_site->n_open--;
        }
    for_each_listener(w, close_listener);
    morphd_worker_service_t **old = w->sites;
    size_t n_old = w->n_sites;
    w->sites = sites;
    w->n_sites = n;
    for (size_t i = 0; i < n_old; i++) {
        old[i]->current = false;
        site_maybe_gone(old[i]);
    }
    free(old);
    start_sweep(w);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    morphd_worker_t *w = t->data;
    morphd_log(MORPH_LOG_WARN, "shutdown timeout: closing connections with "
               "unsent replies");
    morphd_worker_abort_all(w);
}

/* A stop drains connections in passes, DRAIN_PASS_MS apart, for at most
 * drain_grace(): each pass closes the connections that are quiet (once
 * their replies are written) and leaves the busy ones to be served on: a
 * message read in part or not yet read, and a connection active within
 * the grace before the stop (accepted so lately that its first message
 * may still be on the way, or answered so lately that its next one may).
 * Closing those at once lost about one connection in 1,000 of a client
 * connecting over and over across restarts. The last pass closes them
 * all, each once its replies are written. */
#define DRAIN_PASS_MS 20
#define DRAIN_GRACE_MS 500

/* Half of shutdown_timeout when that is shorter, so that what the last
 * pass closes still has time to be written. */
static unsigned drain_grace(const morphd_worker_t *w)
{
    unsigned half = w->shutdown_timeout_ms / 2;
    return half < DRAIN_GRACE_MS ? half : DRAIN_GRACE_MS;
}

static void drain_pass(morphd_worker_t *w)
{
    unsigned grace = drain_grace(w);
    unsigned elapsed = (unsigned)(uv_now(&w->loop) - w->drain_started);
    bool last = elapsed >= grace;
    for (size_t i = 0; i < N_TRANSPORTS; i++)
        if (transports[i]->drain_conns != NULL)
            transports[i]->drain_conns(&w->io, last ? 0 : grace + elapsed);
    if (last)
        uv_timer_stop(&w->drain_timer);
}

static void on_drain_pass(uv_timer_t *t) { drain_pass(t->data); }

static void do_stop(morphd_worker_t *w)
{
    if (w->stopping && !w->retiring)
        return;
    w->retiring = false;
    w->stopping = true;
    for_every_listener(w, close_listener);
    w->drain_started = uv_now(&w->loop);
    drain_pass(w);
    if (drain_grace(w) > 0)
        uv_timer_start(&w->drain_timer, on_drain_pass, DRAIN_PASS_MS,
                       DRAIN_PASS_MS);
    uv_timer_start(&w->shutdown_timer, on_shutdown_timeout,
                   w->shutdown_timeout_ms, 0);
    maybe_finish(w);
}

/* RETIRE: no new clients; the loop ends once the last connection has
 * (idle_timeout still closes the silent ones). A STOP after it drains. */
static void do_retire(morphd_worker_t *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    w->retiring = true;
    for_every_listener(w, close_listener);
    maybe_finish(w);
}

void morphd_worker_abort_all(morphd_worker_t *w)
{
    for_every_listener(w, abort_listener);
    for (size_t i = 0; i < N_TRANSPORTS; i++)
        if (transports[i]->abort_conns != NULL)
            transports[i]->abort_conns(&w->io);
}

static int run_cmd(morphd_worker_t *w, morphd_worker_cmd_t cmd,
                   morphd_worker_service_t **sites, size_t n, morphd_errors_t *errs)
{
    switch (cmd) {
    case MORPHD_WORKER_OPEN:
        return do_open(w, sites, n, errs);
    case MORPHD_WORKER_ABORT:
        do_abort(w, sites, n);
        return 0;
    case MORPHD_WORKER_COMMIT:
        do_commit(w, sites, n);
        return 0;
    case MORPHD_WORKER_STOP:
        do_stop(w);
        return 0;
    case MORPHD_WORKER_RETIRE:
        do_retire(w);
        return 0;
    }
    return -1;
}

/* --- threads ------------------------------------------------------------------ */

static void on_wakeup(uv_async_t *a)
{
    morphd_worker_t *w = a->data;
    uv_mutex_lock(&w->lock);
    bool pending = w->cmd_pending;
    morphd_worker_cmd_t cmd = w->cmd;
    uv_mutex_unlock(&w->lock);
    if (!pending)
        return;
    int rc = run_cmd(w, cmd, w->cmd_sites, w->cmd_n, w->cmd_errs);
    uv_mutex_lock(&w->lock);
    w->cmd_result = rc;
    w->cmd_pending = false;
    uv_cond_signal(&w->done_cond);
    uv_mutex_unlock(&w->lock);
}

static void worker_main(void *arg)
{
    morphd_worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

int morphd_worker_start_thread(morphd_worker_t *w)
{
    int rc = uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    if (rc != 0)
        return rc;
    w->wakeup.data = w;
    w->threaded = true;
    return uv_thread_create(&w->thread, worker_main, w);
}

int morphd_worker_call(morphd_worker_t *w, morphd_worker_cmd_t cmd,
                       morphd_worker_service_t **sites, size_t n,
                       morphd_errors_t *errs)
{
    if (!w->threaded)
        return run_cmd(w, cmd, sites, n, errs);
    uv_mutex_lock(&w->lock);
    w->cmd = cmd;
    w->cmd_sites = sites;
    w->cmd_n = n;
    w->cmd_errs = errs;
    w->cmd_pending = true;
    uv_async_send(&w->wakeup);
    int rc = 0;
    if (cmd != MORPHD_WORKER_STOP) { /* a stop is not waited for */
        while (w->cmd_pending)
            uv_cond_wait(&w->done_cond, &w->lock);
        rc = w->cmd_result;
    }
    uv_mutex_unlock(&w->lock);
    return rc;
}

void morphd_worker_free(morphd_worker_t *w)
{
    if (w->io.read_buf == NULL)
        return;
    close_timers(w);
    morphd_chain_env_close(&w->env);
    uv_run(&w->loop, UV_RUN_NOWAIT); /* finish pending closes */
    for (size_t i = 0; i < w->n_sites; i++) {
        morphd_worker_service_t *site = w->sites[i];
        if (site->prev)
            site->prev->next = site->next;
        else
            w->all_sites = site->next;
        if (site->next)
            site->next->prev = site->prev;
        if (site->svc->refs > 1)
            morphd_log(MORPH_LOG_WARN, "service %s still in use at exit",
                       site->svc->conf->name);
        site_free(site);
    }
    free(w->sites);
    /* a service a connection still held (never, after a clean stop) */
    while (w->all_services != NULL)
        morphd_service_destroy(w->all_services);
    uv_run(&w->loop, UV_RUN_NOWAIT); /* closes made by plugins' destroy() */
    morphd_chain_env_free(&w->env);
    morphd_buf_free(&w->io.reply);
    morphd_buf_free(&w->io.tls.out);
    free(w->io.tls_plain);
    free(w->io.read_buf);
    free(w->io.stream_conns); /* empty: every connection has closed */
    if (uv_loop_close(&w->loop) != 0)
        morphd_log(MORPH_LOG_WARN, "event loop %u closed with handles open",
                   w->index);
    uv_mutex_destroy(&w->lock);
    uv_cond_destroy(&w->done_cond);
    memset(w, 0, sizeof *w);
}
