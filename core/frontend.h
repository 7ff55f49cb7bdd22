/*
 * frontend.h -- the interface every transport implements. A listener is one
 * endpoint of one service; TCP (listener_tcp.c) and UDP (listener_udp.c)
 * are two implementations of morphd_frontend_t, and a third transport is
 * one more file with one more of these tables.
 */
#ifndef MORPHD_FRONTEND_H
#define MORPHD_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>

#include "endpoint.h"

typedef struct morphd_listener morphd_listener_t;
typedef struct morphd_service morphd_service_t;

typedef struct morphd_frontend {
    const char *name;
    /* Binds the endpoint and starts serving on the service's loop. Returns
     * 0, or -1 with a reason in err (e.g. "address already in use"). */
    int (*open)(morphd_listener_t *l, char *err, size_t err_size);
    /* Stops taking new work: no new connections or datagrams. Connections
     * already accepted go on being served. Calls morphd_listener_closed(l)
     * once nothing of the listener (connections included) is left. */
    void (*close)(morphd_listener_t *l);
    /* Ends the connections of a closed listener gracefully: stop reading,
     * write the replies already computed, then close. */
    void (*drain)(morphd_listener_t *l);
    /* Drops whatever is still pending (after the shutdown timeout). */
    void (*abort)(morphd_listener_t *l);
    /* The open listener was handed over to `l` by a reload (l->impl is the
     * old listener's): point the transport's state at `l`. The socket stays
     * open throughout, so nothing queued on it is lost. */
    void (*rebind)(morphd_listener_t *l);
} morphd_frontend_t;

struct morphd_listener {
    const morphd_frontend_t *frontend;
    morphd_service_t *service;
    morphd_endpoint_t endpoint; /* as configured (a worker other than the
                                   first gets port 0 resolved here) */
    char bound[80];             /* as bound (port 0 resolved) */
    struct sockaddr_storage bound_addr;
    bool reuseport;             /* bind with SO_REUSEPORT (several workers) */
    void *impl;                 /* the transport's own state */
    /* during a reload (worker.c): the running listener this one takes
     * over, and whether a running one is taken */
    morphd_listener_t *from;
    bool taken;
};

/* Creates a socket bound to l->endpoint with SO_REUSEPORT (and IPv6-only
 * for IPv6), for the front ends to adopt when l->reuseport is set. Returns
 * the descriptor, or a negative libuv error. */
int morphd_listener_socket(const morphd_listener_t *l, int type);

extern const morphd_frontend_t morphd_frontend_tcp;
extern const morphd_frontend_t morphd_frontend_udp;

/* The front end for a transport. */
const morphd_frontend_t *morphd_frontend_for(morphd_transport_t t);

/* Called by a front end when a closed listener is entirely gone. */
void morphd_listener_closed(morphd_listener_t *l);

#endif
