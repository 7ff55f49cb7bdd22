/*
 * server.h -- the whole daemon on one libuv loop: loads the plugins a
 * configuration names, builds each service's chain, opens its listeners,
 * and shuts down gracefully on SIGINT/SIGTERM.
 */
#ifndef MORPHD_SERVER_H
#define MORPHD_SERVER_H

#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "errors.h"
#include "plugin_loader.h"
#include "service.h"

typedef struct morphd_server {
    uv_loop_t loop;
    morphd_loop_ctx_t ctx;
    morphd_config_t cfg;
    char *plugin_dir;

    morphd_plugin_t **plugins; /* each plugin file loaded once */
    size_t n_plugins;
    morphd_service_t *services;
    size_t n_services;
    size_t n_open_listeners;

    uv_signal_t sigint, sigterm;
    uv_timer_t shutdown_timer;
    bool signals_on;
    bool stopping;
} morphd_server_t;

/* Takes ownership of `cfg`; loads plugins from `plugin_dir` (the config's
 * own plugin_dir wins when set) and creates every chain. Does not bind.
 * Returns 0, or -1 with "FILE:LINE: ..." errors in errs; the server must be
 * freed either way. */
int morphd_server_init(morphd_server_t *s, morphd_config_t *cfg,
                       const char *plugin_dir, morphd_errors_t *errs);

/* Binds every listener. On any failure closes those already open and
 * returns -1 with the errors. */
int morphd_server_listen(morphd_server_t *s, morphd_errors_t *errs);

/* Runs until shut down by SIGINT/SIGTERM (or morphd_server_stop). */
int morphd_server_run(morphd_server_t *s);

/* Begins a graceful stop: no new clients; pending replies are written for
 * up to shutdown_timeout, then remaining connections are closed. */
void morphd_server_stop(morphd_server_t *s);

void morphd_server_free(morphd_server_t *s);

#endif
