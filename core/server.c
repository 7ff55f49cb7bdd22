/*
 * server.c -- start-up, reload and shutdown of morphd (server.h). Plugins
 * are loaded once per file even when several services use them; each
 * service gets its own instances with its own options. A reload builds the
 * new services completely before touching the running ones, so a bad
 * configuration changes nothing.
 */
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
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

static char *plugin_dir_for(const morphd_config_t *cfg, const char *fallback)
{
    return cfg->plugin_dir ? resolve_dir(cfg->plugin_dir, cfg->path)
                           : strdup(fallback);
}

/* The loaded plugin `name` from `dir`, loading it -- again, when its file
 * was replaced since -- as needed. */
static morphd_plugin_t *find_or_load(morphd_server_t *s, const char *dir,
                                     const char *name, char *err,
                                     size_t err_size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    unsigned variants = 0;
    for (size_t i = s->n_plugins; i-- > 0;) {
        morphd_plugin_t *p = s->plugins[i];
        if (strcmp(p->name, name) != 0)
            continue;
        variants++;
        if (strcmp(p->path, path) == 0 && variants == 1 &&
            !morphd_plugin_file_changed(p))
            return p;
    }
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
    if (morphd_plugin_load_variant(dir, name, variants, p, err, err_size) !=
        0) {
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

/* Builds one service of `gen` (chain and listener slots, nothing bound).
 * Returns NULL after adding errors. */
static morphd_service_t *make_service(morphd_server_t *s,
                                      morphd_generation_t *gen,
                                      const char *plugin_dir,
                                      const morphd_service_conf_t *conf,
                                      morphd_errors_t *errs)
{
    const char *file = gen->cfg.path;
    char err[768];
    morphd_service_t *svc = calloc(1, sizeof *svc);
    morphd_plugin_t **plugins = calloc(conf->n_chain, sizeof *plugins);
    if (svc == NULL || plugins == NULL) {
        free(svc);
        free(plugins);
        morphd_errors_add(errs, "out of memory");
        return NULL;
    }
    svc->conf = conf;
    svc->ctx = &s->ctx;
    svc->owner = s;
    svc->gen = gen;
    svc->refs = 1; /* part of the current configuration */
    gen->refs++;
    svc->stats_head = &s->stats;
    svc->stats = morphd_stats_get(&s->stats, conf->name);
    svc->all = &s->all_services;
    svc->next = s->all_services;
    if (s->all_services)
        s->all_services->prev = svc;
    s->all_services = svc;

    bool ok = svc->stats != NULL;
    if (!ok)
        morphd_errors_add(errs, "out of memory");
    for (size_t i = 0; svc->stats != NULL && i < conf->n_chain; i++) {
        plugins[i] = find_or_load(s, plugin_dir, conf->chain[i], err,
                                  sizeof err);
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
                                  sizeof err) != 0) {
        morphd_errors_add(errs, "%s:%d: service '%s': %s", file,
                          conf->transform_line, conf->name, err);
        ok = false;
    }
    free(plugins);

    svc->listeners = calloc(conf->n_listen, sizeof *svc->listeners);
    if (svc->listeners == NULL) {
        morphd_errors_add(errs, "out of memory");
        ok = false;
    }
    if (!ok) {
        morphd_service_destroy(svc);
        return NULL;
    }
    svc->n_listeners = conf->n_listen;
    for (size_t i = 0; i < conf->n_listen; i++) {
        morphd_listener_t *l = &svc->listeners[i];
        l->frontend = morphd_frontend_for(conf->listen[i].transport);
        l->service = svc;
        l->endpoint = conf->listen[i];
    }
    return svc;
}

/* Drops services that were never opened (a failed start or reload). */
static void discard_services(morphd_service_t **svcs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        svcs[i]->retired = true;
        morphd_service_unref(svcs[i]);
    }
    free(svcs);
}

