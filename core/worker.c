/*
 * worker.c -- the per-loop half of morphd (worker.h): opening, handing
 * over and closing listeners, retiring services, and graceful shutdown,
 * always on the worker's own thread. The main thread (server.c) builds the
 * services and decides; a worker only carries out.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int morphd_worker_init(morphd_worker_t *w, unsigned index)
{
    memset(w, 0, sizeof *w);
    w->index = index;
    int rc = uv_loop_init(&w->loop);
    if (rc != 0)
        return rc;
    w->ctx.loop = &w->loop;
    w->ctx.read_buf_size = MORPHD_READ_BUF_SIZE;
    w->ctx.read_buf = malloc(w->ctx.read_buf_size);
    if (w->ctx.read_buf == NULL)
        return UV_ENOMEM;
    uv_timer_init(&w->loop, &w->shutdown_timer);
    w->shutdown_timer.data = w;
    uv_unref((uv_handle_t *)&w->shutdown_timer);
    w->timer_on = true;
    uv_mutex_init(&w->lock);
    uv_cond_init(&w->done_cond);
    return 0;
}

/* --- listeners ---------------------------------------------------------------- */

static void on_closed_noop(uv_handle_t *h) { (void)h; }

/* A stopping worker with nothing left open lets its loop end. */
static void worker_finish(morphd_worker_t *w)
{
    if (w->timer_on) {
        w->timer_on = false;
        uv_close((uv_handle_t *)&w->shutdown_timer, on_closed_noop);
    }
    if (w->threaded)
        uv_close((uv_handle_t *)&w->wakeup, on_closed_noop);
    if (w->on_idle != NULL)
        w->on_idle(w);
}

void morphd_listener_closed(morphd_listener_t *l)
{
    morphd_service_t *svc = l->service;
    morphd_worker_t *w = svc->owner;
    morphd_log(MORPH_LOG_INFO, "service %s: closed %s", svc->conf->name,
               l->bound);
    w->n_open_listeners--;
    morphd_service_unref(svc); /* may free l: last use above */
    if (w->n_open_listeners == 0 && w->stopping)
        worker_finish(w);
}

/* Calls fn on every open listener of the current services. */
static void for_each_listener(morphd_worker_t *w,
                              void (*fn)(morphd_listener_t *))
{
    for (size_t i = 0; i < w->n_services; i++)
        for (size_t j = 0; j < w->services[i]->n_listeners; j++)
            if (w->services[i]->listeners[j].impl != NULL)
                fn(&w->services[i]->listeners[j]);
}

/* Calls fn on every listener still alive, retired ones included (closed
 * by a reload, still serving the connections they accepted). fn may free
 * a service, so the next one is read first. */
static void for_every_listener(morphd_worker_t *w,
                               void (*fn)(morphd_listener_t *))
{
    for (morphd_service_t *svc = w->all_services, *next; svc; svc = next) {
        morphd_service_ref(svc); /* keeps svc while fn runs */
        for (size_t j = 0; j < svc->n_listeners; j++)
            if (svc->listeners[j].impl != NULL)
                fn(&svc->listeners[j]);
        next = svc->next;
        morphd_service_unref(svc);
    }
}

static void close_listener(morphd_listener_t *l) { l->frontend->close(l); }
static void drain_listener(morphd_listener_t *l) { l->frontend->drain(l); }
static void abort_listener(morphd_listener_t *l) { l->frontend->abort(l); }

static const char *listener_kind(const morphd_listener_t *l)
{
    if (l->endpoint.transport == MORPHD_UDP)
        return "datagrams";
    return l->service->conf->framing == MORPHD_FRAMING_LINE ? "line framing"
                                                            : "stream framing";
}

static int open_listener(morphd_worker_t *w, morphd_listener_t *l,
                         morphd_errors_t *errs)
{
    char err[256];
    const morphd_service_conf_t *conf = l->service->conf;
    l->reuseport = w->reuseport;
    if (l->frontend->open(l, err, sizeof err) != 0) {
        morphd_errors_add(errs, "%s:%d: service '%s': %s",
                          l->service->gen->cfg.path, conf->listen_line,
                          conf->name, err);
        return -1;
    }
    w->n_open_listeners++;
    morphd_service_ref(l->service);
    morphd_log(MORPH_LOG_INFO, "service %s: listening on %s (%s, worker %u)",
               conf->name, l->bound, listener_kind(l), w->index);
    return 0;
}

/* The open listener of the running services that `l` takes over: same
 * transport and configured endpoint, not claimed by another new listener.
 * A port-0 endpoint means "any free port", so it is only taken over by the
 * same service. */
static morphd_listener_t *find_running(morphd_worker_t *w,
                                       const morphd_listener_t *l)
{
    bool any_port = strcmp(strrchr(l->endpoint.text, ':'), ":0") == 0;
    for (size_t i = 0; i < w->n_services; i++)
        for (size_t j = 0; j < w->services[i]->n_listeners; j++) {
            morphd_listener_t *old = &w->services[i]->listeners[j];
            if (old->impl == NULL || old->taken ||
                old->endpoint.transport != l->endpoint.transport ||
                strcmp(old->endpoint.text, l->endpoint.text) != 0 ||
                (any_port && strcmp(old->service->conf->name,
                                    l->service->conf->name) != 0))
                continue;
            return old;
        }
    return NULL;
}

/* --- commands ------------------------------------------------------------------ */

static void do_abort(morphd_worker_t *w, morphd_service_t **svcs, size_t n);

