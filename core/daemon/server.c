/*
 * server.c -- start-up, reload and shutdown of morphd (server.h). Plugins
 * are loaded once per file even when several services use them; each
 * service, in each worker, gets its own instances with its own options. A
 * reload builds the new services completely, then has every worker open
 * its new endpoints, and only when all succeeded hands the endpoints over
 * (commit); otherwise every worker undoes its part (abort) and the old
 * configuration goes on serving.
 */
#include "daemon/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/access_log.h"
#include "base/safe_path.h"
#include "daemon/activation.h"
#include "daemon/admin.h"
#include "daemon/watchdog.h"
#include "base/log.h"
#include "engine/lua_plugin.h"
#include "daemon/notify.h"
#include "engine/options.h"
#include "base/plugin_path.h"

/* The most a stage may output: enough for any case mapping of a full
 * message (at most 3x in UTF-8) with room to spare. */
static size_t out_limit_for(const morphd_service_conf_t *conf)
{
    size_t base = conf->max_message > MORPHD_READ_BUF_SIZE
                      ? conf->max_message
                      : MORPHD_READ_BUF_SIZE;
    return base * 4;
}

/* The loaded plugin `name` from the search path `dirs`, loading it --
 * again, when its file was replaced since, or another folder now provides
 * it -- as needed. */
/* NULL on error, with *in_script set when the message starts with a
 * script's FILE:LINE rather than naming the plugin. */
static morphd_plugin_t *find_or_load(morphd_server_t *s, const char *dirs,
                                     const char *name, bool *in_script,
                                     char *err, size_t err_size)
{
    *in_script = false;
    char *path = NULL;
    if (morphd_plugin_path_find(dirs, name, &path, err, err_size) != 0)
        return NULL;
    morphd_plugin_t *found = NULL;
    unsigned variants = 0;
    for (size_t i = s->n_plugins; i-- > 0;) {
        morphd_plugin_t *p = s->plugins[i];
        if (strcmp(p->name, name) != 0)
            continue;
        variants++;
        if (strcmp(p->path, path) == 0 && variants == 1 &&
            !morphd_plugin_file_changed(p))
            found = p;
    }
    free(path);
    if (found != NULL)
        return found;
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
    if (morphd_plugin_load_variant(dirs, name, variants, p, in_script, err,
                                   err_size) != 0) {
        free(p);
        return NULL;
    }
    /* the older versions of a script make no new instances: their
     * source can go (a .so stays mapped whatever is done) */
    for (size_t i = 0; p->script != NULL && i < s->n_plugins; i++)
        if (s->plugins[i]->script != NULL &&
            strcmp(s->plugins[i]->name, name) == 0)
            morphd_script_release_source(s->plugins[i]->script);
    s->plugins[s->n_plugins++] = p;
    morphd_log(MORPH_LOG_INFO, "plugin %s %s loaded from %s", p->name,
               p->desc->version ? p->desc->version : "?", p->path);
    return p;
}

