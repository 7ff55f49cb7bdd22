/*
 * listener_tcp.c -- the TCP front end. Each read is framed (stream or line),
 * run through the chain, and all replies to that read are written with one
 * write. Backpressure: when a client does not read its replies and they pile
 * up past max_pending_output, morphd stops reading from that client until
 * half of them have drained. Limits: max_connections and
 * max_connections_per_source refuse new connections at accept; idle_timeout
 * closes connections that have gone silent, found by a sweep over a list
 * kept in order of last activity.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "frontend.h"
#include "log.h"
#include "service.h"

typedef struct tcp_conn tcp_conn_t;

typedef struct tcp_listener {
    uv_tcp_t server;
    uv_timer_t sweep; /* closes idle connections */
    morphd_listener_t *l;
    tcp_conn_t *oldest, *newest; /* by last activity */
    size_t n_conns;
    bool server_open;
    bool sweep_open;
    bool sweep_closing;
    bool closing;
} tcp_listener_t;

struct tcp_conn {
    uv_tcp_t handle; /* first: the handle's address is the connection's */
    tcp_listener_t *tl;
    morphd_service_t *svc; /* the service it was accepted under (a ref) */
    tcp_conn_t *prev, *next;  /* the listener's activity list */
    uint64_t last_active;     /* uv_now() of the last read or write */
    morphd_framer_t framer;
    size_t pending; /* reply bytes handed to uv_write, not yet written */
    struct sockaddr_in6 peer; /* or a sockaddr_in, which is smaller */
    bool reading;
    bool eof;      /* no more input: the client finished or we gave up */
    bool shutting; /* uv_shutdown queued */
    bool closing;
    bool states_open; /* the chain's conn_open succeeded */
    bool admitted;    /* counted in the service's open connections */
    void *states[]; /* per-plugin connection state, when the chain has any */
};

typedef struct write_req {
    uv_write_t req;
    size_t len;
    unsigned char data[];
} write_req_t;

/* "tcp://1.2.3.4:5678", for logs. */
static const char *peer_text(const tcp_conn_t *c, char *buf, size_t size)
{
    morphd_endpoint_format(MORPHD_TCP, (const struct sockaddr *)&c->peer, buf,
                           size);
    return buf;
}

/* --- the activity list ----------------------------------------------------- */

static void list_remove(tcp_listener_t *tl, tcp_conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        tl->oldest = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        tl->newest = c->prev;
    c->prev = c->next = NULL;
}

static void list_append(tcp_listener_t *tl, tcp_conn_t *c)
{
    c->prev = tl->newest;
    c->next = NULL;
    if (tl->newest)
        tl->newest->next = c;
    else
        tl->oldest = c;
    tl->newest = c;
}

static void touch(tcp_conn_t *c)
{
    c->last_active = uv_now(c->handle.loop);
    if (c->tl->newest != c) {
        list_remove(c->tl, c);
        list_append(c->tl, c);
    }
}

/* --- closing ----------------------------------------------------------------- */

static void on_sweep_closed(uv_handle_t *h);

/* A closed listener is gone once its last connection has ended: then its
 * sweep timer is closed, and once both handles are, it is freed. */
static void listener_maybe_gone(tcp_listener_t *tl)
{
    if (!tl->closing || tl->n_conns > 0)
        return;
    if (tl->sweep_open && !tl->sweep_closing) {
        tl->sweep_closing = true;
        uv_close((uv_handle_t *)&tl->sweep, on_sweep_closed);
    }
    if (tl->server_open || tl->sweep_open)
        return;
    morphd_listener_t *l = tl->l;
    free(tl);
    l->impl = NULL;
    morphd_listener_closed(l);
}

static void on_conn_closed(uv_handle_t *h)
{
    tcp_conn_t *c = (tcp_conn_t *)h;
    tcp_listener_t *tl = c->tl;
    morphd_service_t *svc = c->svc;
    char peer[80];
    if (c->states_open)
        morphd_chain_conn_close(svc->chain, c->states);
    if (c->admitted)
        morphd_stats_release(svc->stats, (struct sockaddr *)&c->peer);
    morphd_framer_free(&c->framer);
    list_remove(tl, c);
    tl->n_conns--;
    if (morphd_log_enabled(MORPH_LOG_DEBUG))
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s closed", svc->conf->name,
                   peer_text(c, peer, sizeof peer));
    free(c);
    morphd_service_unref(svc);
    listener_maybe_gone(tl);
}

