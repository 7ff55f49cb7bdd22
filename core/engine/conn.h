/*
 * conn.h -- a connection as the message path sees it, whatever carries it:
 * a TCP connection, or one UDP datagram. The transport fills one per call
 * (on the stack: nothing is allocated for a message answered at once) and
 * gives the message path a table of callbacks for what only it can do.
 * A message that is answered later (a job: deferred by a plugin, or run on
 * the thread pool) takes a copy, which the transport updates through
 * `transport` = NULL when the connection goes before the job ends.
 */
#ifndef MORPHD_CONN_H
#define MORPHD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/endpoint.h" /* morphd_sockaddr_len */

typedef struct morphd_conn morphd_conn_t;
typedef struct morphd_job morphd_job_t;
typedef struct morphd_result morphd_result_t;

typedef struct morphd_cred {
    int64_t uid, gid, pid;
} morphd_cred_t;


typedef struct morphd_conn_ops {
    const char *transport; /* "tcp", "udp", "unix": what plugins are told */
    /* Fills the peer's and the local address (AF_UNSPEC when unknown). */
    void (*addresses)(const morphd_conn_t *c, struct sockaddr_storage *peer,
                      struct sockaddr_storage *local);
    /* unix://: the client process's user, group and pid (SO_PEERCRED).
     * Returns 0, or -1 when unknown. NULL for other transports. */
    int (*credentials)(const morphd_conn_t *c, morphd_cred_t *cred);
    /* The connection's array of per-plugin states, allocated now if it has
     * none (a plugin set its state lazily); NULL when out of memory. */
    void **(*states)(morphd_conn_t *c);
    /* Whether a message of `bytes` may become a job (deferred or run on
     * the thread pool): 0 yes, -1 no (too many in flight). NULL: never. */
    int (*job_admit)(morphd_conn_t *c, size_t bytes);
    /* The message became `job`: the transport keeps it, and stops feeding
     * the connection until job_done. Returns 0, or -1 (out of memory):
     * the message then fails. */
    int (*job_start)(morphd_conn_t *c, morphd_job_t *job);
    /* The job has ended: `r` is its reply or failure. The transport sends
     * it and goes on with the connection. Not called when `transport` is
     * NULL (the connection went first). */
    void (*job_done)(morphd_conn_t *c, morphd_job_t *job,
                     const morphd_result_t *r);
} morphd_conn_ops_t;

struct morphd_conn {
    const morphd_conn_ops_t *ops;
    void *transport;              /* the transport's own; NULL once gone */
    void *owner;                  /* the transport's (its service) */
    void **states;                /* per-plugin states; NULL: none yet */
    const struct sockaddr *peer;  /* when known without a system call */
    size_t request_len;           /* UDP: the datagram's payload */
    const struct sockaddr *local; /* when known (a job off the loop) */
    const morphd_cred_t *cred;    /* unix://: likewise */
    /* udp:// behind a PROXY header: the balancer the datagram came
     * through, where its reply goes (peer is the client); else NULL */
    const struct sockaddr *via;
    size_t request_wire; /* UDP: its size on the wire (IP and UDP headers,
                            a PROXY header, the payload) */
};

#endif
