/*
 * metrics.h -- what the host measures of each plugin: calls, failures,
 * time spent and a latency histogram, per (service, plugin) and summed
 * over workers when read. Timing every call has to be nearly free, so the
 * clock is the CPU's time-stamp counter where it is invariant (x86-64),
 * calibrated once against CLOCK_MONOTONIC, and CLOCK_MONOTONIC elsewhere.
 */
#ifndef MORPHD_METRICS_H
#define MORPHD_METRICS_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/* Latency buckets, in powers of two of nanoseconds: bucket 0 counts calls
 * under 1.024 us, bucket k (1 <= k < last) calls in [2^(9+k), 2^(10+k))
 * ns, and the last one everything from 2^(10+last-1) ns (4.3 s) on. The
 * bounds are the same on every machine, so histograms add up. */
#define MORPHD_HIST_BUCKETS 24
#define MORPHD_HIST_FIRST_NS 1024ull

/* The counters of one plugin in one service on one worker. Only that
 * worker's thread writes them (morphd_metric_add), so they need no atomic
 * read-modify-write; readers sum the workers' copies. */
typedef struct morphd_plugin_metrics {
    uint64_t failures;
    uint64_t time_ns;
    /* of the calls; their sum is the number of calls (no counter of its
     * own: one add fewer on every message) */
    uint64_t hist[MORPHD_HIST_BUCKETS];
    /* Messages a plugin deferred: where their call fell (counted when the
     * call returns), where the whole message fell (when it ends), and the
     * time of each. The messages' histogram is hist - deferred_call +
     * deferred_msg: a message answered in its call costs nothing more to
     * count, and one still in flight is in neither, so every bucket only
     * grows. */
    uint64_t deferred_call[MORPHD_HIST_BUCKETS];
    uint64_t deferred_msg[MORPHD_HIST_BUCKETS];
    uint64_t deferred_call_ns, deferred_msg_ns;
} __attribute__((aligned(64))) morphd_plugin_metrics_t;

/* A single writer's add: a relaxed load and store, no locked instruction,
 * still a well-defined concurrent read for the admin thread. */
#define morphd_metric_add(field, n)                                            \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) +   \
                                   (uint64_t)(n),                              \
                     __ATOMIC_RELAXED)
#define morphd_metric_get(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

typedef struct morphd_clock {
    int tsc;          /* 1: ticks are TSC cycles; 0: nanoseconds */
    uint64_t mult;    /* ns = ticks * mult >> 32 */
} morphd_clock_t;

extern morphd_clock_t morphd_clock;

/* Chooses and calibrates the clock; any thread, any number of times (the
 * first call does the work, about 200 us). */
void morphd_clock_init(void);

static inline uint64_t morphd_ticks(void)
{
#if defined(__x86_64__)
    if (morphd_clock.tsc)
        return __rdtsc();
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t morphd_ticks_to_ns(uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * morphd_clock.mult) >> 32);
}

static inline unsigned morphd_hist_bucket(uint64_t ns)
{
    if (ns < MORPHD_HIST_FIRST_NS)
        return 0;
    unsigned k = (unsigned)(63 - __builtin_clzll(ns)) - 9;
    return k < MORPHD_HIST_BUCKETS ? k : MORPHD_HIST_BUCKETS - 1;
}

/* The upper bound of bucket k in nanoseconds (0 for the last, unbounded). */
static inline uint64_t morphd_hist_bound_ns(unsigned k)
{
    return k + 1 < MORPHD_HIST_BUCKETS ? MORPHD_HIST_FIRST_NS << k : 0;
}

/* Records one call of `ticks` on metrics m; `failed` counts a failure. */
static inline void morphd_metrics_record(morphd_plugin_metrics_t *m,
                                         uint64_t ticks, int failed)
{
    uint64_t ns = morphd_ticks_to_ns(ticks);
    morphd_metric_add(m->time_ns, ns);
    morphd_metric_add(m->hist[morphd_hist_bucket(ns)], 1);
    if (failed)
        morphd_metric_add(m->failures, 1);
}

/* A call that deferred its message has returned after `call` ticks. */
static inline void morphd_metrics_record_defer(morphd_plugin_metrics_t *m,
                                               uint64_t call)
{
    uint64_t ns = morphd_ticks_to_ns(call);
    morphd_metrics_record(m, call, 0);
    /* released after the call's own counts: a reader that acquires these
     * first never sees them ahead of hist and time_ns (no underflow) */
    unsigned k = morphd_hist_bucket(ns);
    __atomic_store_n(&m->deferred_call[k], morphd_metric_get(m->deferred_call[k]) + 1,
                     __ATOMIC_RELEASE);
    __atomic_store_n(&m->deferred_call_ns, morphd_metric_get(m->deferred_call_ns) + ns,
                     __ATOMIC_RELEASE);
}

/* That message has ended, `total` ticks after its call began. */
static inline void morphd_metrics_record_deferred(morphd_plugin_metrics_t *m,
                                                  uint64_t total, int failed)
{
    uint64_t ns = morphd_ticks_to_ns(total);
    morphd_metric_add(m->deferred_msg[morphd_hist_bucket(ns)], 1);
    morphd_metric_add(m->deferred_msg_ns, ns);
    if (failed)
        morphd_metric_add(m->failures, 1);
}

#endif