static void conn_close(tcp_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->handle, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status; /* closing either way */
    tcp_conn_t *c = req->data;
    free(req);
    conn_close(c);
}

/* No more input will be read: close once every pending reply is written.
 * uv_shutdown is queued behind the pending writes, so it does that. */
static void conn_finish(tcp_conn_t *c)
{
    if (c->closing || c->shutting)
        return;
    c->eof = true;
    c->shutting = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->handle);
        c->reading = false;
    }
    uv_shutdown_t *req = malloc(sizeof *req); /* rare: not kept per conn */
    if (req == NULL) {
        conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, (uv_stream_t *)&c->handle, on_shutdown) != 0) {
        free(req);
        conn_close(c);
    }
}

/* --- reading and writing ------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tcp_conn_t *c = (tcp_conn_t *)h;
    morphd_loop_ctx_t *ctx = c->svc->ctx;
    /* One buffer per loop: read_cb consumes it before the next alloc. */
    *buf = uv_buf_init((char *)ctx->read_buf, (unsigned)ctx->read_buf_size);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    tcp_conn_t *c = req->data;
    c->pending -= w->len;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED && morphd_log_enabled(MORPH_LOG_DEBUG)) {
            char peer[80];
            morphd_log(MORPH_LOG_DEBUG, "%s: write failed: %s",
                       peer_text(c, peer, sizeof peer), uv_strerror(status));
        }
        conn_close(c);
        return;
    }
    if (!c->closing)
        touch(c); /* a client that reads is not idle */
    size_t high = c->svc->conf->max_pending_output;
    if (!c->reading && !c->eof && !c->closing && c->pending <= high / 2) {
        if (uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read) == 0)
            c->reading = true;
    }
}

/* Sends bytes: straight to the socket when nothing is queued, the rest
 * copied into one write request. Returns 0, or -1 after closing. */
static int conn_send(tcp_conn_t *c, const unsigned char *data, size_t len)
{
    if (len == 0 || c->closing)
        return 0;
    size_t done = 0;
    if (c->pending == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&c->handle, &b, 1);
        if (n >= 0) {
            done = (size_t)n;
        } else if (n != UV_EAGAIN) {
            conn_close(c);
            return -1;
        }
    }
    if (done == len)
        return 0;
    size_t rest = len - done;
    write_req_t *w = malloc(sizeof *w + rest);
    if (w == NULL) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory queueing a "
                   "reply; closing the connection", c->svc->conf->name);
        conn_close(c);
        return -1;
    }
    w->len = rest;
    memcpy(w->data, data + done, rest);
    w->req.data = c;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)rest);
    if (uv_write(&w->req, (uv_stream_t *)&c->handle, &b, 1, on_write) != 0) {
        free(w);
        conn_close(c);
        return -1;
    }
    c->pending += rest;
    return 0;
}

static int on_line(void *arg, const unsigned char *line, size_t len,
                   const char *ending)
{
    tcp_conn_t *c = arg;
    int rc = morphd_service_handle(c->svc, c->states, line, len, 0, ending);
    return rc == MORPHD_MSG_FAILED ? 0 : rc; /* go on with the next line */
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tcp_conn_t *c = (tcp_conn_t *)stream;
    morphd_service_t *svc = c->svc;
    morphd_loop_ctx_t *ctx = svc->ctx;
    const morphd_service_conf_t *conf = svc->conf;
    const unsigned char *data = (const unsigned char *)buf->base;
    bool finish = false;
    int rc = 0;
    char peer[80];

    ctx->reply.len = 0;
    if (nread > 0) {
        touch(c);
        if (conf->framing == MORPHD_FRAMING_STREAM) {
            rc = morphd_service_handle(svc, c->states, data, (size_t)nread,
                                       MORPH_MSG_CHUNK, "");
            if (rc == MORPHD_MSG_FAILED)
                rc = 0;
        } else {
            rc = morphd_framer_feed(&c->framer, data, (size_t)nread, on_line,
                                    c);
            if (rc == MORPHD_FRAMER_TOO_LONG) {
                MORPHD_STAT_ADD(svc->stats, errors, 1);
                morphd_log(MORPH_LOG_WARN,
                           "service %s: %s sent a line longer than "
                           "max_message (%zu bytes); closing the connection "
                           "after the replies before it",
                           conf->name, peer_text(c, peer, sizeof peer),
                           conf->max_message);
                finish = true;
                rc = 0;
            }
        }
    } else if (nread == UV_EOF) {
        /* The client is done sending: answer what is left, then close. */
        if (conf->framing == MORPHD_FRAMING_STREAM) {
            rc = morphd_service_handle(svc, c->states, NULL, 0,
                                       MORPH_MSG_CHUNK | MORPH_MSG_END, "");
            if (rc == MORPHD_MSG_FAILED)
                rc = 0;
        } else {
            rc = morphd_framer_finish(&c->framer, on_line, c);
        }
        finish = true;
    } else if (nread < 0) {
        if (morphd_log_enabled(MORPH_LOG_DEBUG))
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s: read failed: %s",
                       conf->name, peer_text(c, peer, sizeof peer),
                       uv_strerror((int)nread));
        conn_close(c);
        return;
    }

    if (rc != 0) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                   "connection", conf->name);
        conn_close(c);
        return;
    }
    if (conn_send(c, ctx->reply.data, ctx->reply.len) != 0)
        return;
    if (finish) {
        conn_finish(c);
    } else if (c->pending > conf->max_pending_output && c->reading) {
        uv_read_stop(stream);
        c->reading = false;
        if (morphd_log_enabled(MORPH_LOG_DEBUG))
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s is not reading; "
                       "pausing input at %zu pending bytes", conf->name,
                       peer_text(c, peer, sizeof peer), c->pending);
    }
}

