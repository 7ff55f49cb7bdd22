/*
 * stream_conn.h -- what the three files of the stream transports (tcp://,
 * tls://, unix://) share: the connection, its session, and the steps one
 * file takes for another. Internal to net/: nothing outside the stream
 * transports includes it.
 *  - listener_stream.c: the listeners, accepting and admission (limits,
 *    rates, per-source counts);
 *  - stream_proxy.c: the PROXY protocol opening, before a connection is
 *    the client's;
 *  - stream_io.c: a connection's I/O: reading, framing, the message path,
 *    writing, backpressure, closing, and the loop's list of connections
 *    (the idle sweep, the drain, shutdown).
 */
#ifndef MORPHD_STREAM_CONN_H
#define MORPHD_STREAM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "codec/codec.h"
#include "net/listener.h"
#include "net/listener_unix.h"
#include "net/service.h"

typedef struct stream_session stream_session_t;

/* access_log: what the connection's line will say (made at accept when
 * the log is on). */
typedef struct conn_log {
    uint64_t started_ms; /* uv_now at accept */
    uint64_t bytes_in, bytes_out, messages;
    const char *end;     /* how it ended; NULL: the client closed */
    struct sockaddr_storage client;
    long long uid, pid;  /* unix:// */
} conn_log_t;

/* proxy_protocol: the client's addresses from the header, and the header
 * while it arrives in pieces (proxy_on_read). */
typedef struct proxy_state {
    bool done;  /* the header has been read */
    bool local; /* it gave no addresses: the connection's own stand */
    struct sockaddr_storage src, dst;
    unsigned char *partial; /* MORPHD_PROXY_MAX bytes, while split */
    size_t partial_len;
} proxy_state_t;

typedef struct morphd_stream_conn {
    stream_session_t *s;
    uint32_t last_active : 31; /* uv_now() of the last read or write,
                                  mod 2^31 ms (24 days; idle_timeout <= 1) */
    uint32_t closing : 1;      /* uv_close called */
    /* its place in its loop's list (morphd_io_t.stream_conns) from accept
     * to the end of its close. The reply bytes queued and not yet written
     * are libuv's own count, h.stream.write_queue_size (queued()). */
    uint32_t listed : 30;
    uint32_t reading : 1;   /* uv_read_start is on */
    uint32_t paused : 1;    /* not reading: the client does not read */
    /* Last, so that a TCP connection is allocated without a pipe's extra
     * bytes (conn_size). data: the service it was accepted under (a ref),
     * set at accept. */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe; /* unix:// connections only */
    } h;
} stream_conn_t;

