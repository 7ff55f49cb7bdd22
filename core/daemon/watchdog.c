/*
 * watchdog.c -- the watchdog (watchdog.h): a POSIX timer's signal, one to
 * ten times a second, and a look from its handler: a few atomic loads per
 * worker, nothing on the loops' side but the stores around each plugin
 * call that they make anyway. Everything here after the start runs in a
 * signal handler: async-signal-safe calls only.
 */
#include "daemon/watchdog.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/metrics.h"
#include "daemon/crash_note.h"

/* after shutdown_timeout, what the process gets to end on its own */
#define SHUTDOWN_GRACE_MS 2000
/* A look every tenth of the shorter limit (so a limit is enforced at most
 * 10% late), but no more than ten and no fewer than one a second: each
 * look is a signal, which may cut short a plugin's sleep (watchdog.h). */
#define LOOK_MIN_MS 100
#define LOOK_MAX_MS 1000

volatile sig_atomic_t morphd_watchdog_fired;
bool morphd_watchdog_worker_process;

struct morphd_watchdog {
    timer_t timer;
    morphd_chain_env_t **envs;
    unsigned n;
    const unsigned *plugin_timeout_ms, *shutdown_timeout_ms;
    unsigned every_ms; /* the timer's period now */
};

/* The one watchdog the handler looks with (NULL: none), and how many
 * handlers are in a look now, so that the stop can wait them out. */
static morphd_watchdog_t *watching;
static int looking;

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

/* "plugin NAME of service S has not returned for 12.3 s" */
static void put_stuck(morphd_signal_line_t *l, const morphd_stage_t *stuck,
                      uint64_t stuck_ns)
{
    morphd_signal_line_str(l, "plugin ");
    morphd_signal_line_str(l, stuck->plugin->name);
    morphd_signal_line_str(l, " of service ");
    morphd_signal_line_str(l, stuck->chain->service);
    morphd_signal_line_str(l, " has not returned for ");
    morphd_signal_line_secs(l, stuck_ns);
    morphd_signal_line_str(l, " s");
}

static void abort_stuck(const morphd_stage_t *stuck, uint64_t stuck_ns,
                        uint64_t timeout_ns, unsigned worker)
{
    morphd_signal_line_t l;
    morphd_signal_line_start(&l, MORPH_LOG_ERROR);
    morphd_signal_line_str(&l, "watchdog: ");
    put_stuck(&l, stuck, stuck_ns);
    morphd_signal_line_str(&l, " (plugin_timeout = ");
    morphd_signal_line_secs(&l, timeout_ns);
    morphd_signal_line_str(&l, " s, worker ");
    morphd_signal_line_num(&l, worker);
    morphd_signal_line_str(&l, morphd_watchdog_worker_process
                                   ? "): aborting this worker process; the "
                                     "main process starts a new one"
                                   : "): aborting, so that a fresh morphd "
                                     "serves (systemd restarts it)");
    morphd_signal_line_write(&l);
    morphd_crash_note(stuck->plugin->name, stuck->chain->service);
    morphd_watchdog_fired = 1;
    abort();
}

static void exit_overdue(const morphd_watchdog_t *w, uint64_t since_ns,
                         const morphd_stage_t *stuck, uint64_t stuck_ns)
{
    morphd_signal_line_t l;
    morphd_signal_line_start(&l, MORPH_LOG_ERROR);
    morphd_signal_line_str(&l, "watchdog: still running ");
    morphd_signal_line_secs(&l, since_ns);
    morphd_signal_line_str(&l, " s after SIGTERM (shutdown_timeout = ");
    morphd_signal_line_num(&l, __atomic_load_n(w->shutdown_timeout_ms,
                                               __ATOMIC_RELAXED));
    morphd_signal_line_str(&l, " ms)");
    /* named only when it has been in its call for a while: a call that
     * ends now could take its stage with it */
    if (stuck != NULL && stuck_ns >= 1000000000u) {
        morphd_signal_line_str(&l, ": ");
        put_stuck(&l, stuck, stuck_ns);
    }
    morphd_signal_line_str(&l, "; exiting now");
    morphd_signal_line_write(&l);
    _exit(1);
}