/* --- idle connections ------------------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
    tcp_listener_t *tl = t->data;
    uint64_t now = uv_now(t->loop);
    for (tcp_conn_t *c = tl->oldest, *next; c != NULL; c = next) {
        next = c->next;
        unsigned idle = c->svc->conf->idle_timeout_ms;
        if (c->closing || idle == 0)
            continue;
        if (now - c->last_active < idle)
            break; /* the rest were active more recently */
        MORPHD_STAT_ADD(c->svc->stats, connections_idle_closed, 1);
        if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
            char peer[80];
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s idle for %u ms; "
                       "closing", c->svc->conf->name,
                       peer_text(c, peer, sizeof peer), idle);
        }
        /* Silent and not reading its replies either: close at once.
         * Silent but caught up: write what is left, then close. */
        if (c->pending > 0 || c->shutting)
            conn_close(c);
        else
            conn_finish(c);
        c->last_active = now; /* finish gets one more period */
    }
}

/* How often to look for idle connections: a quarter of the timeout, so a
 * connection is closed at most 25% late, between 50 ms and 1 s. */
static void start_sweep(tcp_listener_t *tl)
{
    unsigned idle = tl->l->service->conf->idle_timeout_ms;
    if (idle == 0) {
        uv_timer_stop(&tl->sweep);
        return;
    }
    uint64_t every = idle / 4;
    every = every < 50 ? 50 : every > 1000 ? 1000 : every;
    uv_timer_start(&tl->sweep, on_sweep, every, every);
}

/* --- accepting -------------------------------------------------------------- */

static void on_connection(uv_stream_t *server, int status)
{
    tcp_listener_t *tl = server->data;
    morphd_service_t *svc = tl->l->service;
    const morphd_service_conf_t *conf = svc->conf;
    if (status < 0) {
        morphd_log(MORPH_LOG_WARN, "service %s: %s: accept failed: %s",
                   conf->name, tl->l->bound, uv_strerror(status));
        return;
    }
    size_t n_states = svc->chain->has_conn_hooks ? svc->chain->n : 0;
    tcp_conn_t *c = calloc(1, sizeof *c + n_states * sizeof(void *));
    if (c == NULL) {
        /* Accept and drop it: libuv stops accepting on a listener until
         * the pending connection is taken. */
        uv_tcp_t *tmp = malloc(sizeof *tmp);
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory accepting a "
                   "client; dropping it", conf->name);
        if (tmp != NULL) {
            uv_tcp_init(server->loop, tmp);
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
        }
        return;
    }
    c->tl = tl;
    c->svc = svc;
    morphd_service_ref(svc);
    uv_tcp_init(server->loop, &c->handle);
    if (uv_accept(server, (uv_stream_t *)&c->handle) != 0) {
        morphd_service_unref(svc);
        uv_close((uv_handle_t *)&c->handle, (uv_close_cb)free);
        return;
    }
    list_append(tl, c);
    tl->n_conns++;
    c->last_active = uv_now(server->loop);
    int len = sizeof c->peer;
    if (uv_tcp_getpeername(&c->handle, (struct sockaddr *)&c->peer, &len) != 0)
        c->peer.sin6_family = AF_UNSPEC;

    char peer[80];
    if (!morphd_stats_admit(svc->stats, (struct sockaddr *)&c->peer,
                            conf->max_connections,
                            conf->max_connections_per_source)) {
        if (morphd_log_enabled(MORPH_LOG_DEBUG))
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s refused: connection "
                       "limit reached", conf->name,
                       peer_text(c, peer, sizeof peer));
        conn_close(c); /* at once: nothing read, nothing written */
        return;
    }
    c->admitted = true;
    morphd_framer_init(&c->framer, conf->max_message);

    if (n_states > 0) {
        char err[256];
        if (morphd_chain_conn_open(svc->chain, c->states, err, sizeof err) !=
            0) {
            morphd_log(MORPH_LOG_WARN, "service %s: %s: %s", conf->name,
                       peer_text(c, peer, sizeof peer), err);
            conn_close(c); /* conn_open undid itself */
            return;
        }
        c->states_open = true;
    }
    uv_tcp_nodelay(&c->handle, 1);
    if (uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
    if (morphd_log_enabled(MORPH_LOG_DEBUG))
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s connected", conf->name,
                   peer_text(c, peer, sizeof peer));
}