static void generation_unref(void *arg)
{
    morphd_generation_t *gen = arg;
    /* services of one generation die on different worker threads */
    if (__atomic_sub_fetch(&gen->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        for (size_t i = 0; gen->tls != NULL && i < gen->cfg.n_services; i++)
            morphd_tls_ctx_free(gen->tls[i]);
        free(gen->tls);
        morphd_config_free(&gen->cfg);
        free(gen);
    }
}

/* Loads the plugins of one service's chain and checks what depends on
 * them (chunk safety, declared options), adding every error found. Returns
 * true when the chain can be created. */
static bool load_chain(morphd_server_t *s, morphd_generation_t *gen,
                       const char *plugin_dir,
                       const morphd_service_conf_t *conf,
                       morphd_plugin_t **plugins, morphd_errors_t *errs)
{
    const char *file = gen->cfg.path;
    char err[768];
    bool ok = true;
    for (size_t i = 0; i < conf->n_chain; i++) {
        bool in_script;
        plugins[i] = find_or_load(s, plugin_dir, conf->chain[i], &in_script,
                                  err, sizeof err);
        if (plugins[i] == NULL && in_script) /* the script's line first */
            morphd_errors_add(errs, "%s (plugin '%s' of service '%s', %s:%d)",
                              err, conf->chain[i], conf->name, file,
                              conf->transform_line);
        else if (plugins[i] == NULL)
            morphd_errors_add(errs, "%s:%d: %s", file, conf->transform_line,
                              err);
        if (plugins[i] == NULL)
            ok = false;
    }
    if (!ok)
        return false;
    if (conf->framing_plugin != NULL) { /* framing = NAME: a codec plugin */
        int line = conf->framing_line ? conf->framing_line : conf->line;
        bool in_script;
        morphd_plugin_t *p = find_or_load(s, plugin_dir, conf->framing_plugin,
                                          &in_script, err, sizeof err);
        if (p == NULL)
            morphd_errors_add(errs, "%s:%d: service '%s': framing = %s is "
                              "not a built-in framing (%s), so it names a "
                              "codec plugin, and %s", file, line, conf->name,
                              conf->framing_plugin,
                              morphd_codec_builtin_names, err);
        else if (p->codec == NULL)
            morphd_errors_add(errs, "%s:%d: service '%s': plugin '%s' is not "
                              "a codec (its descriptor has no `codec`), so "
                              "it cannot be a framing", file, line,
                              conf->name, p->name);
        else if (morphd_options_check(p, &conf->opts, file, "--set", errs) > 0)
            p = NULL;
        if (p == NULL || p->codec == NULL)
            return false;
        plugins[conf->n_chain] = p;
    }
    for (size_t i = 0; i < conf->n_chain; i++)
        if (plugins[i]->desc->transform == NULL) {
            morphd_errors_add(errs, "%s:%d: service '%s': plugin '%s' is a "
                              "codec, not a transform: use it as framing = "
                              "%s", file, conf->transform_line, conf->name,
                              plugins[i]->name, plugins[i]->name);
            ok = false;
        }
    if (!ok)
        return false;
    if (conf->codec.chunks && (morphd_service_conf_has_framed(conf) ||
                               morphd_service_conf_streams_http(conf))) {
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
    for (size_t i = 0; i < conf->n_chain; i++) {
        bool seen = false; /* a plugin named twice is checked once */
        for (size_t j = 0; j < i; j++)
            seen |= plugins[j] == plugins[i];
        if (!seen && morphd_options_check(plugins[i], &conf->opts, file,
                                          "--set", errs) > 0)
            ok = false;
    }
    return ok;
}

/* Builds one service of `gen` for worker `w`: chain created on that
 * worker's env. Returns NULL after adding errors. */
static morphd_service_t *make_service(morphd_server_t *s,
                                      morphd_generation_t *gen,
                                      morphd_plugin_t **plugins, unsigned w,
                                      const morphd_service_conf_t *conf,
                                      morphd_errors_t *errs)
{
    char err[768];
    morphd_service_t *svc = calloc(1, sizeof *svc);
    if (svc == NULL) {
        morphd_errors_add(errs, "out of memory");
        return NULL;
    }
    svc->conf = conf;
    svc->tls = gen->tls[conf - gen->cfg.services];
    svc->file = gen->cfg.path;
    svc->refs = 1; /* part of the current configuration */
    __atomic_add_fetch(&gen->refs, 1, __ATOMIC_ACQ_REL);
    svc->on_destroy = generation_unref;
    svc->on_destroy_arg = gen;
    svc->stats_head = s->stats_head;
    svc->access_log = &s->access_log;
    svc->access_log_udp = gen->cfg.access_log_udp;
    const morphd_chain_env_t *env = &s->workers[w].env;
    svc->stats = morphd_stats_get(s->stats_head, conf->name, env->n_workers);
    if (svc->stats != NULL)
        svc->counts = morphd_stats_lane(svc->stats, env->worker);
    if (svc->stats == NULL || svc->counts == NULL) {
        morphd_errors_add(errs, "out of memory");
        morphd_service_destroy(svc);
        return NULL;
    }
    if (morphd_chain_create(plugins, conf->n_chain, plugins[conf->n_chain],
                            &conf->opts, conf->name,
                            s->stats_head, &s->workers[w].env, out_limit_for(conf),
                            &svc->chain, err, sizeof err) != 0) {
        morphd_errors_add(errs, "%s:%d: service '%s': %s", gen->cfg.path,
                          conf->transform_line, conf->name, err);
        morphd_service_destroy(svc);
        return NULL;
    }
    /* http:// endpoints' */
    morphd_codec_http_init(&svc->http_codec, conf->max_message,
                           conf->http_max_header_size, &svc->http_scratch,
                           &svc->http_exchange,
                           (morphd_http_origins_t){conf->http_allow_origin,
                                                   conf->n_http_allow_origin});
    morphd_codec_ws_init(&svc->ws_codec, conf->max_message, &svc->http_scratch);
    if (morphd_service_conf_streams_http(conf)) /* bodies as they arrive */
        morphd_codec_http_stream(&svc->http_codec);
    svc->codec = conf->codec; /* this worker's: a codec plugin's instance */
    if (svc->chain->codec != NULL)
        morphd_chain_codec_bind(svc->chain, &svc->codec, &svc->codec_scratch);
    return svc;
}

static void discard_build(morphd_server_t *s, morphd_build_t *b)
{
    if (b->sites != NULL) {
        for (unsigned w = 0; w < s->n_workers; w++) {
            if (b->sites[w] == NULL)
                continue;
            for (size_t i = 0; i < b->n_services; i++)
                morphd_worker_service_discard(b->sites[w][i]);
            free(b->sites[w]);
        }
        free(b->sites);
    }
    free(b->plugin_dir);
    memset(b, 0, sizeof *b);
}

/* Makes a generation of `cfg` (taken) and, for every worker, its sites:
 * plugins loaded, chains created, nothing bound. Reports every error it
 * can find in one pass. */
static int make_build(morphd_server_t *s, morphd_config_t *cfg,
                      morphd_build_t *b, morphd_errors_t *errs)
{
    memset(b, 0, sizeof *b);
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
    size_t n = gen->cfg.n_services;
    b->gen = gen;
    b->n_services = n;
    b->plugin_dir = morphd_config_plugin_dir(&gen->cfg, s->default_plugin_dir);
    b->sites = calloc(s->n_workers, sizeof *b->sites);
    morphd_plugin_t ***chains = calloc(n + 1, sizeof *chains);
    if (b->plugin_dir == NULL || b->sites == NULL || chains == NULL)
        morphd_errors_add(errs, "out of memory");
    /* every service's plugins first, so that all load errors come at once */
    bool ok = errs->n == errors_before;
    for (size_t i = 0; ok && i < n; i++) {
        const morphd_service_conf_t *conf = &gen->cfg.services[i];
        chains[i] = calloc(conf->n_chain + 1, sizeof **chains);
        if (chains[i] == NULL)
            morphd_errors_add(errs, "out of memory");
    }
    for (size_t i = 0; errs->n == errors_before && i < n; i++)
        load_chain(s, gen, b->plugin_dir, &gen->cfg.services[i], chains[i],
                   errs);
    /* the TLS contexts: certificates and keys read now, so that -t and a
     * reload find their problems (a reload re-reads them) */
    gen->tls = calloc(n + 1, sizeof *gen->tls);
    if (gen->tls == NULL)
        morphd_errors_add(errs, "out of memory");
    for (size_t i = 0; gen->tls != NULL && i < n; i++)
        if (morphd_service_conf_has_tls(&gen->cfg.services[i]))
            gen->tls[i] = morphd_tls_ctx_new(&gen->cfg.services[i],
                                             gen->cfg.path, errs);
    for (unsigned w = 0; errs->n == errors_before && w < s->n_workers; w++) {
        b->sites[w] = calloc(n + 1, sizeof **b->sites);
        if (b->sites[w] == NULL) {
            morphd_errors_add(errs, "out of memory");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            morphd_service_t *svc = make_service(
                s, gen, chains[i], w, &gen->cfg.services[i], errs);
            if (svc == NULL)
                continue;
            b->sites[w][i] = morphd_worker_service_new(svc);
            if (b->sites[w][i] == NULL) {
                morphd_errors_add(errs, "out of memory");
                svc->retired = true;
                morphd_service_unref(svc);
            }
        }
    }
    for (size_t i = 0; chains != NULL && i < n; i++)
        free(chains[i]);
    free(chains);
    bool failed = errs->n != errors_before;
    if (failed)
        discard_build(s, b);
    generation_unref(gen); /* the services hold it now, if any */
    if (failed)
        return -1;
    b->gen = gen;
    return 0;
}

/* Set in a worker process before morphd_server_init (server.h). */
static struct {
    bool on;
    unsigned slot, n_slots;
    morphd_stats_t **stats_head;
    uint64_t *heartbeat_ms;
} worker_process;

void morphd_server_be_worker_process(unsigned slot, unsigned n_slots,
                                     morphd_stats_t **stats_head,
                                     uint64_t *heartbeat_ms)
{
    worker_process.on = true;
    worker_process.slot = slot;
    worker_process.n_slots = n_slots;
    worker_process.stats_head = stats_head;
    worker_process.heartbeat_ms = heartbeat_ms;
}

#define HEARTBEAT_MS 100

static void on_heartbeat(uv_timer_t *t)
{
    (void)t;
    __atomic_store_n(worker_process.heartbeat_ms, uv_hrtime() / 1000000u,
                     __ATOMIC_RELAXED);
}

int morphd_server_init(morphd_server_t *s, morphd_config_t *cfg,
                       const char *plugin_dir, morphd_errors_t *errs)
{
    memset(s, 0, sizeof *s);
    s->default_plugin_dir = plugin_dir;
    s->stats_head = &s->stats;
    s->n_workers = cfg->workers ? cfg->workers : uv_available_parallelism();
    unsigned base = 0, n_slots = s->n_workers;
    if (worker_process.on) { /* one loop, as slot `slot` of all of them */
        s->n_workers = 1;
        base = worker_process.slot;
        n_slots = worker_process.n_slots;
        s->stats_head = worker_process.stats_head;
    }
    s->workers = calloc(s->n_workers, sizeof *s->workers);
    if (s->workers == NULL) {
        morphd_config_free(cfg);
        morphd_errors_add(errs, "out of memory");
        return -1;
    }
    for (unsigned w = 0; w < s->n_workers; w++) {
        int rc = morphd_worker_init(&s->workers[w], base + w, n_slots);
        if (rc != 0) {
            morphd_config_free(cfg);
            morphd_errors_add(errs, "cannot create event loop %u: %s", w,
                              uv_strerror(rc));
            return -1;
        }
        s->workers[w].reuseport = s->n_workers > 1;
    }
    if (make_build(s, cfg, &s->pending, errs) != 0)
        return -1;
    s->gen = s->pending.gen;
    s->services = calloc(s->pending.n_services + 1, sizeof *s->services);
    if (s->services == NULL) {
        morphd_errors_add(errs, "out of memory");
        return -1;
    }
    s->n_services = s->pending.n_services;
    for (size_t i = 0; i < s->n_services; i++)
        s->services[i] = s->pending.sites[0][i]->svc;
    return 0;
}

/* Workers after the first bind an endpoint configured with port 0 to the
 * port the first one got, so that they share it; they listen on the first
 * one's unix:// socket, and on a socket systemd passed it. */
static void share_ports(morphd_worker_service_t **first, morphd_worker_service_t **other,
                        size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < first[i]->n_listeners; j++) {
            morphd_listener_t *a = &first[i]->listeners[j];
            morphd_listener_t *b = &other[i]->listeners[j];
            const morphd_listener_t *bound = a->impl ? a : a->from;
            if (bound != NULL && (a->endpoint.transport == MORPHD_UNIX ||
                                  bound->adopted))
                b->share = bound;
            else if (bound != NULL && morphd_endpoint_port(&a->endpoint) == 0)
                memcpy(&b->endpoint.addr, &bound->bound_addr,
                       sizeof b->endpoint.addr);
        }
}

/* Runs a build's OPEN on every worker, then COMMIT on all, or ABORT on
 * those that opened when one fails. Takes the build's sites. */
static int switch_to(morphd_server_t *s, morphd_build_t *b,
                     morphd_errors_t *errs)
{
    size_t n = b->n_services;
    unsigned opened = 0;
    bool open_failed = false; /* worker `opened` failed and undid its OPEN */
    int rc = 0;
    for (unsigned w = 0; w < s->n_workers && rc == 0; w++) {
        if (w > 0)
            share_ports(b->sites[0], b->sites[w], n);
        if (!s->started && w > 0) {
            int trc = morphd_worker_start_thread(&s->workers[w]);
            if (trc != 0) {
                morphd_errors_add(errs, "cannot start worker thread %u: %s",
                                  w, uv_strerror(trc));
                rc = -1;
                break;
            }
        }
        rc = morphd_worker_call(&s->workers[w], MORPHD_WORKER_OPEN,
                                b->sites[w], n, errs);
        if (rc == 0)
            opened++;
        else
            open_failed = true;
    }
    for (unsigned w = 0; w < s->n_workers; w++) {
        if (rc == 0) {
            /* the worker keeps the array as its list of sites */
            morphd_worker_call(&s->workers[w], MORPHD_WORKER_COMMIT,
                               b->sites[w], n, errs);
        } else if (w < opened) {
            morphd_worker_call(&s->workers[w], MORPHD_WORKER_ABORT,
                               b->sites[w], n, errs);
            free(b->sites[w]); /* the sites go with their listeners */
        } else if (w == opened && open_failed) {
            free(b->sites[w]);
        } else {
            for (size_t i = 0; i < n; i++) /* never reached a worker */
                morphd_worker_service_discard(b->sites[w][i]);
            free(b->sites[w]);
        }
        b->sites[w] = NULL;
    }
    free(b->sites);
    b->sites = NULL;
    return rc;
}

static void on_closed_noop(uv_handle_t *h) { (void)h; }

/* Worker 0 has nothing left open: let the main loop end. */
/* the main loop's stop handle while it is open (NULL after), and the
 * last stop signal, for on_stop_signal */
static uv_async_t *stop_async;
static int stop_signum;

static void on_main_idle(morphd_worker_t *w, void *arg)
{
    (void)w;
    morphd_server_t *s = arg;
    morphd_admin_close(s->admin);
    s->admin = NULL;
    morphd_metrics_http_stop(s->metrics); /* joins its thread */
    s->metrics = NULL;
    if (s->signals_on) {
        s->signals_on = false;
        /* SIGTERM and SIGINT keep morphd's handler, which from now on
         * only notes them: a second one must not kill a morphd that is
         * exiting cleanly */
        __atomic_store_n(&stop_async, NULL, __ATOMIC_RELEASE);
        uv_close((uv_handle_t *)&s->stop_async, on_closed_noop);
        uv_close((uv_handle_t *)&s->sighup, on_closed_noop);
        uv_close((uv_handle_t *)&s->sigusr1, on_closed_noop);
        if (worker_process.heartbeat_ms != NULL)
            uv_close((uv_handle_t *)&s->heartbeat, on_closed_noop);
        /* closing these restored their default actions, which kill */
        signal(worker_process.on ? SIGUSR2 : SIGHUP, SIG_IGN);
        signal(SIGUSR1, SIG_IGN);
    }
}

/* /healthz: every loop turns -- none has been inside one plugin call for
 * HEALTH_STUCK_NS (the watchdog ends such a call at plugin_timeout). */
#define HEALTH_STUCK_NS 1000000000ull

static bool server_healthy(void *arg, char *why, size_t why_size)
{
    morphd_server_t *s = arg;
    morphd_chain_env_t *envs[s->n_workers];
    for (unsigned w = 0; w < s->n_workers; w++)
        envs[w] = &s->workers[w].env;
    uint64_t ns = 0;
    unsigned worker = 0;
    const morphd_stage_t *st =
        morphd_watchdog_longest_call(envs, s->n_workers, &ns, &worker);
    if (st == NULL || ns < HEALTH_STUCK_NS)
        return true;
    snprintf(why, why_size, "worker %u has been in plugin %s of service %s "
             "for %.1f s", worker, st->plugin->name, st->chain->service,
             (double)ns / 1e9);
    return false;
}

/* /readyz: every service listening and every worker running. */
static bool server_ready(void *arg, char *why, size_t why_size)
{
    morphd_server_t *s = arg;
    if (__atomic_load_n(&s->stopping, __ATOMIC_RELAXED)) {
        snprintf(why, why_size, "shutting down");
        return false;
    }
    if (!__atomic_load_n(&s->started, __ATOMIC_ACQUIRE)) {
        snprintf(why, why_size, "starting");
        return false;
    }
    return server_healthy(arg, why, why_size);
}

int morphd_server_listen(morphd_server_t *s, morphd_errors_t *errs)
{
    morphd_worker_t *w0 = &s->workers[0];
    w0->on_idle = on_main_idle;
    w0->on_idle_arg = s;
    if (s->gen->cfg.admin_socket != NULL) {
        char err[512];
        s->admin = morphd_admin_open(&w0->loop, s->gen->cfg.admin_socket,
                                     s->stats_head, err, sizeof err);
        if (s->admin == NULL) {
            morphd_errors_add(errs, "%s: admin_socket: %s", s->gen->cfg.path,
                              err);
            return -1;
        }
        morphd_log(MORPH_LOG_INFO, "admin endpoint on %s",
                   s->gen->cfg.admin_socket);
    }
    s->counters.workers = s->n_workers;
    char why[768];
    if (s->gen->cfg.access_log != NULL &&
        strcmp(s->gen->cfg.access_log, "syslog") != 0 &&
        morphd_path_check_folder(s->gen->cfg.access_log, why, sizeof why) != 0) {
        morphd_errors_add(errs, "%s: access_log: %s", s->gen->cfg.path, why);
        return -1;
    }
    if (s->gen->cfg.access_log != NULL &&
        (s->access_log = morphd_access_log_open(
             s->gen->cfg.access_log, s->gen->cfg.access_log_json)) == NULL) {
        morphd_errors_add(errs, "%s: access_log: out of memory",
                          s->gen->cfg.path);
        return -1;
    }
    s->counters.access_log = s->access_log;
    if (s->gen->cfg.metrics_listen != NULL) {
        char err[512], bound[MORPHD_ENDPOINT_TEXT + 8];
        s->counters.healthy = server_healthy;
        s->counters.ready = server_ready;
        s->counters.health_arg = s;
        s->counters.isolation = "thread";
        s->metrics = morphd_metrics_http_start(
            s->gen->cfg.metrics_listen, s->stats_head, &s->counters, NULL, bound,
            sizeof bound, err, sizeof err);
        if (s->metrics == NULL) {
            morphd_errors_add(errs, "%s: %s", s->gen->cfg.path, err);
            return -1;
        }
        morphd_log(MORPH_LOG_INFO, "metrics on %s/metrics", bound);
        morphd_metrics_http_set_config(s->metrics, &s->gen->cfg);
    }
    s->shutdown_timeout_ms = s->gen->cfg.shutdown_timeout_ms;
    s->plugin_timeout_ms = s->gen->cfg.plugin_timeout_ms;
    free(s->plugin_dir);
    s->plugin_dir = s->pending.plugin_dir;
    s->pending.plugin_dir = NULL;
    int rc = switch_to(s, &s->pending, errs);
    morphd_activation_close_unused(); /* only the first build takes them */
    discard_build(s, &s->pending);
    __atomic_store_n(&s->started, true, __ATOMIC_RELEASE); /* threads run
                                                             from here on */
    if (rc != 0) {
        /* the generation went with its services */
        s->gen = NULL;
        s->n_services = 0;
        morphd_server_stop(s);
        return -1;
    }
    return 0;
}

int morphd_server_reload(morphd_server_t *s, morphd_config_t *cfg,
                         morphd_errors_t *errs)
{
    unsigned want = cfg->workers ? cfg->workers : uv_available_parallelism();
    if (want != s->n_workers)
        morphd_log(MORPH_LOG_WARN, "workers = %u takes effect at the next "
                   "start; still running %u", want, s->n_workers);
    morphd_build_t b;
    if (make_build(s, cfg, &b, errs) != 0)
        return -1;
    morphd_service_t **services = calloc(b.n_services + 1, sizeof *services);
    if (services == NULL) {
        discard_build(s, &b);
        morphd_errors_add(errs, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < b.n_services; i++)
        services[i] = b.sites[0][i]->svc;
    morphd_generation_t *gen = b.gen;
    if (switch_to(s, &b, errs) != 0) {
        free(services);
        discard_build(s, &b);
        return -1;
    }
    size_t n = b.n_services;
    free(s->plugin_dir);
    s->plugin_dir = b.plugin_dir;
    b.plugin_dir = NULL;
    discard_build(s, &b);
    s->gen = gen;
    __atomic_store_n(&s->shutdown_timeout_ms, gen->cfg.shutdown_timeout_ms,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&s->plugin_timeout_ms, gen->cfg.plugin_timeout_ms,
                     __ATOMIC_RELAXED);
    free(s->services);
    s->services = services;
    s->n_services = n;
    __atomic_fetch_add(&s->counters.reloads, 1, __ATOMIC_RELAXED);
    morphd_metrics_http_set_config(s->metrics, &gen->cfg);
    return 0;
}

/* The listeners of the first worker's current services, as bound, for
 * READY=1 (notify.h). The main thread's (a static buffer). */
static const char *listening_text(const morphd_server_t *s)
{
    static char text[16384];
    text[0] = '\0';
    const morphd_worker_t *w = &s->workers[0];
    for (size_t i = 0; i < w->n_sites; i++)
        for (size_t j = 0; j < w->sites[i]->n_listeners; j++)
            morphd_notify_listening_add(text, sizeof text,
                                        w->sites[i]->svc->conf->name,
                                        w->sites[i]->listeners[j].bound);
    return text;
}

int morphd_server_reload_from_source(morphd_server_t *s)
{
    if (s->stopping)
        return -1;
    morphd_notify_reloading();
    if (s->access_log != NULL) /* for logrotate, whatever the reload does */
        morphd_access_log_reopen(s->access_log);
    const char *name = s->config_path ? s->config_path : "(built-in default)";
    morphd_log(MORPH_LOG_INFO, "reloading the configuration from %s", name);
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    morphd_config_t cfg;
    int rc = morphd_config_read(s->config_path, s->overrides, s->n_overrides,
                                &cfg, &errs);
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
        __atomic_fetch_add(&s->counters.reload_failures, 1, __ATOMIC_RELAXED);
        morphd_log(MORPH_LOG_ERROR, "reload failed (%zu error%s); still "
                   "serving the previous configuration", errs.n,
                   errs.n == 1 ? "" : "s");
    }
    morphd_errors_free(&errs);
    morphd_notify_ready(rc == 0 ? MORPHD_READY_RELOADED
                                : MORPHD_READY_RELOAD_FAILED,
                        listening_text(s));
    return rc;
}

void morphd_server_stop(morphd_server_t *s)
{
    if (s->stopping)
        return;
    __atomic_store_n(&s->stopping, true, __ATOMIC_RELAXED);
    morphd_notify_stopping();
    for (unsigned w = s->n_workers; w-- > 0;) {
        s->workers[w].shutdown_timeout_ms = s->shutdown_timeout_ms;
        if (w == 0 || s->workers[w].threaded)
            morphd_worker_call(&s->workers[w], MORPHD_WORKER_STOP, NULL, 0,
                               NULL);
    }
}

void morphd_server_retire(morphd_server_t *s)
{
    if (s->stopping || s->retiring)
        return;
    s->retiring = true;
    morphd_log(MORPH_LOG_INFO, "replaced by a reload: no new clients; "
               "serving the connections open to their end");
    for (unsigned w = s->n_workers; w-- > 0;)
        if (w == 0 || s->workers[w].threaded)
            morphd_worker_call(&s->workers[w], MORPHD_WORKER_RETIRE, NULL, 0,
                               NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    morphd_server_t *s = h->data;
    if (signum == SIGHUP) {
        morphd_server_reload_from_source(s);
        return;
    }
    if (signum == SIGUSR1) {
        morphd_stats_log(*s->stats_head);
        return;
    }
    if (signum == SIGUSR2) { /* a worker process a reload replaced */
        morphd_server_retire(s);
        return;
    }
}

/* SIGTERM, SIGINT: noted for the watchdog (which ends a stop that hangs)
 * and passed to the main loop. Async-signal-safe: uv_async_send is. */
static void on_stop_signal(int sig)
{
    int saved = errno;
    morphd_watchdog_note_stop();
    __atomic_store_n(&stop_signum, sig, __ATOMIC_RELAXED);
    uv_async_t *a = __atomic_load_n(&stop_async, __ATOMIC_ACQUIRE);
    if (a != NULL)
        uv_async_send(a);
    errno = saved;
}

static void on_stop_async(uv_async_t *a)
{
    morphd_server_t *s = a->data;
    int sig = __atomic_load_n(&stop_signum, __ATOMIC_RELAXED);
    if (s->stopping)
        return;
    morphd_log(MORPH_LOG_INFO, "received %s; finishing pending replies and "
               "exiting", sig == SIGINT ? "SIGINT" : "SIGTERM");
    morphd_server_stop(s);
}

int morphd_server_run(morphd_server_t *s)
{
    uv_loop_t *loop = &s->workers[0].loop;
    uv_async_init(loop, &s->stop_async, on_stop_async);
    s->stop_async.data = s;
    __atomic_store_n(&stop_async, &s->stop_async, __ATOMIC_RELEASE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    uv_signal_init(loop, &s->sighup);
    uv_signal_init(loop, &s->sigusr1);
    s->sighup.data = s->sigusr1.data = s;
    if (worker_process.heartbeat_ms != NULL) {
        uv_timer_init(loop, &s->heartbeat);
        on_heartbeat(&s->heartbeat); /* serving from now on */
        uv_timer_start(&s->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
        uv_unref((uv_handle_t *)&s->heartbeat);
    }
    if (!worker_process.on)
        uv_signal_start(&s->sighup, on_signal, SIGHUP);
    else /* no reloads of its own (supervisor.c); SIGUSR2 retires it */
        uv_signal_start(&s->sighup, on_signal, SIGUSR2);
    uv_signal_start(&s->sigusr1, on_signal, SIGUSR1);
    s->signals_on = true;
    morphd_chain_env_t *envs[s->n_workers];
    for (unsigned w = 0; w < s->n_workers; w++)
        envs[w] = &s->workers[w].env;
    s->watchdog = morphd_watchdog_start(envs, s->n_workers,
                                        &s->plugin_timeout_ms,
                                        &s->shutdown_timeout_ms);
    if (s->watchdog == NULL)
        morphd_log(MORPH_LOG_WARN, "no watchdog timer: plugin_timeout and "
                   "the shutdown_timeout limit are not enforced");
    if (s->stopping) { /* stopped before running */
        on_main_idle(&s->workers[0], s);
    } else {
        /* only now: a SIGHUP before the handlers are in place would kill */
        if (worker_process.on) /* the main process says "started" */
            morphd_log(MORPH_LOG_INFO, "worker process serving (pid %d, "
                       "slot %u)", (int)getpid(), worker_process.slot);
        else
            morphd_log(MORPH_LOG_INFO, "morphd %s started (pid %d, %u "
                       "worker%s)", MORPH_VERSION, (int)getpid(),
                       s->n_workers, s->n_workers == 1 ? "" : "s");
        morphd_notify_ready(MORPHD_READY_STARTED, listening_text(s));
    }
    uv_run(loop, UV_RUN_DEFAULT);
    for (unsigned w = 1; w < s->n_workers; w++) /* they drain, then end */
        if (s->workers[w].threaded) {
            uv_thread_join(&s->workers[w].thread);
            s->workers[w].threaded = false;
        }
    return 0;
}

void morphd_server_free(morphd_server_t *s)
{
    if (s->workers != NULL) {
        /* (the watchdog goes last: it is what ends a stop that hangs) */
        /* worker threads end once stopped and drained */
        if (s->started && !s->stopping)
            morphd_server_stop(s);
        if (s->started && !s->workers[0].finished) /* it stops the loop */
            uv_run(&s->workers[0].loop, UV_RUN_DEFAULT);
        for (unsigned w = 1; w < s->n_workers; w++)
            if (s->workers[w].threaded) {
                uv_thread_join(&s->workers[w].thread);
                s->workers[w].threaded = false;
            }
        discard_build(s, &s->pending);
        for (unsigned w = 0; w < s->n_workers; w++)
            morphd_worker_free(&s->workers[w]);
        morphd_access_log_close(s->access_log); /* every loop is done */
        s->access_log = NULL;
        morphd_watchdog_stop(s->watchdog);
        s->watchdog = NULL;
        free(s->workers);
    }
    for (size_t i = 0; i < s->n_plugins; i++) {
        morphd_plugin_unload(s->plugins[i]);
        free(s->plugins[i]);
    }
    free(s->plugins);
    free(s->plugin_dir);
    free(s->services);
    memset(s, 0, sizeof *s);
}
