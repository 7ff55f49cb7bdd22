/*
 * service.h -- a running service on one worker: its settings, its chain and
 * its counters; and the message path every transport shares: run a message
 * through the chain and turn the outcome into reply bytes, counted and
 * logged the same way for every transport. The message path knows no
 * listener or transport type: transports call it with a morphd_conn_t.
 */
#ifndef MORPHD_SERVICE_H
#define MORPHD_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "engine/chain.h"
#include "conf/config.h"
#include "engine/conn.h"
#include "engine/stats.h"
#include "codec/codec.h"
#include "codec/http.h"
#include "codec/ws.h"

typedef struct morphd_service morphd_service_t;

/* A service is reference-counted: one reference while it is part of the
 * current configuration, one per open listener and one per TCP connection
 * accepted for it. A connection keeps the service (chain, options) it was
 * accepted under, so a reload never changes a connection mid-stream. */
struct morphd_service {
    const morphd_service_conf_t *conf;
    morphd_chain_t *chain;
    /* the service's framing on this worker: conf->codec, and a codec
     * plugin's instance (chain->codec) bound to it (codec.h) */
    morphd_codec_t codec;
    morphd_buf_t codec_scratch;
    /* its http:// endpoints' codec (whatever its framing) and the
     * buffer of a chunked body */
    morphd_codec_t http_codec;
    morphd_buf_t http_scratch;
    morphd_http_exchange_t http_exchange; /* the request served now */
    /* the codec of its http:// connections after a WebSocket handshake
     * (codec/ws.h; whole messages are unmasked into http_scratch) */
    morphd_codec_t ws_codec;
    /* tls://: its generation's context (a morphd_tls_ctx_t, tls.h), or
     * NULL: the message path itself never looks at it */
    struct ssl_ctx_st *tls;
    morphd_stats_t *stats;       /* shared by every service of this name */
    morphd_stats_t **stats_head; /* the registry it is in */
    /* this worker's lane of stats: only the loop this service runs on
     * adds to it (MORPHD_LANE_ADD), every message's counts go there */
    morphd_stats_counts_t *counts;
    size_t refs;
    bool retired;    /* no longer in the current configuration */
    size_t n_conns;  /* TCP connections open on it */
    unsigned worker; /* the worker's index */
    /* the worker's transport state: buffers, its stream connections
     * (listener.h; set by the worker, NULL for a service not on one) */
    struct morphd_io *io;
    const char *file; /* the configuration file, for messages */
    /* the server's access log (NULL: off), set before the workers run */
    struct morphd_access_log *const *access_log;
    bool access_log_udp;
    /* set by the owner: runs when the service is destroyed (the server
     * releases the configuration it came from), and when its last
     * connection has closed (the worker may be waiting for that) */
    void (*on_destroy)(void *arg);
    void *on_destroy_arg;
    void (*on_conns_gone)(morphd_service_t *svc);
    void *owner;
    /* every live service of the worker, current or retired */
    morphd_service_t **all, *prev, *next;
};

void morphd_service_ref(morphd_service_t *svc);
/* Drops a reference; a retired service with none left is destroyed. */
void morphd_service_unref(morphd_service_t *svc);
/* Frees the service now (its chain, once no job holds it). */
void morphd_service_destroy(morphd_service_t *svc);

/* A transport opened or closed a connection of the service. */
void morphd_service_conn_opened(morphd_service_t *svc);
void morphd_service_conn_closed(morphd_service_t *svc);

/* A transform taking this long is logged as a warning. */
#define MORPHD_SLOW_MESSAGE_MS 100

typedef struct morphd_reply {
    int status;      /* how it went: MORPHD_RUN_* (engine/chain.h) */
    uint32_t flags;  /* MORPH_REPLY_* the plugins set */
    bool datagram;   /* UDP: send a datagram even when the reply is empty */
    size_t len;      /* bytes appended, the frame's included */
    bool counted;    /* counted in messages_in (a stream's end call is
                        not): the access log counts the same */
} morphd_reply_t;

/* Runs one message (MORPH_MSG_* flags) through the service's chain for
 * `conn`, appending the reply to `out`, framed as `frame` says (what the
 * codec found with the message; &morphd_frame_none: as it is). */
void morphd_service_handle(morphd_service_t *svc, morphd_conn_t *conn,
                           const unsigned char *msg, size_t len,
                           uint32_t flags, const morphd_frame_t *frame,
                           morphd_buf_t *out, morphd_reply_t *rep);

/* The same for the outcome of a job (job_done): appends its reply,
 * framed as the job's frame says, to `out`, counting and logging as morphd_service_handle does. */
void morphd_service_finish(morphd_service_t *svc, const morphd_result_t *r,
                           morphd_buf_t *out, morphd_reply_t *rep);

#endif