/* --- the front end ------------------------------------------------------------ */

static void on_server_closed(uv_handle_t *h)
{
    tcp_listener_t *tl = h->data;
    tl->server_open = false;
    listener_maybe_gone(tl);
}

static void on_sweep_closed(uv_handle_t *h)
{
    tcp_listener_t *tl = h->data;
    tl->sweep_open = false;
    listener_maybe_gone(tl);
}

static int tcp_open(morphd_listener_t *l, char *err, size_t err_size)
{
    tcp_listener_t *tl = calloc(1, sizeof *tl);
    if (tl == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    tl->l = l;
    uv_loop_t *loop = l->service->ctx->loop;
    uv_tcp_init(loop, &tl->server);
    tl->server.data = tl;
    const struct sockaddr *addr = (const struct sockaddr *)&l->endpoint.addr;
    unsigned flags = addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    int rc;
    if (l->reuseport) {
        int fd = morphd_listener_socket(l, SOCK_STREAM);
        rc = fd < 0 ? fd : uv_tcp_open(&tl->server, fd);
    } else {
        rc = uv_tcp_bind(&tl->server, addr, flags);
    }
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&tl->server, 511, on_connection);
    if (rc != 0) {
        snprintf(err, err_size, "%s: cannot listen: %s", l->endpoint.text,
                 uv_strerror(rc));
        uv_close((uv_handle_t *)&tl->server, (uv_close_cb)free);
        return -1;
    }
    tl->server_open = true;
    uv_timer_init(loop, &tl->sweep);
    tl->sweep.data = tl;
    tl->sweep_open = true;
    uv_unref((uv_handle_t *)&tl->sweep); /* never keeps the loop alive */
    int len = sizeof l->bound_addr;
    uv_tcp_getsockname(&tl->server, (struct sockaddr *)&l->bound_addr, &len);
    morphd_endpoint_format(MORPHD_TCP, (struct sockaddr *)&l->bound_addr,
                           l->bound, sizeof l->bound);
    l->impl = tl;
    start_sweep(tl);
    return 0;
}

static void tcp_close(morphd_listener_t *l)
{
    tcp_listener_t *tl = l->impl;
    if (tl == NULL || tl->closing)
        return;
    tl->closing = true;
    /* the sweep goes on for the connections that remain */
    uv_close((uv_handle_t *)&tl->server, on_server_closed);
    listener_maybe_gone(tl);
}

static void tcp_drain(morphd_listener_t *l)
{
    tcp_listener_t *tl = l->impl;
    if (tl == NULL)
        return;
    /* Stop reading; each connection closes once its replies are written. */
    for (tcp_conn_t *c = tl->oldest, *next; c != NULL; c = next) {
        next = c->next;
        conn_finish(c);
    }
}

static void tcp_abort(morphd_listener_t *l)
{
    tcp_listener_t *tl = l->impl;
    if (tl == NULL)
        return;
    tcp_close(l);
    for (tcp_conn_t *c = tl->oldest, *next; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
    }
}

static void tcp_rebind(morphd_listener_t *l)
{
    tcp_listener_t *tl = l->impl;
    tl->l = l; /* new connections get l's service; old ones keep theirs */
    start_sweep(tl);
}

const morphd_frontend_t morphd_frontend_tcp = {
    .name = "tcp",
    .open = tcp_open,
    .close = tcp_close,
    .drain = tcp_drain,
    .abort = tcp_abort,
    .rebind = tcp_rebind,
};
