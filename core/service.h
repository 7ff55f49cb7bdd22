/*
 * service.h -- a running service: its configuration, its transform chain,
 * its listeners and its counters, all on one event loop.
 */
#ifndef MORPHD_SERVICE_H
#define MORPHD_SERVICE_H

#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "chain.h"
#include "config.h"
#include "frontend.h"

/* What every listener of one loop shares: one read buffer and one set of
 * scratch buffers, because a loop handles one read at a time. */
typedef struct morphd_loop_ctx {
    uv_loop_t *loop;
    unsigned char *read_buf;
    size_t read_buf_size;
    morphd_scratch_t scratch;
    morphd_buf_t reply; /* the replies to one read, written at once */
} morphd_loop_ctx_t;

typedef struct morphd_counters {
    uint64_t accepted;          /* TCP connections */
    uint64_t messages_in;       /* lines, chunks and datagrams */
    uint64_t failed;            /* messages a plugin failed */
    uint64_t oversized;         /* lines or datagrams over max_message */
    uint64_t datagrams_dropped; /* oversized, or replies that could not be queued */
} morphd_counters_t;

struct morphd_service {
    const morphd_service_conf_t *conf;
    const char *config_path;
    morphd_chain_t *chain;
    morphd_loop_ctx_t *ctx;
    morphd_listener_t *listeners;
    size_t n_listeners;
    size_t n_open; /* listeners not yet fully closed */
    morphd_counters_t counters;
    void (*on_all_closed)(morphd_service_t *svc); /* set by the server */
    void *owner;
};

#define MORPHD_READ_BUF_SIZE (64 * 1024)

/* Runs one message through the service's chain, appending the output and
 * `ending` to ctx->reply. Returns 0; MORPHD_MSG_FAILED when a plugin failed
 * the message (logged and counted; nothing is appended, so it is not
 * answered); or -1 when the reply buffer cannot grow (out of memory). */
#define MORPHD_MSG_FAILED 1
int morphd_service_handle(morphd_service_t *svc, void **states,
                          const unsigned char *msg, size_t len,
                          uint32_t flags, const char *ending);

#endif
