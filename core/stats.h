/*
 * stats.h -- per-service counters and connection accounting. One
 * morphd_stats_t per service *name*: the service objects of successive
 * configurations (and of every worker thread) share it, so counters and
 * connection limits carry across reloads. Counters are relaxed atomics:
 * any thread may add, the admin endpoint reads them at any time.
 */
#ifndef MORPHD_STATS_H
#define MORPHD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* The counters, in display order: one X-macro list feeds the struct, the
 * table and JSON output of `morph stats`, and the log line of SIGUSR1. */
#define MORPHD_STATS_COUNTERS(X)                                              \
    X(connections_accepted, "TCP connections accepted")                       \
    X(connections_rejected, "TCP connections refused by a limit")             \
    X(connections_open, "TCP connections open now")                           \
    X(connections_idle_closed, "TCP connections closed by idle_timeout")      \
    X(messages_in, "messages received (lines, chunks, datagrams)")            \
    X(messages_out, "replies sent")                                           \
    X(bytes_in, "bytes received")                                             \
    X(bytes_out, "bytes of replies")                                          \
    X(errors, "messages a plugin failed, oversized lines and datagrams")      \
    X(datagrams_dropped, "UDP datagrams dropped (oversized, or queue full)")

typedef struct morphd_stats {
    char *name;
    size_t refs; /* guarded by the registry lock (stats.c) */
#define MORPHD_STATS_FIELD(f, help) uint64_t f;
    MORPHD_STATS_COUNTERS(MORPHD_STATS_FIELD)
#undef MORPHD_STATS_FIELD

    /* open TCP connections per source address, for
     * max_connections_per_source */
    uv_mutex_t lock;
    struct source_count *sources[64];
    struct morphd_stats *next; /* in the registry */
} morphd_stats_t;

#define MORPHD_STAT_ADD(stats, field, n)                                       \
    __atomic_fetch_add(&(stats)->field, (uint64_t)(n), __ATOMIC_RELAXED)
#define MORPHD_STAT_SUB(stats, field, n)                                       \
    __atomic_fetch_sub(&(stats)->field, (uint64_t)(n), __ATOMIC_RELAXED)
#define MORPHD_STAT_GET(stats, field)                                          \
    __atomic_load_n(&(stats)->field, __ATOMIC_RELAXED)

/* The stats of `name` in the registry at *head, created when new. */
morphd_stats_t *morphd_stats_get(morphd_stats_t **head, const char *name);
/* Drops a reference; the last one unlinks and frees. */
void morphd_stats_put(morphd_stats_t **head, morphd_stats_t *st);

/* Admits one TCP connection from `peer` under the limits (0 = none).
 * Returns true and counts it open, or false and counts it rejected. */
bool morphd_stats_admit(morphd_stats_t *st, const struct sockaddr *peer,
                        uint64_t max_connections, uint64_t max_per_source);
/* A connection admitted from `peer` has closed. */
void morphd_stats_release(morphd_stats_t *st, const struct sockaddr *peer);

/* Writes the counters of every service in the registry as JSON or as a
 * table into buf (NUL-terminated, truncated to size). */
void morphd_stats_format(morphd_stats_t *head, bool json, char *buf,
                         size_t size);

#endif