/* OPEN: adopt the new services, pair each new listener with the running one
 * it will take over, and open the others. */
static int do_open(morphd_worker_t *w, morphd_service_t **svcs, size_t n,
                   morphd_errors_t *errs)
{
    for (size_t i = 0; i < n; i++) {
        morphd_service_t *svc = svcs[i];
        svc->owner = w;
        svc->ctx = &w->ctx;
        svc->all = &w->all_services;
        svc->next = w->all_services;
        if (w->all_services)
            w->all_services->prev = svc;
        w->all_services = svc;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_listeners; j++) {
            morphd_listener_t *l = &svcs[i]->listeners[j];
            l->from = find_running(w, l);
            if (l->from != NULL)
                l->from->taken = true;
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_listeners; j++) {
            morphd_listener_t *l = &svcs[i]->listeners[j];
            if (l->from == NULL && open_listener(w, l, errs) != 0) {
                do_abort(w, svcs, n);
                return -1;
            }
        }
    return 0;
}

/* ABORT: close what OPEN opened and drop the services (they go once their
 * listeners have closed). */
static void do_abort(morphd_worker_t *w, morphd_service_t **svcs, size_t n)
{
    (void)w;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_listeners; j++) {
            morphd_listener_t *l = &svcs[i]->listeners[j];
            if (l->from != NULL)
                l->from->taken = false;
            l->from = NULL;
            if (l->impl != NULL)
                abort_listener(l);
        }
    for (size_t i = 0; i < n; i++) {
        svcs[i]->retired = true;
        morphd_service_unref(svcs[i]);
    }
}

/* COMMIT: hand each paired endpoint over, socket and all (nothing queued
 * on it is lost), close the endpoints no longer configured, and retire the
 * old services: their TCP connections keep them until they end. */
static void do_commit(morphd_worker_t *w, morphd_service_t **svcs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_listeners; j++) {
            morphd_listener_t *l = &svcs[i]->listeners[j], *old = l->from;
            if (old == NULL)
                continue;
            l->impl = old->impl;
            old->impl = NULL;
            old->taken = false;
            l->from = NULL;
            memcpy(l->bound, old->bound, sizeof l->bound);
            memcpy(&l->bound_addr, &old->bound_addr, sizeof l->bound_addr);
            l->reuseport = old->reuseport;
            l->frontend->rebind(l);
            morphd_service_ref(l->service);
            morphd_service_unref(old->service);
        }
    for_each_listener(w, close_listener);
    for (size_t i = 0; i < w->n_services; i++) {
        w->services[i]->retired = true;
        morphd_service_unref(w->services[i]);
    }
    free(w->services);
    w->services = svcs;
    w->n_services = n;
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    morphd_worker_t *w = t->data;
    morphd_log(MORPH_LOG_WARN, "shutdown timeout: closing connections with "
               "unsent replies");
    morphd_worker_abort_all(w);
}

static void do_stop(morphd_worker_t *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    for_each_listener(w, close_listener);
    for_every_listener(w, drain_listener);
    if (w->n_open_listeners == 0) {
        worker_finish(w);
        return;
    }
    uv_timer_start(&w->shutdown_timer, on_shutdown_timeout,
                   w->shutdown_timeout_ms, 0);
}

void morphd_worker_abort_all(morphd_worker_t *w)
{
    for_every_listener(w, abort_listener);
}

static int run_cmd(morphd_worker_t *w, morphd_worker_cmd_t cmd,
                   morphd_service_t **svcs, size_t n, morphd_errors_t *errs)
{
    switch (cmd) {
    case MORPHD_WORKER_OPEN:
        return do_open(w, svcs, n, errs);
    case MORPHD_WORKER_ABORT:
        do_abort(w, svcs, n);
        return 0;
    case MORPHD_WORKER_COMMIT:
        do_commit(w, svcs, n);
        return 0;
    case MORPHD_WORKER_STOP:
        do_stop(w);
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
    int rc = run_cmd(w, cmd, w->cmd_svcs, w->cmd_n, w->cmd_errs);
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
                       morphd_service_t **svcs, size_t n,
                       morphd_errors_t *errs)
{
    if (!w->threaded)
        return run_cmd(w, cmd, svcs, n, errs);
    uv_mutex_lock(&w->lock);
    w->cmd = cmd;
    w->cmd_svcs = svcs;
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
    if (w->ctx.loop == NULL)
        return;
    if (w->timer_on) {
        w->timer_on = false;
        uv_close((uv_handle_t *)&w->shutdown_timer, on_closed_noop);
    }
    uv_run(&w->loop, UV_RUN_NOWAIT); /* finish pending closes */
    for (size_t i = 0; i < w->n_services; i++) {
        morphd_service_t *svc = w->services[i];
        if (svc->refs == 1) {
            svc->retired = true;
            morphd_service_unref(svc);
        } else {
            morphd_log(MORPH_LOG_WARN, "service %s still in use at exit",
                       svc->conf->name);
            morphd_service_destroy(svc);
        }
    }
    free(w->services);
    morphd_scratch_free(&w->ctx.scratch);
    morphd_buf_free(&w->ctx.reply);
    free(w->ctx.read_buf);
    if (uv_loop_close(&w->loop) != 0)
        morphd_log(MORPH_LOG_WARN, "event loop %u closed with handles open",
                   w->index);
    uv_mutex_destroy(&w->lock);
    uv_cond_destroy(&w->done_cond);
    memset(w, 0, sizeof *w);
}