/* Makes a generation of `cfg` (taken) and its services. */
static int make_generation(morphd_server_t *s, morphd_config_t *cfg,
                           morphd_generation_t **gen_out, char **dir_out,
                           morphd_service_t ***svcs_out, morphd_errors_t *errs)
{
    size_t errors_before = errs->n;
    morphd_generation_t *gen = calloc(1, sizeof *gen);
    if (gen == NULL) {
        morphd_config_free(cfg);
        morphd_errors_add(errs, "out of memory");
        return -1;
    }
    gen->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    gen->refs = 1; /* ours while building: a failed service must not free it */
    char *dir = plugin_dir_for(&gen->cfg, s->default_plugin_dir);
    morphd_service_t **svcs = calloc(gen->cfg.n_services + 1, sizeof *svcs);
    size_t n = 0;
    if (dir == NULL || svcs == NULL)
        morphd_errors_add(errs, "out of memory");
    else
        for (size_t i = 0; i < gen->cfg.n_services; i++) {
            morphd_service_t *svc = make_service(s, gen, dir,
                                                 &gen->cfg.services[i], errs);
            if (svc != NULL)
                svcs[n++] = svc;
        }
    bool failed = errs->n != errors_before;
    if (failed) {
        free(dir);
        for (size_t i = 0; i < n; i++) {
            svcs[i]->retired = true;
            morphd_service_unref(svcs[i]);
        }
        free(svcs);
    }
    if (--gen->refs == 0) { /* no service holds it */
        morphd_config_free(&gen->cfg);
        free(gen);
    }
    if (failed)
        return -1;
    *gen_out = gen;
    *dir_out = dir;
    *svcs_out = svcs;
    return 0;
}

int morphd_server_init(morphd_server_t *s, morphd_config_t *cfg,
                       const char *plugin_dir, morphd_errors_t *errs)
{
    memset(s, 0, sizeof *s);
    s->default_plugin_dir = plugin_dir;
    int rc = uv_loop_init(&s->loop);
    if (rc != 0) {
        morphd_config_free(cfg);
        morphd_errors_add(errs, "cannot create the event loop: %s",
                          uv_strerror(rc));
        return -1;
    }
    s->ctx.loop = &s->loop;
    s->ctx.read_buf_size = MORPHD_READ_BUF_SIZE;
    s->ctx.read_buf = malloc(s->ctx.read_buf_size);
    if (s->ctx.read_buf == NULL) {
        morphd_config_free(cfg);
        morphd_errors_add(errs, "out of memory");
        return -1;
    }
    morphd_generation_t *gen;
    if (make_generation(s, cfg, &gen, &s->plugin_dir, &s->services, errs) != 0)
        return -1;
    s->gen = gen;
    s->n_services = gen->cfg.n_services;
    return 0;
}

const morphd_frontend_t *morphd_frontend_for(morphd_transport_t t)
{
    return t == MORPHD_TCP ? &morphd_frontend_tcp : &morphd_frontend_udp;
}

static void on_handle_closed_noop(uv_handle_t *h) { (void)h; }

static void close_server_handles(morphd_server_t *s)
{
    morphd_admin_close(s->admin);
    s->admin = NULL;
    if (s->signals_on) {
        s->signals_on = false;
        uv_close((uv_handle_t *)&s->sigint, on_handle_closed_noop);
        uv_close((uv_handle_t *)&s->sigterm, on_handle_closed_noop);
        uv_close((uv_handle_t *)&s->sighup, on_handle_closed_noop);
        uv_close((uv_handle_t *)&s->sigusr1, on_handle_closed_noop);
        uv_close((uv_handle_t *)&s->shutdown_timer, on_handle_closed_noop);
    }
}

void morphd_listener_closed(morphd_listener_t *l)
{
    morphd_service_t *svc = l->service;
    morphd_server_t *s = svc->owner;
    morphd_log(MORPH_LOG_INFO, "service %s: closed %s", svc->conf->name,
               l->bound);
    s->n_open_listeners--;
    morphd_service_unref(svc); /* may free l: last use above */
    if (s->n_open_listeners == 0 && s->stopping)
        close_server_handles(s);
}

