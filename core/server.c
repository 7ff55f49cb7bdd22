/*
 * server.c -- start-up, running and shutdown of morphd (server.h). Plugins
 * are loaded once per file even when several services use them; each
 * service gets its own instances with its own options.
 */
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "notify.h"

/* The most a stage may output: enough for any case mapping of a full
 * message (at most 3x in UTF-8) with room to spare. */
static size_t out_limit_for(const morphd_service_conf_t *conf)
{
    size_t base = conf->max_message > MORPHD_READ_BUF_SIZE
                      ? conf->max_message
                      : MORPHD_READ_BUF_SIZE;
    return base * 4;
}

/* Resolves a relative plugin_dir against the config file's folder. */
static char *resolve_dir(const char *dir, const char *config_path)
{
    char *out = NULL;
    const char *slash = config_path ? strrchr(config_path, '/') : NULL;
    if (dir[0] == '/' || slash == NULL)
        return strdup(dir);
    if (asprintf(&out, "%.*s/%s", (int)(slash - config_path), config_path,
                 dir) < 0)
        return NULL;
    return out;
}

static morphd_plugin_t *find_or_load(morphd_server_t *s, const char *name,
                                     char *err, size_t err_size)
{
    for (size_t i = 0; i < s->n_plugins; i++)
        if (strcmp(s->plugins[i]->name, name) == 0)
            return s->plugins[i];
    /* each plugin has its own allocation: chains keep pointers to it */
    morphd_plugin_t *p = malloc(sizeof *p);
    morphd_plugin_t **grown =
        realloc(s->plugins, (s->n_plugins + 1) * sizeof *grown);
    if (grown != NULL)
        s->plugins = grown;
    if (p == NULL || grown == NULL) {
        free(p);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (morphd_plugin_load(s->plugin_dir, name, p, err, err_size) != 0) {
        free(p);
        return NULL;
    }
    s->plugins[s->n_plugins++] = p;
    morphd_log(MORPH_LOG_INFO, "plugin %s %s loaded from %s", p->name,
               p->desc->version ? p->desc->version : "?", p->path);
    return p;
}

static bool has_tcp(const morphd_service_conf_t *conf)
{
    for (size_t i = 0; i < conf->n_listen; i++)
        if (conf->listen[i].transport == MORPHD_TCP)
            return true;
    return false;
}

static void setup_service(morphd_server_t *s, morphd_service_t *svc,
                          const morphd_service_conf_t *conf,
                          morphd_errors_t *errs)
{
    const char *file = s->cfg.path;
    char err[768];
    memset(svc, 0, sizeof *svc);
    svc->conf = conf;
    svc->ctx = &s->ctx;
    svc->owner = s;

    morphd_plugin_t **plugins = calloc(conf->n_chain, sizeof *plugins);
    if (plugins == NULL) {
        morphd_errors_add(errs, "out of memory");
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < conf->n_chain; i++) {
        plugins[i] = find_or_load(s, conf->chain[i], err, sizeof err);
        if (plugins[i] == NULL) {
            morphd_errors_add(errs, "%s:%d: %s", file, conf->transform_line,
                              err);
            ok = false;
        }
    }
    if (ok && conf->framing == MORPHD_FRAMING_STREAM && has_tcp(conf)) {
        for (size_t i = 0; i < conf->n_chain; i++)
            if (!(plugins[i]->desc->flags & MORPH_PLUGIN_CHUNK_SAFE)) {
                morphd_errors_add(
                    errs,
                    "%s:%d: service '%s': plugin '%s' is not chunk-safe, so "
                    "it cannot run with framing = stream; set framing = line",
                    file,
                    conf->framing_line ? conf->framing_line
                                       : conf->transform_line,
                    conf->name, plugins[i]->name);
                ok = false;
            }
    }
    if (ok && morphd_chain_create(plugins, conf->n_chain, conf,
                                  out_limit_for(conf), &svc->chain, err,
                                  sizeof err) != 0)
        morphd_errors_add(errs, "%s:%d: service '%s': %s", file,
                          conf->transform_line, conf->name, err);
    free(plugins);

    svc->listeners = calloc(conf->n_listen, sizeof *svc->listeners);
    if (svc->listeners == NULL) {
        morphd_errors_add(errs, "out of memory");
        return;
    }
    svc->n_listeners = conf->n_listen;
    for (size_t i = 0; i < conf->n_listen; i++) {
        morphd_listener_t *l = &svc->listeners[i];
        l->frontend = morphd_frontend_for(conf->listen[i].transport);
        l->service = svc;
        l->endpoint = conf->listen[i];
    }
}

int morphd_server_init(morphd_server_t *s, morphd_config_t *cfg,
                       const char *plugin_dir, morphd_errors_t *errs)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    size_t errors_before = errs->n;

    int rc = uv_loop_init(&s->loop);
    if (rc != 0) {
        morphd_errors_add(errs, "cannot create the event loop: %s",
                          uv_strerror(rc));
        return -1;
    }
    s->ctx.loop = &s->loop;
    s->ctx.read_buf_size = MORPHD_READ_BUF_SIZE;
    s->ctx.read_buf = malloc(s->ctx.read_buf_size);
    s->plugin_dir = resolve_dir(s->cfg.plugin_dir ? s->cfg.plugin_dir
                                                  : plugin_dir,
                                s->cfg.plugin_dir ? s->cfg.path : NULL);
    s->services = calloc(s->cfg.n_services, sizeof *s->services);
    if (s->ctx.read_buf == NULL || s->plugin_dir == NULL ||
        (s->services == NULL && s->cfg.n_services > 0)) {
        morphd_errors_add(errs, "out of memory");
        return -1;
    }
    s->n_services = s->cfg.n_services;
    for (size_t i = 0; i < s->n_services; i++)
        setup_service(s, &s->services[i], &s->cfg.services[i], errs);
    return errs->n == errors_before ? 0 : -1;
}

