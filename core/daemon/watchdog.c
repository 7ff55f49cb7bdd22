/*
 * watchdog.c -- the watchdog thread (watchdog.h). It looks ten times a
 * second: a few atomic loads per worker, nothing on the loops' side but
 * the stores around each plugin call that they make anyway.
 */
#include "daemon/watchdog.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/metrics.h"
#include "daemon/crash_note.h"

#define CHECK_EVERY_MS 100
/* after shutdown_timeout, what the process gets to end on its own */
#define SHUTDOWN_GRACE_MS 2000

volatile sig_atomic_t morphd_watchdog_fired;
bool morphd_watchdog_worker_process;

struct morphd_watchdog {
    pthread_t thread;
    morphd_chain_env_t **envs;
    unsigned n;
    const unsigned *plugin_timeout_ms, *shutdown_timeout_ms;
    int stop; /* atomic */
};

static void (*tick_cb)(void);

void morphd_watchdog_set_tick(void (*tick)(void)) { tick_cb = tick; }

/* CLOCK_MONOTONIC ns of the first SIGTERM/SIGINT (0: none yet) */
static uint64_t stop_asked_ns;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void morphd_watchdog_note_stop(void)
{
    uint64_t zero = 0; /* clock_gettime is async-signal-safe */
    __atomic_compare_exchange_n(&stop_asked_ns, &zero, mono_ns(), false,
                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* The plugin a worker is in, and for how long (ns); NULL when none. */
static const morphd_stage_t *calling(morphd_chain_env_t *env, uint64_t now,
                                     uint64_t *for_ns)
{
    uint64_t since = __atomic_load_n(&env->calling_since, __ATOMIC_ACQUIRE);
    if (since == 0)
        return NULL;
    const morphd_stage_t *st = __atomic_load_n(&env->calling, __ATOMIC_ACQUIRE);
    /* the same call still (a stage changed meanwhile is not a stuck one) */
    if (__atomic_load_n(&env->calling_since, __ATOMIC_ACQUIRE) != since ||
        st == NULL)
        return NULL;
    *for_ns = now > since ? morphd_ticks_to_ns(now - since) : 0;
    return st;
}

const morphd_stage_t *morphd_watchdog_longest_call(morphd_chain_env_t *const *envs,
                                                   unsigned n, uint64_t *for_ns,
                                                   unsigned *worker)
{
    uint64_t now = morphd_ticks();
    const morphd_stage_t *longest = NULL;
    *for_ns = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t ns;
        const morphd_stage_t *st = calling(envs[i], now, &ns);
        if (st != NULL && ns >= *for_ns) {
            longest = st;
            *for_ns = ns;
            *worker = i;
        }
    }
    return longest;
}

static void *watch(void *arg)
{
    morphd_watchdog_t *w = arg;
    const struct timespec pause = {0, CHECK_EVERY_MS * 1000000L};
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        nanosleep(&pause, NULL);
        if (tick_cb != NULL)
            tick_cb();
        uint64_t now = morphd_ticks();
        uint64_t timeout_ns =
            (uint64_t)__atomic_load_n(w->plugin_timeout_ms, __ATOMIC_RELAXED) *
            1000000u;
        const morphd_stage_t *stuck = NULL;
        uint64_t stuck_ns = 0;
        unsigned stuck_worker = 0;
        for (unsigned i = 0; i < w->n; i++) {
            uint64_t ns;
            const morphd_stage_t *st = calling(w->envs[i], now, &ns);
            if (st != NULL && ns > stuck_ns) {
                stuck = st;
                stuck_ns = ns;
                stuck_worker = i;
            }
        }
        if (stuck != NULL && timeout_ns != 0 && stuck_ns >= timeout_ns) {
            morphd_log(MORPH_LOG_ERROR, "watchdog: plugin %s of service %s has "
                       "not returned for %.1f s (plugin_timeout = %.1f s, "
                       "worker %u): %s", stuck->plugin->name,
                       stuck->chain->service, (double)stuck_ns / 1e9,
                       (double)timeout_ns / 1e9, stuck_worker,
                       morphd_watchdog_worker_process
                           ? "aborting this worker process; the main process "
                             "starts a new one"
                           : "aborting, so that a fresh morphd serves (systemd "
                             "restarts it)");
            morphd_crash_note(stuck->plugin->name, stuck->chain->service);
            morphd_watchdog_fired = 1;
            abort();
        }
        uint64_t asked = __atomic_load_n(&stop_asked_ns, __ATOMIC_RELAXED);
        uint64_t limit =
            ((uint64_t)__atomic_load_n(w->shutdown_timeout_ms, __ATOMIC_RELAXED) +
             SHUTDOWN_GRACE_MS) * 1000000u;
        if (asked != 0 && mono_ns() - asked >= limit) {
            /* named only when it has been in its call for a while: a call
             * that ends now could take its stage with it */
            if (stuck != NULL && stuck_ns >= 1000000000u)
                morphd_log(MORPH_LOG_ERROR, "watchdog: still running %.1f s "
                           "after SIGTERM (shutdown_timeout = %u ms): plugin "
                           "%s of service %s has not returned for %.1f s; "
                           "exiting now", (double)(mono_ns() - asked) / 1e9,
                           *w->shutdown_timeout_ms, stuck->plugin->name,
                           stuck->chain->service, (double)stuck_ns / 1e9);
            else
                morphd_log(MORPH_LOG_ERROR, "watchdog: still running %.1f s "
                           "after SIGTERM (shutdown_timeout = %u ms); exiting "
                           "now", (double)(mono_ns() - asked) / 1e9,
                           *w->shutdown_timeout_ms);
            _exit(1);
        }
    }
    return NULL;
}

morphd_watchdog_t *morphd_watchdog_start(morphd_chain_env_t *const *envs,
                                         unsigned n,
                                         const unsigned *plugin_timeout_ms,
                                         const unsigned *shutdown_timeout_ms)
{
    morphd_watchdog_t *w = calloc(1, sizeof *w);
    if (w == NULL || (w->envs = calloc(n, sizeof *w->envs)) == NULL) {
        free(w);
        return NULL;
    }
    memcpy(w->envs, envs, n * sizeof *envs);
    w->n = n;
    w->plugin_timeout_ms = plugin_timeout_ms;
    w->shutdown_timeout_ms = shutdown_timeout_ms;
    morphd_clock_init();
    if (pthread_create(&w->thread, NULL, watch, w) != 0) {
        free(w->envs);
        free(w);
        return NULL;
    }
    return w;
}

void morphd_watchdog_stop(morphd_watchdog_t *w)
{
    if (w == NULL)
        return;
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
    pthread_join(w->thread, NULL);
    free(w->envs);
    free(w);
}
