/*
 * stats.h -- per-service counters, per-plugin metrics and connection
 * accounting. One morphd_stats_t per service *name*: the service objects
 * of successive configurations (and of every worker thread) share it, so
 * counters and connection limits carry across reloads. Each counter is
 * kept twice over: a relaxed atomic that any thread may add to, and one
 * lane per worker that only that worker's loop writes (no locked
 * instruction: the four counts of every message cost four plain adds),
 * summed when read. Each plugin's metrics are kept per worker the same way.
 */
#ifndef MORPHD_STATS_H
#define MORPHD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/buf.h"
#include "base/metrics.h"
#include "base/rate.h"

/* The counters, in display order: one X-macro list feeds the struct, the
 * table and JSON output of `morph stats`, and the log line of SIGUSR1. */
#define MORPHD_STATS_COUNTERS(X)                                              \
    X(connections_accepted, "connections taken on (TCP, TLS, unix); behind PROXY, once the header is read") \
    X(connections_rejected, "connections refused by max_connections or max_connections_per_source") \
    X(connections_dropped, "connections closed at once: no descriptor (or memory) left for them") \
    X(connections_open, "connections open now")                               \
    X(connections_idle_closed, "connections closed by idle_timeout")          \
    X(messages_in, "messages received (lines, chunks, datagrams)")            \
    X(messages_out, "replies sent")                                           \
    X(bytes_in, "bytes received (TLS: decrypted), a line too long or a datagram too large included") \
    X(bytes_out, "bytes of the replies sent, line endings included")          \
    X(errors, "messages a plugin failed, oversized messages and datagrams, frames not of the framing") \
    X(frames_too_long, "connections closed for a message over max_message: a line or delimited message, or a length a header announced") \
    X(frames_invalid, "connections closed for bytes that are not the framing (a bad length, netstring or varint; the input ending inside a frame)") \
    X(datagrams_dropped, "UDP datagrams dropped (oversized, or queue full)")  \
    X(messages_pending, "messages waiting for a plugin's later answer now")  \
    X(tls_handshakes, "TLS handshakes completed")                             \
    X(tls_handshakes_resumed, "of which resumed a session (tickets)")         \
    X(tls_handshake_failures, "TLS handshakes failed (not TLS, bad records)") \
    X(tls_handshake_timeouts, "clients closed by tls_handshake_timeout")      \
    X(tls_renegotiations, "clients closed for asking to renegotiate")         \
    X(tls_errors, "TLS connections closed for a bad record after the handshake") \
    X(proxy_headers, "PROXY protocol headers accepted (LOCAL ones too)")      \
    X(proxy_untrusted, "connections and datagrams refused: not from proxy_from") \
    X(proxy_invalid, "refused: PROXY header missing, malformed, too long or of the wrong family") \
    X(proxy_timeouts, "connections closed by proxy_timeout before their header") \
    X(rate_limited, "connections refused and datagrams dropped by rate_per_source")

/* A counter a plugin registered (morph_host_t.counter). */
typedef struct morphd_plugin_counter {
    uint64_t value; /* atomic */
    char name[48];
    char *help;
    struct morphd_plugin_counter *next;
} morphd_plugin_counter_t;

#define MORPHD_PLUGIN_COUNTERS_MAX 64

/* One plugin's metrics within one service. */
typedef struct morphd_plugin_stats {
    char *name;
    unsigned n_workers;
    morphd_plugin_metrics_t *per_worker; /* [n_workers], cache-aligned */
    void *per_worker_block;              /* what holds them */
    morphd_plugin_counter_t *counters;   /* registration order, reversed */
    size_t n_counters;
    struct morphd_plugin_stats *next;
} morphd_plugin_stats_t;

/* Every counter once: the shared atomic ones (morphd_stats_t.any) and
 * each worker's lane (morphd_stats_t.lanes) are one of these. */
typedef struct morphd_stats_counts {
#define MORPHD_STATS_FIELD(f, help) uint64_t f;
    MORPHD_STATS_COUNTERS(MORPHD_STATS_FIELD)
#undef MORPHD_STATS_FIELD
} morphd_stats_counts_t;

/* A lane: cache lines of its own, so that workers never share one. */
typedef struct morphd_stats_lane {
    morphd_stats_counts_t c;
} __attribute__((aligned(64))) morphd_stats_lane_t;

typedef struct morphd_stats {
    char *name;
    size_t refs; /* guarded by the registry lock (stats.c) */
    morphd_stats_counts_t any; /* relaxed atomics: any thread adds */

    morphd_plugin_stats_t *plugins; /* first use first; registry lock */

    /* [n_lanes], one per worker slot, cache-aligned in lanes_block; the
     * number is the first morphd_stats_get's and never grows */
    morphd_stats_lane_t *lanes;
    unsigned n_lanes;
    void *lanes_block;

    /* open TCP connections per source address, for
     * max_connections_per_source; and what each worker slot holds of them
     * and of the gauges, so that a worker process that dies can be taken
     * out (morphd_stats_forget_slot) */
    pthread_mutex_t lock;
    struct source_count *sources[64];
    uint64_t *slot_open, *slot_pending; /* [slots]; under lock */
    morphd_rate_t *rate; /* rate_per_source's table, made at first use */
    struct morphd_stats *next; /* in the registry */
} morphd_stats_t;

#define MORPHD_STAT_ADD(stats, field, n)                                       \
    __atomic_fetch_add(&(stats)->any.field, (uint64_t)(n), __ATOMIC_RELAXED)