/* The period the two limits ask for now (a reload may change them). */
static unsigned look_every_ms(const morphd_watchdog_t *w)
{
    unsigned long limit =
        (unsigned long)__atomic_load_n(w->shutdown_timeout_ms, __ATOMIC_RELAXED) +
        SHUTDOWN_GRACE_MS;
    unsigned plugin = __atomic_load_n(w->plugin_timeout_ms, __ATOMIC_RELAXED);
    if (plugin != 0 && plugin < limit)
        limit = plugin;
    unsigned long every = limit / 10;
    return every < LOOK_MIN_MS ? LOOK_MIN_MS
           : every > LOOK_MAX_MS ? LOOK_MAX_MS
                                 : (unsigned)every;
}

/* timer_settime is async-signal-safe: the handler re-arms it. */
static int arm(morphd_watchdog_t *w, unsigned every_ms)
{
    long ns = (long)(every_ms % 1000) * 1000000L;
    time_t s = (time_t)(every_ms / 1000);
    const struct itimerspec it = {{s, ns}, {s, ns}};
    w->every_ms = every_ms;
    return timer_settime(w->timer, 0, &it, NULL);
}

static void look(morphd_watchdog_t *w)
{
    uint64_t timeout_ns =
        (uint64_t)__atomic_load_n(w->plugin_timeout_ms, __ATOMIC_RELAXED) *
        1000000u;
    uint64_t stuck_ns = 0;
    unsigned stuck_worker = 0;
    const morphd_stage_t *stuck = morphd_watchdog_longest_call(
        w->envs, w->n, &stuck_ns, &stuck_worker);
    if (stuck != NULL && timeout_ns != 0 && stuck_ns >= timeout_ns)
        abort_stuck(stuck, stuck_ns, timeout_ns, stuck_worker);
    uint64_t asked = __atomic_load_n(&stop_asked_ns, __ATOMIC_RELAXED);
    uint64_t limit =
        ((uint64_t)__atomic_load_n(w->shutdown_timeout_ms, __ATOMIC_RELAXED) +
         SHUTDOWN_GRACE_MS) * 1000000u;
    if (asked != 0 && mono_ns() - asked >= limit)
        exit_overdue(w, mono_ns() - asked, stuck, stuck_ns);
    unsigned every = look_every_ms(w);
    if (every != w->every_ms)
        arm(w, every);
}

static void on_watchdog_signal(int sig)
{
    (void)sig;
    int saved = errno;
    /* sequentially consistent, with the stop's two: either the stop sees
     * this look, or this look sees the stop */
    __atomic_add_fetch(&looking, 1, __ATOMIC_SEQ_CST);
    morphd_watchdog_t *w = __atomic_load_n(&watching, __ATOMIC_SEQ_CST);
    if (w != NULL)
        look(w);
    __atomic_sub_fetch(&looking, 1, __ATOMIC_ACQ_REL);
    errno = saved;
}

morphd_watchdog_t *morphd_watchdog_start(morphd_chain_env_t *const *envs,
                                         unsigned n,
                                         const unsigned *plugin_timeout_ms,
                                         const unsigned *shutdown_timeout_ms)
{
    if (__atomic_load_n(&watching, __ATOMIC_ACQUIRE) != NULL)
        return NULL;
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
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_watchdog_signal;
    sigfillset(&sa.sa_mask); /* a look is never interrupted by another */
    sa.sa_flags = SA_RESTART;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = MORPHD_WATCHDOG_SIGNAL;
    if (sigaction(MORPHD_WATCHDOG_SIGNAL, &sa, NULL) != 0 ||
        timer_create(CLOCK_MONOTONIC, &ev, &w->timer) != 0) {
        free(w->envs);
        free(w);
        return NULL;
    }
    __atomic_store_n(&watching, w, __ATOMIC_RELEASE);
    if (arm(w, look_every_ms(w)) != 0) {
        morphd_watchdog_stop(w);
        return NULL;
    }
    return w;
}

void morphd_watchdog_stop(morphd_watchdog_t *w)
{
    if (w == NULL)
        return;
    timer_delete(w->timer);
    __atomic_store_n(&watching, NULL, __ATOMIC_SEQ_CST);
    /* a signal sent before the delete may still be in its handler on
     * another thread (one that is, takes a few microseconds) */
    while (__atomic_load_n(&looking, __ATOMIC_SEQ_CST) != 0)
        sched_yield();
    free(w->envs);
    free(w);
}
