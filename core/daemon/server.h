/*
 * server.h -- morphd as a whole: reads the configuration, loads plugins,
 * builds every worker's sites, and drives the workers (worker.h) through
 * start-up, SIGHUP reloads that lose nothing, and graceful shutdown on
 * SIGINT/SIGTERM. Runs on the main thread, whose loop is worker 0's.
 *
 * Errors in this layer (daemon/): starting and reloading are checks of a
 * configuration, and collect every problem in a morphd_errors_t (0 or
 * -1); the process ends with one of MORPH_EXIT_* (base/exit_codes.h);
 * what runs in a signal handler (the crash line, the watchdog) writes a
 * morphd_signal_line_t (base/log.h) and ends the process.
 */
#ifndef MORPHD_SERVER_H
#define MORPHD_SERVER_H

#include <stdbool.h>
#include <uv.h>

#include "conf/config.h"
#include "base/errors.h"
#include "daemon/metrics_http.h"
#include "engine/plugin_loader.h"
#include "net/service.h"
#include "daemon/worker.h"

/* One loaded configuration. Services point into it, so it lives until
 * the last service made from it is gone -- after a reload, that is when
 * the last connection accepted under it has closed. */
typedef struct morphd_generation {
    morphd_config_t cfg;
    size_t refs; /* services alive, and the builder's while building */
    morphd_tls_ctx_t **tls; /* per service: tls:// endpoints' context */
} morphd_generation_t;

/* A configuration built for every worker and not yet running: per worker,
 * one site per service, nothing bound. */
typedef struct morphd_build {
    morphd_generation_t *gen;
    char *plugin_dir;
    morphd_worker_service_t ***sites; /* [n_workers][n_services] */
    size_t n_services;
} morphd_build_t;

typedef struct morphd_server {
    /* where the configuration comes from, for reloads */
    const char *config_path; /* NULL: the built-in default */
    const char *const *overrides; /* --set, applied after each load */
    size_t n_overrides;
    const char *default_plugin_dir;

    morphd_generation_t *gen; /* the current (or, before start, pending) */
    char *plugin_dir;
    morphd_worker_t *workers;
    unsigned n_workers;
    morphd_build_t pending; /* built by init, started by listen */

    /* worker 0's services: what -t and the tests look at */
    morphd_service_t **services;
    size_t n_services;

    morphd_plugin_t **plugins; /* every plugin file ever loaded */
    size_t n_plugins;
    morphd_stats_t *stats; /* the counters of every service, by name */
    morphd_stats_t **stats_head; /* &stats, or the shared registry's */
    struct morphd_admin *admin;
    struct morphd_metrics_http *metrics; /* metrics_listen */
    morphd_server_counters_t counters;   /* what /metrics adds */
    struct morphd_access_log *access_log; /* access_log, once listening */
    unsigned shutdown_timeout_ms;
    unsigned plugin_timeout_ms;          /* read by the watchdog */
    struct morphd_watchdog *watchdog;

    uv_signal_t sighup, sigusr1;
    uv_timer_t heartbeat; /* worker processes: morphd_server_be_worker_process */
    /* SIGTERM and SIGINT: a handler of morphd's own (never restored to the
     * default, which would kill) wakes the main loop through this */
    uv_async_t stop_async;
    bool signals_on;
    bool started;
    bool stopping;
    bool retiring; /* morphd_server_retire */
} morphd_server_t;

/* In a worker process of isolation = process, before morphd_server_init:
 * the server runs one loop, as worker `slot` of `n_slots` (its share of
 * the plugin metrics and gauges), on the shared counters at *stats_head,
 * and stores the monotonic time in ms (uv_hrtime) into the shared
 * *heartbeat_ms each time its loop turns a timer, for the main process to
 * see that it runs. */
void morphd_server_be_worker_process(unsigned slot, unsigned n_slots,
                                     morphd_stats_t **stats_head,
                                     uint64_t *heartbeat_ms);

/* Takes ownership of `cfg`; loads plugins from `plugin_dir` (the config's
 * own plugin_dir wins when set) and builds every worker's services. Binds
 * nothing. Returns 0, or -1 with "FILE:LINE: ..." errors in errs; the
 * server must be freed either way. */
int morphd_server_init(morphd_server_t *s, morphd_config_t *cfg,
                       const char *plugin_dir, morphd_errors_t *errs);

/* Opens the admin socket and every listener of every worker, starting the
 * worker threads. On any failure closes what opened and returns -1. */
int morphd_server_listen(morphd_server_t *s, morphd_errors_t *errs);

/* Replaces the running configuration with `cfg` (taken): new plugins are
 * loaded, listeners for new endpoints opened, listeners whose endpoint is
 * still configured handed over without closing their socket, the others
 * closed. TCP connections already accepted keep the configuration they
 * were accepted under. On any error nothing changes: returns -1 with the
 * errors and the old configuration goes on serving. */
int morphd_server_reload(morphd_server_t *s, morphd_config_t *cfg,
                         morphd_errors_t *errs);

/* Re-reads config_path (or the built-in default) with the overrides and
 * reloads, logging the outcome. What SIGHUP does. */
int morphd_server_reload_from_source(morphd_server_t *s);

/* Runs until shut down by SIGINT/SIGTERM (or morphd_server_stop), then
 * waits for the worker threads. */
int morphd_server_run(morphd_server_t *s);

/* Begins a graceful stop: no new clients; pending replies are written for
 * up to shutdown_timeout, then remaining connections are closed. */
void morphd_server_stop(morphd_server_t *s);

/* A worker process a reload replaced (SIGUSR2): no new clients, and the
 * run ends once every connection has. A later stop drains them. */
void morphd_server_retire(morphd_server_t *s);

void morphd_server_free(morphd_server_t *s);

#endif