#define MORPHD_STAT_SUB(stats, field, n)                                       \
    __atomic_fetch_sub(&(stats)->any.field, (uint64_t)(n), __ATOMIC_RELAXED)
/* A counter's value: the shared atomic and every lane, summed. */
#define MORPHD_STAT_GET(stats, field)                                          \
    morphd_stats_read((stats), offsetof(morphd_stats_counts_t, field))

/* A worker's own counts (morphd_stats_lane): only its loop may add to
 * them, a single writer's add as the plugin metrics' (base/metrics.h). */
#define MORPHD_LANE_ADD(lane, field, n) morphd_metric_add((lane)->field, n)
#define MORPHD_LANE_SUB(lane, field, n)                                        \
    MORPHD_LANE_ADD(lane, field, -(uint64_t)(n))

/* With worker processes (shm.h active): moves the registry lock into the
 * shared mapping and returns the registry head there, to be used by every
 * process; `slots` is the number of worker slots. NULL when the mapping
 * is not active. */
morphd_stats_t **morphd_stats_share(unsigned slots);
/* The worker slot of this process (0 with threads; a worker process's own
 * slot otherwise): whose share of the gauges and source counts it moves. */
extern unsigned morphd_stats_slot;
/* A worker process of `slot` is gone, and its connections and pending
 * messages with it: takes its share out of every gauge and source count. */
void morphd_stats_forget_slot(morphd_stats_t *const *head, unsigned slot);
/* messages_pending up (delta > 0) or down, as this slot's. */
void morphd_stats_pending(morphd_stats_t *st, int delta);

/* The stats of `name` in the registry at *head, created when new with
 * `n_lanes` worker lanes (at least 1; later calls may not ask for more:
 * the worker count never grows at run time). NULL when out of memory,
 * or when `name`'s stats have fewer lanes than asked. */
morphd_stats_t *morphd_stats_get(morphd_stats_t **head, const char *name,
                                 unsigned n_lanes);
/* The lane of worker slot `worker`, or NULL past the lanes made. */
morphd_stats_counts_t *morphd_stats_lane(morphd_stats_t *st, unsigned worker);
/* Counter `offset` (offsetof(morphd_stats_counts_t, f)) of `st`: the
 * shared atomic and every lane, summed. Any thread. */
uint64_t morphd_stats_read(const morphd_stats_t *st, size_t offset);
/* Drops a reference; the last one unlinks and frees. */
void morphd_stats_put(morphd_stats_t **head, morphd_stats_t *st);

/* The metrics of plugin `name` in `st`, created when new with room for
 * `n_workers` workers (later calls may not ask for more). NULL when out of
 * memory. They live as long as `st`. */
morphd_plugin_stats_t *morphd_stats_plugin(morphd_stats_t *st,
                                           const char *name,
                                           unsigned n_workers);
/* The counter `name` of a plugin, registered when new. NULL when out of
 * memory or past MORPHD_PLUGIN_COUNTERS_MAX. */
morphd_plugin_counter_t *morphd_stats_counter(morphd_plugin_stats_t *ps,
                                              const char *name,
                                              const char *help);

/* The 16-byte key of a source address (IPv4 as v4-mapped IPv6). */
void morphd_stats_source_key(const struct sockaddr *sa, unsigned char key[16]);
/* The key of a unix:// client: its user, so that per-source limits count
 * per user there. */
void morphd_stats_source_key_uid(uid_t uid, unsigned char key[16]);

/* Admits one TCP connection from the source `key` (NULL: no per-source
 * limit) under the limits (0 = none). Returns true and counts it open, or
 * false and counts it rejected. connections_accepted is the caller's to
 * count, once the connection is taken on for good (behind PROXY, only
 * once its header is read). */
bool morphd_stats_admit(morphd_stats_t *st, const unsigned char *key,
                        uint64_t max_connections, uint64_t max_per_source);
/* Counts one more connection from `key` on one admitted without a key
 * (its source was learnt later: a PROXY header). Returns true, or false
 * and counts it rejected (the connection stays counted open until
 * released with no key). */
bool morphd_stats_admit_source(morphd_stats_t *st, const unsigned char *key,
                               uint64_t max_per_source);
/* rate_per_source: whether one more connection or datagram from `key`
 * is within `per_second` (bursts of `burst`; 0: per_second, at least 1).
 * Counts rate_limited when not. */
bool morphd_stats_rate_admit(morphd_stats_t *st, const unsigned char key[16],
                             double per_second, size_t burst);
/* A connection admitted with `key` has closed. */
void morphd_stats_release(morphd_stats_t *st, const unsigned char *key);

/* Appends the counters of every service in the registry, as JSON or as a
 * table, to `out`. Returns 0, or -1 when out of memory. */
int morphd_stats_format(morphd_stats_t *head, bool json, morphd_buf_t *out);

/* The same in Prometheus' text format (0.0.4): every counter as
 * morph_COUNTER_total{service="NAME"} (the two that go down, connections_open
 * and messages_pending, as gauges), and per plugin
 * morph_plugin_calls_total, morph_plugin_failures_total, the histogram
 * morph_plugin_duration_seconds, labelled service and plugin, and its own
 * counters as morph_plugin_PLUGIN_NAME_total{service=...}, each with the
 * help the plugin registered it with.
 * Any thread (the registry at *head is read under its lock). Returns 0,
 * or -1 when out of memory. */
int morphd_stats_prometheus(morphd_stats_t *const *head, morphd_buf_t *out);

/* The table of morphd_stats_format, one log line each (SIGUSR1). */
void morphd_stats_log(morphd_stats_t *head);

#endif
