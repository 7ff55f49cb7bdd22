/*
 * metrics_http.h -- `metrics_listen = http://HOST:PORT` in [morphd]:
 * Prometheus' text format at /metrics, /healthz and /readyz for probes,
 * /stats.json and a status page at /, served by libmicrohttpd on a thread
 * of its own, so that a scrape never runs on a serving loop. It reads the
 * same counters as `morph stats` (relaxed atomics, the stats registry's
 * lock), plus what only the server knows.
 */
#ifndef MORPHD_METRICS_HTTP_H
#define MORPHD_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "engine/stats.h"

typedef struct morphd_metrics_http morphd_metrics_http_t;

/* What the server adds to the services' counters; read with relaxed
 * atomic loads at each scrape. */
typedef struct morphd_server_counters {
    uint64_t reloads;         /* configurations reloaded */
    uint64_t reload_failures; /* reloads refused (the old one went on) */
    uint64_t worker_restarts; /* workers replaced (isolation = process) */
    uint64_t workers;         /* serving now */
    /* the access log, whose lost lines are counted (NULL: off) */
    struct morphd_access_log *access_log;
    /* /healthz and /readyz, set by the owner before the start: each says
     * whether it is so, with the reason in `why` when not. NULL: yes. Any
     * thread (the metrics thread, or the main process's loop). */
    bool (*healthy)(void *arg, char *why, size_t why_size);
    bool (*ready)(void *arg, char *why, size_t why_size);
    void *health_arg;
    const char *isolation; /* "thread" or "process", for /stats.json */
} morphd_server_counters_t;

/* Serves /metrics on `text` (as parsed above): on a thread of its own
 * when `loop` is NULL, else on `loop` (the main process of isolation =
 * process, which forks and so must stay single-threaded). Returns NULL
 * with the reason in err. `bound` gets "http://HOST:PORT" with the port
 * bound. */
morphd_metrics_http_t *morphd_metrics_http_start(
    const char *text, morphd_stats_t **stats,
    const morphd_server_counters_t *counters, uv_loop_t *loop, char *bound,
    size_t bound_size, char *err, size_t err_size);

/* The services and their configured endpoints, for /stats.json and the
 * status page: set after the start and after each reload (any thread). */
struct morphd_config;
void morphd_metrics_http_set_config(morphd_metrics_http_t *m,
                                    const struct morphd_config *cfg);

void morphd_metrics_http_stop(morphd_metrics_http_t *m);

#endif