const morphd_frontend_t *morphd_frontend_for(morphd_transport_t t)
{
    return t == MORPHD_TCP ? &morphd_frontend_tcp : &morphd_frontend_udp;
}

static void on_handle_closed_noop(uv_handle_t *h) { (void)h; }

static void close_server_handles(morphd_server_t *s)
{
    if (s->signals_on) {
        s->signals_on = false;
        uv_close((uv_handle_t *)&s->sigint, on_handle_closed_noop);
        uv_close((uv_handle_t *)&s->sigterm, on_handle_closed_noop);
        uv_close((uv_handle_t *)&s->shutdown_timer, on_handle_closed_noop);
    }
}

void morphd_listener_closed(morphd_listener_t *l)
{
    morphd_server_t *s = l->service->owner;
    morphd_log(MORPH_LOG_INFO, "service %s: closed %s", l->service->conf->name,
               l->bound);
    if (--s->n_open_listeners == 0 && s->stopping)
        close_server_handles(s);
}

static void for_each_listener(morphd_server_t *s,
                              void (*fn)(morphd_listener_t *))
{
    for (size_t i = 0; i < s->n_services; i++)
        for (size_t j = 0; j < s->services[i].n_listeners; j++)
            if (s->services[i].listeners[j].impl != NULL)
                fn(&s->services[i].listeners[j]);
}

static void close_listener(morphd_listener_t *l) { l->frontend->close(l); }
static void abort_listener(morphd_listener_t *l) { l->frontend->abort(l); }

int morphd_server_listen(morphd_server_t *s, morphd_errors_t *errs)
{
    char err[256];
    int failed = 0;
    for (size_t i = 0; i < s->n_services && !failed; i++) {
        morphd_service_t *svc = &s->services[i];
        for (size_t j = 0; j < svc->n_listeners; j++) {
            morphd_listener_t *l = &svc->listeners[j];
            if (l->frontend->open(l, err, sizeof err) != 0) {
                morphd_errors_add(errs, "%s:%d: service '%s': %s", s->cfg.path,
                                  svc->conf->listen_line, svc->conf->name, err);
                failed = 1;
                break;
            }
            s->n_open_listeners++;
            morphd_log(MORPH_LOG_INFO, "service %s: listening on %s (%s)",
                       svc->conf->name, l->bound,
                       svc->conf->framing == MORPHD_FRAMING_LINE ||
                               l->endpoint.transport == MORPHD_UDP
                           ? (l->endpoint.transport == MORPHD_UDP ? "datagrams"
                                                                  : "line framing")
                           : "stream framing");
        }
    }
    if (failed) {
        /* undo: close what opened and let the loop finish closing it */
        s->stopping = true;
        for_each_listener(s, abort_listener);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        return -1;
    }
    return 0;
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    morphd_server_t *s = t->data;
    morphd_log(MORPH_LOG_WARN, "shutdown timeout: closing connections with "
               "unsent replies");
    for_each_listener(s, abort_listener);
}

void morphd_server_stop(morphd_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    morphd_notify_stopping();
    for_each_listener(s, close_listener);
    if (s->n_open_listeners == 0) {
        close_server_handles(s);
        return;
    }
    if (s->signals_on) {
        uv_timer_start(&s->shutdown_timer, on_shutdown_timeout,
                       s->cfg.shutdown_timeout_ms, 0);
        uv_unref((uv_handle_t *)&s->shutdown_timer);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    morphd_server_t *s = h->data;
    morphd_log(MORPH_LOG_INFO, "received %s; finishing pending replies and "
               "exiting", signum == SIGINT ? "SIGINT" : "SIGTERM");
    morphd_server_stop(s);
}

int morphd_server_run(morphd_server_t *s)
{
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_timer_init(&s->loop, &s->shutdown_timer);
    s->sigint.data = s->sigterm.data = s->shutdown_timer.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    s->signals_on = true;
    if (s->stopping) /* stopped before running */
        close_server_handles(s);
    else
        morphd_notify_ready();
    int rc = uv_run(&s->loop, UV_RUN_DEFAULT);
    (void)rc;
    return 0;
}

void morphd_server_free(morphd_server_t *s)
{
    for (size_t i = 0; i < s->n_services; i++) {
        morphd_chain_destroy(s->services[i].chain);
        free(s->services[i].listeners);
    }
    free(s->services);
    for (size_t i = 0; i < s->n_plugins; i++) {
        morphd_plugin_unload(s->plugins[i]);
        free(s->plugins[i]);
    }
    free(s->plugins);
    morphd_scratch_free(&s->ctx.scratch);
    morphd_buf_free(&s->ctx.reply);
    free(s->ctx.read_buf);
    free(s->plugin_dir);
    if (s->ctx.loop != NULL) {
        uv_run(&s->loop, UV_RUN_NOWAIT); /* finish any pending closes */
        if (uv_loop_close(&s->loop) != 0)
            morphd_log(MORPH_LOG_WARN, "event loop closed with handles open");
    }
    morphd_config_free(&s->cfg);
    memset(s, 0, sizeof *s);
}
