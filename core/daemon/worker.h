/*
 * worker.h -- one event loop and what runs on it: its copy of every
 * service (own plugin instances, own listeners bound with SO_REUSEPORT when
 * there are several workers), its connections and jobs, and its part of
 * reloads and shutdown. Worker 0 runs on the main thread; the others each
 * on a thread of their own, driven by commands from the main thread
 * (morphd_worker_call).
 */
#ifndef MORPHD_WORKER_H
#define MORPHD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "engine/chain.h"
#include "base/errors.h"
#include "net/listener.h"
#include "net/service.h"

typedef struct morphd_worker morphd_worker_t;

/* A service as one worker runs it: the service and its listeners (a
 * "site" in worker.c's and server.c's variable names). It lives while it
 * is current or any of its listeners is open; the service itself lives on
 * while connections use it. */
typedef struct morphd_worker_service {
    morphd_service_t *svc; /* a reference */
    morphd_listener_t *listeners;
    size_t n_listeners;
    size_t n_open;         /* listeners open */
    bool current;
    morphd_worker_t *worker;
    struct morphd_worker_service *prev, *next; /* the worker's live sites */
} morphd_worker_service_t;

/* Where a worker process gets its listening sockets from the main
 * process (isolation = process): the descriptor for listener `l` (its
 * service and position in `listen`), or -1 to bind as usual. NULL in
 * thread mode. */
extern int (*morphd_worker_inherited_socket)(const morphd_listener_t *l);

/* Makes a site for `svc` (taking the caller's reference) with a listener
 * slot per endpoint of its configuration. NULL when out of memory. */
morphd_worker_service_t *morphd_worker_service_new(morphd_service_t *svc);
/* Frees a site no worker has adopted, with its service reference. */
void morphd_worker_service_discard(morphd_worker_service_t *site);

typedef enum morphd_worker_cmd {
    MORPHD_WORKER_OPEN,   /* adopt new sites; open their new endpoints */
    MORPHD_WORKER_ABORT,  /* undo OPEN: close what it opened, drop them */
    MORPHD_WORKER_COMMIT, /* hand over endpoints, retire the old sites */
    MORPHD_WORKER_STOP,   /* graceful shutdown */
    MORPHD_WORKER_RETIRE, /* close the listeners; end once the connections
                             have (a worker process a reload replaced) */
} morphd_worker_cmd_t;

struct morphd_worker {
    unsigned index;
    uv_loop_t loop;
    morphd_io_t io;         /* its services point here */
    morphd_chain_env_t env; /* what its chains run on */
    bool reuseport; /* SO_REUSEPORT on every socket: several workers */
    unsigned shutdown_timeout_ms;

    morphd_worker_service_t **sites; /* current */
    size_t n_sites;
    morphd_worker_service_t *all_sites;       /* current, and closing ones */
    morphd_service_t *all_services; /* every live service */
    size_t n_open_listeners;
    bool stopping;
    bool retiring; /* stopping, but its connections are served to the end */
    bool finished;
    /* stopping, and nothing left open */
    void (*on_idle)(morphd_worker_t *w, void *arg);
    void *on_idle_arg;
    uv_timer_t shutdown_timer;
    uv_timer_t sweep_timer; /* closes idle connections */
    uint64_t sweep_ms;
    uv_timer_t drain_timer; /* a stop's drain passes (drain_conns) */
    uint64_t drain_started; /* uv_now() at the stop */
    bool timers_on;

    /* threads other than the main one */
    uv_thread_t thread;
    uv_async_t wakeup;
    bool threaded;
    uv_mutex_t lock;
    uv_cond_t done_cond;
    morphd_worker_cmd_t cmd;
    morphd_worker_service_t **cmd_sites;
    size_t cmd_n;
    morphd_errors_t *cmd_errs;
    int cmd_result;
    bool cmd_pending;
};

/* Prepares the loop and its buffers. Returns 0 or a libuv error. */
int morphd_worker_init(morphd_worker_t *w, unsigned index, unsigned n_workers);

/* Starts the worker's thread (for index > 0). */
int morphd_worker_start_thread(morphd_worker_t *w);

/* Runs a command on the worker's own loop: directly for worker 0 (the
 * caller's thread), through its thread otherwise, waiting until done.
 * STOP does not wait. OPEN and COMMIT take the array `sites` (n of them):
 * COMMIT keeps it as the list of current sites. Returns the command's
 * result (0 or -1). */
int morphd_worker_call(morphd_worker_t *w, morphd_worker_cmd_t cmd,
                       morphd_worker_service_t **sites, size_t n,
                       morphd_errors_t *errs);

/* Closes every connection still open (after the shutdown timeout). */
void morphd_worker_abort_all(morphd_worker_t *w);

/* After the loop has ended (and the thread joined): frees the rest. */
void morphd_worker_free(morphd_worker_t *w);

#endif