static inline size_t conn_size(uv_handle_type type)
{
    return offsetof(stream_conn_t, h) +
           (type == UV_NAMED_PIPE ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
}

static inline stream_conn_t *conn_of(const void *handle)
{
    return (stream_conn_t *)((char *)handle - offsetof(stream_conn_t, h));
}

void stream_free_conn(uv_handle_t *h);

/* The loop's list is an array: a connection knows its index (`listed`,
 * 1-based: 0 is not listed), and leaving moves the last one into its
 * place. 30 bits of index: a billion connections a loop. */
#define LISTED_MAX ((1u << 30) - 1)

/* Makes room for one more connection in the list, before it is accepted,
 * so that listing it cannot fail. Returns false when out of memory. */
bool stream_reserve_listing(morphd_io_t *io);

void stream_list_conn(stream_conn_t *c, morphd_io_t *io);

void stream_unlist_conn(stream_conn_t *c, morphd_io_t *io);

/* Reply bytes handed to libuv and not yet written. */
static inline size_t queued(const stream_conn_t *c)
{
    return c->h.stream.write_queue_size;
}

#define ACTIVE_MASK 0x7fffffffu
#define NOW31(loop) ((uint32_t)uv_now(loop) & ACTIVE_MASK)

/* malloc gives 264 bytes in a 272-byte chunk; 8 more would cost 16 */
_Static_assert(offsetof(stream_conn_t, h) + sizeof(uv_tcp_t) <= 264,
               "keep idle connections small");

#define QUEUED_MAX ((1u << 30) - 1)

struct stream_session {
    void **states;          /* the plugins' (chain->n), or NULL */
    morphd_decoder_t decoder; /* a frame split across reads */
    bool codec_open;          /* a codec plugin's conn_open ran (its state
                                 is decoder.state) */
    morphd_buf_t held;      /* input read while a message was in flight */
    size_t held_off;
    morphd_job_t *job;      /* the message in flight */
    unsigned char source[16];
    bool has_source;        /* counted per source address */
    bool states_open;       /* the chain's conn_open ran */
    bool eof;               /* the client has finished sending */
    int eof_step;           /* 0: last line, 1: end pass, 2: done */
    bool finishing;         /* no more input; close once written */
    bool shutting;          /* uv_shutdown queued */
    morphd_tls_t *tls;      /* tls://: the connection's TLS */
    const morphd_codec_t *codec; /* http://: its codec, not the service's
                                    (after a WebSocket handshake, ws's:
                                    its decoder.state is then the
                                    connection's morphd_ws_conn_t) */
    uint32_t request_at;    /* http://: NOW31 when the request whose head
                               is not whole yet began (accept, or its first
                               byte); 0: none (http_request_timeout) */
    bool tls_ready;         /* its handshake has completed */
    bool detecting;         /* detect: its protocol not told yet (the
                               first bytes wait in `held`) */
    uint32_t detect_at;     /* NOW31 of an ambiguous prefix; 0: none */
    uint32_t accepted_at;   /* NOW31 at accept: tls_handshake_timeout,
                               proxy_timeout */
    proxy_state_t *proxy;   /* behind a PROXY-protocol balancer */
    conn_log_t *log;        /* access_log is on */
};

typedef struct stream_listener {
    union { /* first: on_connection finds the listener from it */
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } server;
    morphd_listener_t *l;
    bool closing;
    morphd_unix_file_t file; /* unix://: the socket file it made, if any */
} stream_listener_t;

typedef struct write_req {
    uv_write_t req;
    unsigned char data[];
} write_req_t;

static inline morphd_service_t *conn_svc(const stream_conn_t *c)
{
    return c->h.handle.data;
}

static inline bool closing(const stream_conn_t *c) { return c->closing; }

/* A uv_buf_t, without a call into libuv for it. */
static inline uv_buf_t buf_of(const void *data, size_t len)
{
    uv_buf_t b;
    b.base = (char *)data;
    b.len = len;
    return b;
}

static inline bool is_unix(const stream_conn_t *c)
{
    return c->h.handle.type == UV_NAMED_PIPE;
}

int stream_conn_fd(const stream_conn_t *c);

/* The client process of a unix:// connection (SO_PEERCRED). */
bool stream_peer_cred(const stream_conn_t *c, struct ucred *cred);

/* The client's and the local address a PROXY header gave, or NULL. */
static inline const proxy_state_t *proxied(const stream_conn_t *c)
{
    const proxy_state_t *ps = c->s ? c->s->proxy : NULL;
    return ps != NULL && ps->done && !ps->local ? ps : NULL;
}

/* "tcp://1.2.3.4:5678", "unix client uid 1000 pid 42", for logs ("a
 * client" once the address is gone). */
const char *stream_peer_text(const stream_conn_t *c, char *buf, size_t size);

stream_session_t *stream_session_of(stream_conn_t *c);

/* access_log: records why the connection ends (the first reason given). */
static inline void ended(stream_conn_t *c, const char *why)
{
    if (c->s != NULL && c->s->log != NULL && c->s->log->end == NULL)
        c->s->log->end = why;
}

/* --- the steps one file takes for another ------------------------------ */

/* stream_io.c */
void stream_conn_close(stream_conn_t *c);
void stream_start_reading(stream_conn_t *c);
/* A read after the PROXY opening: through TLS on tls://, else as it is. */
void stream_dispatch_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf);
/* The connection is the client's: the plugins that open per-connection
 * state do so now. Returns false after closing. */
bool stream_open_conn(stream_conn_t *c);
void stream_drain_conns(morphd_io_t *io, unsigned recent);
void stream_abort_conns(morphd_io_t *io);
void stream_sweep_conns(morphd_io_t *io);

/* listener_stream.c: admission */
void stream_source_key(const stream_conn_t *c, unsigned char key[16]);
bool stream_within_rate(const stream_conn_t *c, const unsigned char key[16]);
bool stream_admit_source(stream_conn_t *c, const unsigned char key[16]);

/* stream_proxy.c */
void stream_proxy_on_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf);

#endif
