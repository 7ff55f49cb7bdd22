/*
 * worker.h -- one event loop and what runs on it: its copy of every
 * service (own plugin instances, own listeners bound with SO_REUSEPORT when
 * there are several workers), its connections, and its part of reloads and
 * shutdown. Worker 0 runs on the main thread; the others each on a thread
 * of their own, driven by commands from the main thread (worker_call).
 */
#ifndef MORPHD_WORKER_H
#define MORPHD_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "errors.h"
#include "service.h"

typedef struct morphd_worker morphd_worker_t;

typedef enum morphd_worker_cmd {
    MORPHD_WORKER_OPEN,   /* adopt new services; open their new endpoints */
    MORPHD_WORKER_ABORT,  /* undo OPEN: close what it opened, drop them */
    MORPHD_WORKER_COMMIT, /* hand over endpoints, retire the old services */
    MORPHD_WORKER_STOP,   /* graceful shutdown */
} morphd_worker_cmd_t;

struct morphd_worker {
    unsigned index;
    uv_loop_t loop;
    morphd_loop_ctx_t ctx;
    bool reuseport; /* SO_REUSEPORT on every socket: several workers */
    unsigned shutdown_timeout_ms;

    morphd_service_t **services; /* current */
    size_t n_services;
    morphd_service_t *all_services; /* current and retired, still alive */
    size_t n_open_listeners;
    bool stopping;
    void (*on_idle)(morphd_worker_t *w); /* stopping, nothing left open */
    uv_timer_t shutdown_timer;
    bool timer_on;

    /* threads other than the main one */
    uv_thread_t thread;
    uv_async_t wakeup;
    bool threaded;
    uv_mutex_t lock;
    uv_cond_t done_cond;
    morphd_worker_cmd_t cmd;
    morphd_service_t **cmd_svcs;
    size_t cmd_n;
    morphd_errors_t *cmd_errs;
    int cmd_result;
    bool cmd_pending;
};

/* Prepares the loop and its buffers. Returns 0 or a libuv error. */
int morphd_worker_init(morphd_worker_t *w, unsigned index);

/* Starts the worker's thread (for index > 0). */
int morphd_worker_start_thread(morphd_worker_t *w);

/* Runs a command on the worker's own loop: directly for worker 0 (the
 * caller's thread), through its thread otherwise, waiting until done.
 * STOP does not wait. Returns the command's result (0 or -1). */
int morphd_worker_call(morphd_worker_t *w, morphd_worker_cmd_t cmd,
                       morphd_service_t **svcs, size_t n,
                       morphd_errors_t *errs);

/* Closes every connection still open (after the shutdown timeout). */
void morphd_worker_abort_all(morphd_worker_t *w);

/* After the loop has ended (and the thread joined): frees the rest. */
void morphd_worker_free(morphd_worker_t *w);

#endif