/* Calls fn on every open listener of the current services. */
static void for_each_listener(morphd_server_t *s,
                              void (*fn)(morphd_listener_t *))
{
    for (size_t i = 0; i < s->n_services; i++)
        for (size_t j = 0; j < s->services[i]->n_listeners; j++)
            if (s->services[i]->listeners[j].impl != NULL)
                fn(&s->services[i]->listeners[j]);
}

/* Calls fn on every listener still alive, retired ones included (closed
 * by a reload, still serving the connections they accepted). fn may free
 * a service, so the next one is read first. */
static void for_every_listener(morphd_server_t *s,
                               void (*fn)(morphd_listener_t *))
{
    for (morphd_service_t *svc = s->all_services, *next; svc; svc = next) {
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

static int open_listener(morphd_server_t *s, morphd_listener_t *l,
                         morphd_errors_t *errs)
{
    char err[256];
    const morphd_service_conf_t *conf = l->service->conf;
    if (l->frontend->open(l, err, sizeof err) != 0) {
        morphd_errors_add(errs, "%s:%d: service '%s': %s",
                          l->service->gen->cfg.path, conf->listen_line,
                          conf->name, err);
        return -1;
    }
    s->n_open_listeners++;
    morphd_service_ref(l->service);
    morphd_log(MORPH_LOG_INFO, "service %s: listening on %s (%s)", conf->name,
               l->bound, listener_kind(l));
    return 0;
}

int morphd_server_listen(morphd_server_t *s, morphd_errors_t *errs)
{
    if (s->gen->cfg.admin_socket != NULL) {
        char err[512];
        s->admin = morphd_admin_open(&s->loop, s->gen->cfg.admin_socket,
                                     &s->stats, err, sizeof err);
        if (s->admin == NULL) {
            morphd_errors_add(errs, "%s: admin_socket: %s", s->gen->cfg.path,
                              err);
            return -1;
        }
        morphd_log(MORPH_LOG_INFO, "admin endpoint on %s",
                   s->gen->cfg.admin_socket);
    }
    for (size_t i = 0; i < s->n_services; i++) {
        morphd_service_t *svc = s->services[i];
        for (size_t j = 0; j < svc->n_listeners; j++)
            if (open_listener(s, &svc->listeners[j], errs) != 0) {
                /* undo: close what opened and let the loop finish it */
                morphd_admin_close(s->admin);
                s->admin = NULL;
                for_each_listener(s, abort_listener);
                uv_run(&s->loop, UV_RUN_DEFAULT);
                return -1;
            }
    }
    return 0;
}

/* The open listener of the running services that `l` takes over: same
 * transport and configured endpoint, not claimed by another new listener.
 * A port-0 endpoint means "any free port", so it is only taken over by the
 * same service. */
static morphd_listener_t *find_running(morphd_server_t *s,
                                       const morphd_listener_t *l,
                                       morphd_listener_t *const *claimed,
                                       size_t n_claimed)
{
    bool any_port = morphd_endpoint_port(&l->endpoint) == 0;
    for (size_t i = 0; i < s->n_services; i++)
        for (size_t j = 0; j < s->services[i]->n_listeners; j++) {
            morphd_listener_t *old = &s->services[i]->listeners[j];
            if (old->impl == NULL ||
                old->endpoint.transport != l->endpoint.transport ||
                strcmp(old->endpoint.text, l->endpoint.text) != 0 ||
                (any_port && strcmp(old->service->conf->name,
                                    l->service->conf->name) != 0))
                continue;
            bool taken = false;
            for (size_t k = 0; k < n_claimed && !taken; k++)
                taken = claimed[k] == old;
            if (!taken)
                return old;
        }
    return NULL;
}

int morphd_server_reload(morphd_server_t *s, morphd_config_t *cfg,
                         morphd_errors_t *errs)
{
    morphd_generation_t *gen;
    char *dir;
    morphd_service_t **svcs;
    if (make_generation(s, cfg, &gen, &dir, &svcs, errs) != 0)
        return -1;
    size_t n = gen->cfg.n_services;

    /* 1. Pair each new listener with the running one it takes over. */
    size_t n_new = 0;
    for (size_t i = 0; i < n; i++)
        n_new += svcs[i]->n_listeners;
    morphd_listener_t **from = calloc(n_new + 1, sizeof *from);
    if (from == NULL) {
        morphd_errors_add(errs, "out of memory");
        discard_services(svcs, n);
        free(dir);
        return -1;
    }
    for (size_t i = 0, k = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_listeners; j++, k++)
            from[k] = find_running(s, &svcs[i]->listeners[j], from, k);

    /* 2. Open the endpoints that are new. Any failure undoes them all. */
    for (size_t i = 0, k = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_listeners; j++, k++) {
            if (from[k] != NULL ||
                open_listener(s, &svcs[i]->listeners[j], errs) == 0)
                continue;
            for (size_t a = 0; a <= i; a++)
                for (size_t b = 0; b < svcs[a]->n_listeners; b++)
                    if (svcs[a]->listeners[b].impl != NULL)
                        abort_listener(&svcs[a]->listeners[b]);
            discard_services(svcs, n); /* freed as their listeners close */
            free(from);
            free(dir);
            return -1;
        }

    /* 3. Hand the others over, socket and all: nothing queued is lost. */
    for (size_t i = 0, k = 0; i < n; i++)
        for (size_t j = 0; j < svcs[i]->n_listeners; j++, k++) {
            morphd_listener_t *l = &svcs[i]->listeners[j], *old = from[k];
            if (old == NULL)
                continue;
            l->impl = old->impl;
            old->impl = NULL;
            memcpy(l->bound, old->bound, sizeof l->bound);
            l->frontend->rebind(l);
            morphd_service_ref(l->service);
            morphd_service_unref(old->service);
        }
    free(from);

    /* 4. Close what is no longer configured; retire the old services
     * (their TCP connections keep them until they end). */
    for_each_listener(s, close_listener);
    for (size_t i = 0; i < s->n_services; i++) {
        morphd_service_t *old = s->services[i];
        old->retired = true;
        morphd_service_unref(old);
    }
    free(s->services);
    free(s->plugin_dir);
    s->services = svcs;
    s->n_services = n;
    s->gen = gen;
    s->plugin_dir = dir;
    s->reloads++;
    return 0;
}

int morphd_server_read_config(const morphd_server_t *s, morphd_config_t *cfg,
                              morphd_errors_t *errs)
{
    int rc = s->config_path
                 ? morphd_config_load_file(s->config_path, cfg, errs)
                 : morphd_config_load_string(morphd_default_config,
                                             "(built-in default)", cfg, errs);
    for (size_t i = 0; rc == 0 && i < s->n_overrides; i++)
        rc = morphd_config_override(cfg, s->overrides[i], errs);
    if (rc != 0)
        morphd_config_free(cfg);
    return rc;
}

int morphd_server_reload_from_source(morphd_server_t *s)
{
    if (s->stopping)
        return -1;
    morphd_notify_reloading();
    const char *name = s->config_path ? s->config_path : "(built-in default)";
    morphd_log(MORPH_LOG_INFO, "reloading the configuration from %s", name);
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    morphd_config_t cfg;
    int rc = morphd_server_read_config(s, &cfg, &errs);
    if (rc == 0)
        rc = morphd_server_reload(s, &cfg, &errs);
    if (rc == 0) {
        morphd_log_set_level(s->gen->cfg.log_level);
        morphd_log_use_syslog(s->gen->cfg.log_syslog);
        morphd_log(MORPH_LOG_INFO, "configuration reloaded from %s: %zu "
                   "service%s", name, s->n_services,
                   s->n_services == 1 ? "" : "s");
    } else {
        for (size_t i = 0; i < errs.n; i++)
            morphd_log(MORPH_LOG_ERROR, "%s", errs.msgs[i]);
        morphd_log(MORPH_LOG_ERROR, "reload failed (%zu error%s); still "
                   "serving the previous configuration", errs.n,
                   errs.n == 1 ? "" : "s");
    }
    morphd_errors_free(&errs);
    morphd_notify_ready();
    return rc;
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    morphd_server_t *s = t->data;
    morphd_log(MORPH_LOG_WARN, "shutdown timeout: closing connections with "
               "unsent replies");
    for_every_listener(s, abort_listener);
}

void morphd_server_stop(morphd_server_t *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    morphd_notify_stopping();
    for_each_listener(s, close_listener);
    for_every_listener(s, drain_listener);
    if (s->n_open_listeners == 0) {
        close_server_handles(s);
        return;
    }
    if (s->signals_on) {
        uv_timer_start(&s->shutdown_timer, on_shutdown_timeout,
                       s->gen->cfg.shutdown_timeout_ms, 0);
        uv_unref((uv_handle_t *)&s->shutdown_timer);
    }
}

/* SIGUSR1: every service's counters, one log line each. */
static void log_stats(morphd_server_t *s)
{
    char table[16384];
    morphd_stats_format(s->stats, false, table, sizeof table);
    morphd_log(MORPH_LOG_INFO, "stats (SIGUSR1):");
    for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n"))
        morphd_log(MORPH_LOG_INFO, "  %s", line);
}

static void on_signal(uv_signal_t *h, int signum)
{
    morphd_server_t *s = h->data;
    if (signum == SIGHUP) {
        morphd_server_reload_from_source(s);
        return;
    }
    if (signum == SIGUSR1) {
        log_stats(s);
        return;
    }
    morphd_log(MORPH_LOG_INFO, "received %s; finishing pending replies and "
               "exiting", signum == SIGINT ? "SIGINT" : "SIGTERM");
    morphd_server_stop(s);
}

int morphd_server_run(morphd_server_t *s)
{
    uv_signal_init(&s->loop, &s->sigint);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sighup);
    uv_signal_init(&s->loop, &s->sigusr1);
    uv_timer_init(&s->loop, &s->shutdown_timer);
    s->sigint.data = s->sigterm.data = s->sighup.data = s->sigusr1.data = s;
    s->shutdown_timer.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sighup, on_signal, SIGHUP);
    uv_signal_start(&s->sigusr1, on_signal, SIGUSR1);
    s->signals_on = true;
    if (s->stopping) { /* stopped before running */
        close_server_handles(s);
    } else {
        /* only now: a SIGHUP before the handlers are in place would kill */
        morphd_log(MORPH_LOG_INFO, "morphd %s started (pid %d)", MORPH_VERSION,
                   (int)getpid());
        morphd_notify_ready();
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return 0;
}

void morphd_server_free(morphd_server_t *s)
{
    if (s->ctx.loop != NULL)
        uv_run(&s->loop, UV_RUN_NOWAIT); /* finish any pending closes */
    for (size_t i = 0; i < s->n_services; i++) {
        morphd_service_t *svc = s->services[i];
        if (svc->refs == 1) {
            svc->retired = true;
            morphd_service_unref(svc);
        } else {
            morphd_log(MORPH_LOG_WARN, "service %s still in use at exit",
                       svc->conf->name);
            morphd_service_destroy(svc);
        }
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
    if (s->ctx.loop != NULL && uv_loop_close(&s->loop) != 0)
        morphd_log(MORPH_LOG_WARN, "event loop closed with handles open");
    memset(s, 0, sizeof *s);
}
