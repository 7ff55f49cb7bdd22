/*
 * watchdog.h -- watches the workers from outside their loops, for what a
 * loop cannot see about itself:
 *  - a plugin call that has not returned within plugin_timeout (an endless
 *    loop, a blocking call): logged with the plugin and service, then
 *    abort(), so that systemd (Restart=on-failure) starts a fresh morphd;
 *  - SIGTERM or SIGINT not ended within shutdown_timeout (a stuck plugin
 *    keeps a loop from ever closing): logged, then the process exits.
 *
 * It looks from a signal handler, on a POSIX timer that sends
 * MORPHD_WATCHDOG_SIGNAL every tenth of the shorter of plugin_timeout and
 * shutdown_timeout + 2 s (between 100 ms and 1 s: every 700 ms with the
 * defaults), not from a thread of its own: a process
 * with a second thread pays for it on every read and write (glibc's
 * cancellation checks, about 95 instructions a request on TCP; see
 * docs/benchmarks.md), and morphd with one worker has no other thread.
 * The signal is installed with SA_RESTART, so socket reads and writes
 * restart on their own; what never restarts (nanosleep, poll, epoll_wait)
 * may return EINTR, which libuv handles and plugin.h tells plugins of.
 */
#ifndef MORPHD_WATCHDOG_H
#define MORPHD_WATCHDOG_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/chain.h"

typedef struct morphd_watchdog morphd_watchdog_t;

/* The watchdog's timer signal: a real-time one, so that a plugin's alarm()
 * or SIGALRM is its own. */
#define MORPHD_WATCHDOG_SIGNAL (SIGRTMIN + 3)

/* Set once the watchdog has decided to abort, for the crash logger. */
extern volatile sig_atomic_t morphd_watchdog_fired;
/* Set in a worker process of isolation = process: an abort ends only this
 * worker, which the main process replaces (and the messages say so). */
extern bool morphd_watchdog_worker_process;

/* Starts watching the `n` chain envs (one per worker; their calling and
 * calling_since). The two timeouts are read at each check, so a reload
 * may change them (0: plugin calls are not timed). One watchdog per
 * process. NULL when no timer could be made (or one runs already). */
morphd_watchdog_t *morphd_watchdog_start(morphd_chain_env_t *const *envs,
                                         unsigned n,
                                         const unsigned *plugin_timeout_ms,
                                         const unsigned *shutdown_timeout_ms);

/* Stops the timer and waits for a look in progress on another thread. */
void morphd_watchdog_stop(morphd_watchdog_t *w);

/* The plugin call that has run longest on any of the `n` loops of envs[]
 * (NULL: none is in a call), how long (ns) and on which worker. Any
 * thread: /healthz asks it from the metrics thread. */
const morphd_stage_t *morphd_watchdog_longest_call(morphd_chain_env_t *const *envs,
                                                   unsigned n, uint64_t *for_ns,
                                                   unsigned *worker);

/* A stop was asked (SIGTERM, SIGINT): from a signal handler, so that the
 * watchdog knows even when every loop is stuck. Async-signal-safe. */
void morphd_watchdog_note_stop(void);

#endif
