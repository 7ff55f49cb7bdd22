/*
 * supervisor.h -- `isolation = process`: nginx's master/worker model, and
 * then some. The main process parses the configuration, binds every
 * listening socket (one SO_REUSEPORT socket per endpoint and worker, so
 * that the kernel spreads clients), opens the admin socket and /metrics,
 * drops root, and forks `workers` worker processes. Each worker loads the
 * plugins, sandboxes itself (sandbox = on) and serves on its share of the
 * sockets, which the main process keeps open: a worker that dies costs
 * only its own connections, and what arrives meanwhile waits in its
 * sockets' queues for the replacement, started at once (crash loops back
 * off up to 5 s). The log names the signal, and the plugin and service
 * that were running.
 *
 * SIGHUP starts new workers on the new configuration; once every one of
 * them serves, the old ones (SIGUSR2) take no new clients, serve their
 * connections to the end and exit. A configuration that does not
 * start (a plugin fails to load, a port is taken) leaves the old workers
 * serving. SIGTERM drains every worker, within shutdown_timeout.
 *
 * The counters are in memory shared with the workers (shm.h), so `morph
 * stats` and /metrics, both served by the main process, sum them all.
 */
#ifndef MORPHD_SUPERVISOR_H
#define MORPHD_SUPERVISOR_H

#include <stddef.h>

#include "conf/config.h"
#include "base/errors.h"

/* Runs morphd in process mode on `cfg` (taken) until stopped. Returns the
 * exit status: 0; 1 when a worker outlived shutdown_timeout (killed 1.5 s
 * after it); or
 * MORPH_EXIT_CONFIG with errors in errs when it could not start. */
int morphd_supervise(morphd_config_t *cfg, const char *config_path,
                     const char *const *overrides, size_t n_overrides,
                     const char *default_plugin_dir, morphd_errors_t *errs);

#endif
