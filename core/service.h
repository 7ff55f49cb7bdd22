/*
 * service.h -- a running service: its configuration, its transform chain,
 * its listeners and its counters, all on one event loop.
 */
#ifndef MORPHD_SERVICE_H
#define MORPHD_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "chain.h"
#include "config.h"
#include "frontend.h"
#include "stats.h"

/* What every listener of one loop shares: one read buffer and one set of
 * scratch buffers, because a loop handles one read at a time. */
typedef struct morphd_loop_ctx {
    uv_loop_t *loop;
    unsigned char *read_buf;
    size_t read_buf_size;
    morphd_scratch_t scratch;
    morphd_buf_t reply; /* the replies to one read, written at once */
} morphd_loop_ctx_t;

/* One loaded configuration. Services point into it, so it lives until
 * the last service made from it is gone -- after a reload, that is when
 * the last connection accepted under it has closed. */
typedef struct morphd_generation {
    morphd_config_t cfg;
    size_t refs; /* services alive */
} morphd_generation_t;

/* A service is reference-counted: one reference while it is part of the
 * current configuration, one per open listener and one per TCP connection
 * accepted for it. A connection keeps the service (chain, options) it was
 * accepted under, so a reload never changes a connection mid-stream. */
struct morphd_service {
    const morphd_service_conf_t *conf;
    morphd_generation_t *gen;
    morphd_chain_t *chain;
    morphd_loop_ctx_t *ctx;
    morphd_listener_t *listeners;
    size_t n_listeners;
    size_t refs;
    bool retired; /* no longer in the current configuration */
    morphd_stats_t *stats; /* shared by every service of this name */
    morphd_stats_t **stats_head; /* the registry it is in */
    void *owner; /* the worker (worker.h) that adopted it */
    /* every live service, current or retired: the server's list */
    morphd_service_t **all, *prev, *next;
};

void morphd_service_ref(morphd_service_t *svc);
/* Drops a reference; a retired service with none left is destroyed. */
void morphd_service_unref(morphd_service_t *svc);
/* Frees the service now (its chain, and its generation when it was the
 * last one of it). */
void morphd_service_destroy(morphd_service_t *svc);

#define MORPHD_READ_BUF_SIZE (64 * 1024)

/* A transform taking this long is logged as a warning. */
#define MORPHD_SLOW_MESSAGE_MS 100

/* Runs one message through the service's chain, appending the output and
 * `ending` to ctx->reply. Returns 0; MORPHD_MSG_FAILED when a plugin failed
 * the message (logged and counted; nothing is appended, so it is not
 * answered); or -1 when the reply buffer cannot grow (out of memory). */
#define MORPHD_MSG_FAILED 1
int morphd_service_handle(morphd_service_t *svc, void **states,
                          const unsigned char *msg, size_t len,
                          uint32_t flags, const char *ending);

#endif
