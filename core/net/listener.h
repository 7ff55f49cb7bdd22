/*
 * listener.h -- the interface every transport implements. A listener is one
 * endpoint of one service. The stream transports -- tcp://, tls:// and
 * unix:// (listener_stream.c) -- and udp:// (listener_udp.c) each have a
 * table of morphd_listener_ops_t; another transport is one more table.
 *
 * Errors in this layer (net/): libuv's, since nearly all of it wraps
 * libuv: 0 or a negative UV_* error (a bare system call's -errno, the same
 * numbers). What an operator reads gets a phrase too: a listener's open
 * fills `err`; a TLS context, made from the configuration, adds to a
 * morphd_errors_t as conf/ does. A message's outcome comes up from the
 * engine as MORPHD_RUN_*.
 */
#ifndef MORPHD_LISTENER_H
#define MORPHD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/buf.h"
#include "base/endpoint.h"
#include "net/tls.h"

/* What the transports of one loop share: buffers used one read at a time,
 * and the list of the loop's stream connections. The worker owns one and
 * each of its services points at it (morphd_service_t.io). The loop's own
 * `data` is left alone: a plugin may use the loop (plugin.h). */
typedef struct morphd_io {
    unsigned char *read_buf;
    size_t read_buf_size;
    morphd_buf_t reply; /* the replies to one read, written at once */
    /* tls://: ciphertext in and out, and plaintext decrypted from one read
     * (allocated with the loop's first TLS connection) */
    morphd_tls_io_t tls;
    unsigned char *tls_plain;
    /* every tcp://, tls:// and unix:// connection accepted on the loop
     * and not yet closed (listener_stream.c): the idle sweep, the drain
     * and shutdown walk this list, never the loop's handles, which hold
     * the plugins' handles too */
    struct morphd_stream_conn **stream_conns;
    size_t n_stream_conns, cap_stream_conns;
    /* logs the rest of a burst of connections dropped at accept when its
     * window ends (listener_stream.c); the worker inits, unrefs and closes
     * it with its other timers, its data the io */
    uv_timer_t drops_timer;
} morphd_io_t;

#define MORPHD_READ_BUF_SIZE (64 * 1024)

typedef struct morphd_listener morphd_listener_t;
typedef struct morphd_service morphd_service_t;

typedef struct morphd_listener_ops {
    const char *name;
    /* Binds the endpoint and starts serving on `loop`. Returns 0, or -1
     * with a reason in err (e.g. "address already in use"). */
    int (*open)(morphd_listener_t *l, uv_loop_t *loop, char *err,
                size_t err_size);
    /* Stops taking new work: no new connections or datagrams. Connections
     * already accepted go on being served. Calls l->on_closed(l) once the
     * listener itself is gone (its connections may live on: they belong
     * to their loop). */
    void (*close)(morphd_listener_t *l);
    /* Drops whatever is still pending (after the shutdown timeout). */
    void (*abort)(morphd_listener_t *l);

    /* Connections outlive the listener that accepted them (a reload may
     * close it); they belong to the loop and are listed in its morphd_io_t.
     * These act on every connection of this transport in `io`, and are
     * NULL for a transport without connections. */
    /* A pass of a stop's drain: close each quiet connection once its
     * replies are written. Busy ones are left reading: a message in
     * flight or read in part, input not yet read, or activity (accept,
     * read, write) in the last `recent` ms. recent 0: the last pass; stop
     * reading and close each once its replies are written. */
    void (*drain_conns)(morphd_io_t *io, unsigned recent);
    /* Close at once, dropping what is unsent. */
    void (*abort_conns)(morphd_io_t *io);
    /* Close the ones idle longer than their service's idle_timeout. */
    void (*sweep_conns)(morphd_io_t *io);
    /* The open listener was handed over to `l` by a reload (l->impl is the
     * old listener's): point the transport's state at `l`. The socket stays
     * open throughout, so nothing queued on it is lost. */
    void (*rebind)(morphd_listener_t *l);
} morphd_listener_ops_t;

struct morphd_listener {
    const morphd_listener_ops_t *ops;
    morphd_service_t *service;
    morphd_endpoint_t endpoint; /* as configured (a worker other than the
                                   first gets port 0 resolved here) */
    char bound[MORPHD_ENDPOINT_TEXT]; /* as bound (port 0 resolved) */
    struct sockaddr_storage bound_addr;
    bool reuseport;             /* bind with SO_REUSEPORT (several workers) */
    int fd;                     /* the listening descriptor, once open */
    /* unix://, a worker after the first: the first one's listener, whose
     * descriptor this one listens on too (server.c sets it) */
    const morphd_listener_t *share;
    /* fd is a socket systemd passed (activation.h): open adopts it */
    bool adopted;
    void *impl;                 /* the transport's own state */
    /* set by the owner (the worker): called once the listener is closed */
    void (*on_closed)(morphd_listener_t *l);
    void *owner;
    /* during a reload (worker.c): the running listener this one takes
     * over, and whether a running one is taken */
    morphd_listener_t *from;
    bool taken;
};

/* Creates a socket bound to l->endpoint with SO_REUSEPORT (and IPv6-only
 * for IPv6), for the transports to adopt when l->reuseport is set. Returns
 * the descriptor, or a negative libuv error. */
int morphd_listener_socket(const morphd_listener_t *l, int type);

extern const morphd_listener_ops_t morphd_listener_tcp;
extern const morphd_listener_ops_t morphd_listener_udp;
extern const morphd_listener_ops_t morphd_listener_unix;
extern const morphd_listener_ops_t morphd_listener_tls;

/* The listener implementation of a transport. */
const morphd_listener_ops_t *morphd_listener_ops_for(morphd_transport_t t);

#endif
