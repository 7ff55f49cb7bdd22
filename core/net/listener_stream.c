/*
 * listener_stream.c -- the stream transports: tcp://, tls:// and unix://.
 * They differ only in how the listening socket is made (listener_unix.c has
 * the socket file's part), what a client's address is, and, for tls://,
 * that bytes pass through TLS (tls.c) between the socket and the message
 * path: decrypted after each read, encrypted in conn_send. Each read is framed (stream or line),
 * run through the message path, and all replies to that read are written
 * with one write. Backpressure: when a client does not read its replies
 * and they pile up past max_pending_output, morphd stops reading from that
 * client until half of them have drained. A message in flight (a plugin
 * answers later, or runs on the thread pool) holds the connection's later
 * input back, so replies keep their order. Limits: max_connections and
 * max_connections_per_source refuse new connections at accept;
 * idle_timeout closes connections that have gone silent.
 *
 * Memory: an idle TCP connection is one allocation of 264 bytes (libuv's
 * handle is 248 of them; a unix:// one's is 264, its connection 280), and
 * a pointer in its loop's list.
 * Whatever only some connections need -- plugin
 * states, a line split across reads, input held back, the per-source key
 * -- lives in a session allocated when first needed. Connections belong to
 * their loop, not to the listener that accepted them: the loop's
 * morphd_io_t lists them, for the idle sweep, the drain and shutdown. The
 * loop's own handle queue is not theirs to walk: a plugin's handles are in
 * it too.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/access_log.h"
#include "engine/framing.h"
#include "net/listener.h"
#include "net/listener_unix.h"
#include "base/log.h"
#include "net/proxy_protocol.h"
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

static void free_conn(uv_handle_t *h) { free(conn_of(h)); }

/* The loop's list is an array: a connection knows its index (`listed`,
 * 1-based: 0 is not listed), and leaving moves the last one into its
 * place. 30 bits of index: a billion connections a loop. */
#define LISTED_MAX ((1u << 30) - 1)

/* Makes room for one more connection in the list, before it is accepted,
 * so that listing it cannot fail. Returns false when out of memory. */
static bool reserve_listing(morphd_io_t *io)
{
    if (io->n_stream_conns < io->cap_stream_conns)
        return true;
    if (io->cap_stream_conns >= LISTED_MAX)
        return false;
    size_t cap = io->cap_stream_conns ? io->cap_stream_conns * 2 : 64;
    if (cap > LISTED_MAX)
        cap = LISTED_MAX;
    stream_conn_t **grown = realloc(io->stream_conns, cap * sizeof *grown);
    if (grown == NULL)
        return false;
    io->stream_conns = grown;
    io->cap_stream_conns = cap;
    return true;
}

static void list_conn(stream_conn_t *c, morphd_io_t *io)
{
    io->stream_conns[io->n_stream_conns++] = c;
    c->listed = (uint32_t)io->n_stream_conns;
}

static void unlist_conn(stream_conn_t *c, morphd_io_t *io)
{
    if (c->listed == 0)
        return;
    size_t at = c->listed - 1;
    stream_conn_t *last = io->stream_conns[--io->n_stream_conns];
    io->stream_conns[at] = last;
    last->listed = (uint32_t)(at + 1);
    c->listed = 0;
}

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
    morphd_framer_t framer; /* line framing: a line split across reads */
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
    bool tls_ready;         /* its handshake has completed */
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

static int conn_fd(const stream_conn_t *c)
{
    uv_os_fd_t fd;
    return uv_fileno(&c->h.handle, &fd) == 0 ? fd : -1;
}

/* The client process of a unix:// connection (SO_PEERCRED). */
static bool peer_cred(const stream_conn_t *c, struct ucred *cred)
{
    socklen_t len = sizeof *cred;
    int fd = conn_fd(c);
    return fd >= 0 &&
           getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0;
}

/* The client's and the local address a PROXY header gave, or NULL. */
static inline const proxy_state_t *proxied(const stream_conn_t *c)
{
    const proxy_state_t *ps = c->s ? c->s->proxy : NULL;
    return ps != NULL && ps->done && !ps->local ? ps : NULL;
}

/* "tcp://1.2.3.4:5678", "unix client uid 1000 pid 42", for logs ("a
 * client" once the address is gone). */
static const char *peer_text(const stream_conn_t *c, char *buf, size_t size)
{
    if (is_unix(c)) {
        struct ucred cred;
        if (peer_cred(c, &cred))
            snprintf(buf, size, "unix client uid %u pid %d",
                     (unsigned)cred.uid, (int)cred.pid);
        else
            snprintf(buf, size, "a unix client");
        return buf;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (proxied(c) != NULL)
        memcpy(&ss, &proxied(c)->src, sizeof ss);
    else if (getpeername(conn_fd(c), (struct sockaddr *)&ss, &len) != 0) {
        snprintf(buf, size, "a client");
        return buf;
    }
    morphd_endpoint_format(c->s != NULL && c->s->tls ? MORPHD_TLS : MORPHD_TCP,
                           (struct sockaddr *)&ss, buf, size);
    return buf;
}

static stream_session_t *session(stream_conn_t *c)
{
    if (c->s == NULL) {
        c->s = calloc(1, sizeof *c->s);
        if (c->s != NULL)
            morphd_framer_init(&c->s->framer, conn_svc(c)->conf->max_message);
    }
    return c->s;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void process(stream_conn_t *c);

/* access_log: records why the connection ends (the first reason given). */
static inline void ended(stream_conn_t *c, const char *why)
{
    if (c->s != NULL && c->s->log != NULL && c->s->log->end == NULL)
        c->s->log->end = why;
}

/* --- the connection as the message path sees it ------------------------------ */

static void stream_addresses(const morphd_conn_t *mc, struct sockaddr_storage *peer,
                          struct sockaddr_storage *local)
{
    const stream_conn_t *c = mc->transport;
    if (c == NULL)
        return;
    const proxy_state_t *ps = proxied(c);
    if (ps != NULL) {
        memcpy(peer, &ps->src, sizeof *peer);
        memcpy(local, &ps->dst, sizeof *local);
        return;
    }
    int fd = conn_fd(c);
    socklen_t len = sizeof *peer;
    getpeername(fd, (struct sockaddr *)peer, &len);
    len = sizeof *local;
    getsockname(fd, (struct sockaddr *)local, &len);
}

static int unix_credentials(const morphd_conn_t *mc, morphd_cred_t *out)
{
    const stream_conn_t *c = mc->transport;
    struct ucred cred;
    if (c == NULL || !peer_cred(c, &cred))
        return -1;
    out->uid = cred.uid;
    out->gid = cred.gid;
    out->pid = cred.pid;
    return 0;
}

static void **stream_states(morphd_conn_t *mc)
{
    stream_conn_t *c = mc->transport;
    stream_session_t *s = c ? session(c) : NULL;
    if (s == NULL)
        return NULL;
    if (s->states == NULL)
        s->states = calloc(conn_svc(c)->chain->n, sizeof *s->states);
    return s->states;
}

static int stream_job_admit(morphd_conn_t *mc, size_t bytes)
{
    (void)bytes; /* one message in flight per connection bounds it */
    stream_conn_t *c = mc->transport;
    return c != NULL && session(c) != NULL ? 0 : -1;
}

static int stream_job_start(morphd_conn_t *mc, morphd_job_t *job)
{
    stream_conn_t *c = mc->transport;
    c->s->job = job; /* job_admit made the session */
    return 0;
}

static int conn_send(stream_conn_t *c, const unsigned char *data, size_t len);
static int tls_flush(stream_conn_t *c);
static void conn_finish(stream_conn_t *c);
static void conn_close(stream_conn_t *c);

static void stream_job_done(morphd_conn_t *mc, morphd_job_t *job,
                         const morphd_result_t *r)
{
    stream_conn_t *c = mc->transport;
    morphd_service_t *svc = conn_svc(c);
    (void)job;
    c->s->job = r->status == MORPHD_RUN_PENDING ? r->job : NULL;
    morphd_io_t *io = svc->io;
    io->reply.len = 0;
    morphd_reply_t rep;
    morphd_service_finish(svc, r, &io->reply, &rep);
    if (rep.status == MORPHD_RUN_NOMEM) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                   "connection", svc->conf->name);
        conn_close(c);
        return;
    }
    if (conn_send(c, io->reply.data, io->reply.len) != 0)
        return;
    if ((rep.flags & MORPH_REPLY_CLOSE) ||
        (rep.status == MORPHD_RUN_FAILED && svc->conf->framing ==
                                                MORPHD_FRAMING_STREAM)) {
        conn_finish(c);
        return;
    }
    if (c->s->job == NULL)
        process(c);
}

static const morphd_conn_ops_t tcp_conn_ops = {
    .transport = "tcp",
    .addresses = stream_addresses,
    .states = stream_states,
    .job_admit = stream_job_admit,
    .job_start = stream_job_start,
    .job_done = stream_job_done,
};

static const morphd_conn_ops_t tls_conn_ops = {
    .transport = "tls",
    .addresses = stream_addresses,
    .states = stream_states,
    .job_admit = stream_job_admit,
    .job_start = stream_job_start,
    .job_done = stream_job_done,
};

static const morphd_conn_ops_t unix_conn_ops = {
    .transport = "unix",
    .addresses = stream_addresses,
    .credentials = unix_credentials,
    .states = stream_states,
    .job_admit = stream_job_admit,
    .job_start = stream_job_start,
    .job_done = stream_job_done,
};

static void conn_view(stream_conn_t *c, morphd_conn_t *mc)
{
    mc->ops = is_unix(c)                 ? &unix_conn_ops
              : c->s != NULL && c->s->tls ? &tls_conn_ops
                                          : &tcp_conn_ops;
    mc->transport = c;
    mc->owner = c->h.handle.data;
    mc->states = c->s ? c->s->states : NULL;
    const proxy_state_t *ps = proxied(c);
    mc->peer = ps ? (const struct sockaddr *)&ps->src : NULL;
    mc->request_len = 0;
    mc->local = ps ? (const struct sockaddr *)&ps->dst : NULL;
    mc->cred = NULL;
    mc->via = NULL;
}

/* --- closing ----------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    stream_conn_t *c = conn_of(h);
    morphd_service_t *svc = conn_svc(c);
    stream_session_t *s = c->s;
    if (s != NULL && s->log != NULL) {
        conn_log_t *lg = s->log;
        morphd_access_entry_t e = {
            .transport = is_unix(c) ? "unix" : s->tls ? "tls" : "tcp",
            .service = svc->conf->name,
            .client = lg->client.ss_family != AF_UNSPEC
                          ? (const struct sockaddr *)&lg->client : NULL,
            .uid = lg->uid, .pid = lg->pid,
            .bytes_in = lg->bytes_in, .bytes_out = lg->bytes_out,
            .messages = lg->messages,
            .duration_ms = uv_now(h->loop) - lg->started_ms,
            .end = lg->end ? lg->end : "closed",
        };
        morphd_access_log_write(*svc->access_log, &e);
        free(lg);
    }
    if (s != NULL) {
        if (s->job != NULL) /* it takes the states along, to close them */
            morphd_job_abandon(s->job, s->states);
        else if (s->states != NULL) {
            morphd_chain_conn_close(svc->chain, s->states);
            free(s->states);
        }
        morphd_framer_free(&s->framer);
        morphd_buf_free(&s->held);
        if (s->tls != NULL)
            morphd_tls_free(s->tls);
        if (s->proxy != NULL) {
            free(s->proxy->partial);
            free(s->proxy);
        }
    }
    morphd_stats_release(svc->stats, s && s->has_source ? s->source : NULL);
    unlist_conn(c, svc->io);
    free(s);
    free(c);
    morphd_service_conn_closed(svc);
    morphd_service_unref(svc);
}

static void conn_close(stream_conn_t *c)
{
    if (closing(c))
        return;
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s closed",
                   conn_svc(c)->conf->name, peer_text(c, peer, sizeof peer));
    }
    c->closing = 1;
    uv_close(&c->h.handle, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status; /* closing either way */
    stream_conn_t *c = req->data;
    free(req);
    conn_close(c);
}

static void stop_reading(stream_conn_t *c)
{
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = 0;
    }
}

/* No more input will be read: close once every pending reply is written
 * (and a message in flight has been answered). uv_shutdown is queued
 * behind the pending writes, so it does that. */
static void conn_finish(stream_conn_t *c)
{
    if (closing(c))
        return;
    stream_session_t *s = session(c);
    if (s == NULL) {
        conn_close(c);
        return;
    }
    stop_reading(c);
    s->finishing = true;
    if (s->job != NULL || s->shutting)
        return; /* stream_job_done comes back here */
    s->shutting = true;
    if (s->tls != NULL && s->tls_ready) { /* a clean end: close_notify */
        morphd_tls_close_notify(s->tls);
        if (tls_flush(c) != 0)
            return;
    }
    uv_shutdown_t *req = malloc(sizeof *req); /* rare: not kept per conn */
    if (req == NULL) {
        conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, &c->h.stream, on_shutdown) != 0) {
        free(req);
        conn_close(c);
    }
}

/* --- reading and writing ------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    morphd_io_t *io = conn_svc(conn_of(h))->io;
    /* One buffer per loop: on_read consumes it before the next alloc. */
    *buf = buf_of(io->read_buf, io->read_buf_size);
}

/* Input held back while a message is in flight is read on (so that a
 * client that resets its connection is noticed at once, and its message
 * cancelled), up to this much; then reading pauses until it is used. */
static size_t held_limit(const stream_conn_t *c)
{
    size_t m = conn_svc(c)->conf->max_message + 2;
    return m > MORPHD_READ_BUF_SIZE ? m : MORPHD_READ_BUF_SIZE;
}

static size_t held_waiting(const stream_session_t *s)
{
    return s ? s->held.len - s->held_off : 0;
}

static void start_reading(stream_conn_t *c)
{
    if (c->reading || c->paused || closing(c) ||
        (c->s && (c->s->finishing || c->s->eof ||
                  held_waiting(c->s) >= held_limit(c))))
        return;
    if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
        c->reading = 1;
}

static int send_raw(stream_conn_t *c, const unsigned char *data, size_t len);

/* Sends the ciphertext TLS has produced (handshake, alerts, records). */
static int tls_flush(stream_conn_t *c)
{
    morphd_tls_io_t *tio = &conn_svc(c)->io->tls;
    if (tio->out.len == 0)
        return 0;
    int rc = send_raw(c, tio->out.data, tio->out.len);
    tio->out.len = 0;
    return rc;
}

/* Sends reply bytes: through TLS on a tls:// connection. Returns 0, or -1
 * after closing. */
static int conn_send(stream_conn_t *c, const unsigned char *data, size_t len)
{
    if (c->s != NULL && c->s->log != NULL)
        c->s->log->bytes_out += len;
    if (c->s == NULL || c->s->tls == NULL)
        return send_raw(c, data, len);
    if (len == 0 || closing(c))
        return 0;
    if (morphd_tls_write(c->s->tls, data, len) != 0) {
        conn_svc(c)->io->tls.out.len = 0;
        conn_close(c);
        return -1;
    }
    return tls_flush(c);
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    stream_conn_t *c = req->data;
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
    if (closing(c))
        return;
    c->last_active = NOW31(c->h.handle.loop); /* it reads: not idle */
    size_t high = conn_svc(c)->conf->max_pending_output;
    if (c->paused && queued(c) <= high / 2) {
        c->paused = 0;
        start_reading(c);
    }
}

/* Sends bytes as they are: straight to the socket when nothing is queued,
 * the rest copied into one write request. Returns 0, or -1 after closing. */
static int send_raw(stream_conn_t *c, const unsigned char *data, size_t len)
{
    if (len == 0 || closing(c))
        return 0;
    size_t done = 0;
    if (queued(c) == 0) {
        uv_buf_t b = buf_of(data, len);
        int n = uv_try_write(&c->h.stream, &b, 1);
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
    morphd_service_t *svc = conn_svc(c);
    if (rest > QUEUED_MAX - queued(c)) {
        morphd_log(MORPH_LOG_WARN, "service %s: over 1 GiB of replies queued "
                   "for one client; closing the connection", svc->conf->name);
        conn_close(c);
        return -1;
    }
    write_req_t *w = malloc(sizeof *w + rest);
    if (w == NULL) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory queueing a "
                   "reply; closing the connection", svc->conf->name);
        conn_close(c);
        return -1;
    }
    memcpy(w->data, data + done, rest);
    w->req.data = c;
    uv_buf_t b = buf_of(w->data, rest);
    if (uv_write(&w->req, &c->h.stream, &b, 1, on_write) != 0) {
        free(w);
        conn_close(c);
        return -1;
    }
    return 0;
}

/* What one pass over some input found. */
typedef struct feed_ctx {
    stream_conn_t *c;
    morphd_service_t *svc;
    morphd_conn_t conn;
    morphd_buf_t *reply;
    bool pending; /* a message went in flight: stop */
    bool finish;  /* no more input is wanted: close once written */
    bool nomem;
} feed_ctx_t;

/* Takes a message's outcome; returns whether to go on with the input. */
static inline __attribute__((always_inline)) bool take(feed_ctx_t *x, const morphd_reply_t *rep)
{
    if (x->c->s != NULL && x->c->s->log != NULL && rep->counted)
        x->c->s->log->messages++;
    switch (rep->status) {
    case MORPHD_RUN_NOMEM:
        x->nomem = true;
        return false;
    case MORPHD_RUN_PENDING:
        x->pending = true;
        return false;
    case MORPHD_RUN_FAILED:
        /* in a stream, a lost chunk would be a silent gap: end it there */
        if (x->svc->conf->framing == MORPHD_FRAMING_STREAM) {
            ended(x->c, "plugin_failed");
            x->finish = true;
            return false;
        }
        return true;
    }
    if (rep->flags & MORPH_REPLY_CLOSE) {
        ended(x->c, "plugin_closed");
        x->finish = true;
        return false;
    }
    return true;
}

static int on_line(void *arg, const unsigned char *line, size_t len,
                   const char *ending)
{
    feed_ctx_t *x = arg;
    morphd_reply_t rep;
    morphd_service_handle(x->svc, &x->conn, line, len, 0, ending, x->reply,
                          &rep);
    return take(x, &rep) ? 0 : 1;
}

/* Acts on what the framer returned: a line over max_message ends the
 * connection once the replies before it are sent. */
static void framer_result(feed_ctx_t *x, int rc)
{
    if (rc == MORPHD_FRAMER_TOO_LONG) {
        char peer[80];
        MORPHD_STAT_ADD(x->svc->stats, errors, 1);
        morphd_log(MORPH_LOG_WARN, "service %s: %s sent a line longer than "
                   "max_message (%zu bytes); closing the connection after "
                   "the replies before it", x->svc->conf->name,
                   peer_text(x->c, peer, sizeof peer),
                   x->svc->conf->max_message);
        ended(x->c, "too_long");
        x->finish = true;
    } else if (rc == -1) {
        x->nomem = true;
    }
}

/* Runs input through framing and the chain. Returns how much of it was
 * used: all of it, unless a message went in flight or the input ended. */
static inline __attribute__((always_inline)) size_t feed(feed_ctx_t *x, morphd_framer_t *framer,
                   const unsigned char *data, size_t n)
{
    const morphd_service_conf_t *conf = x->svc->conf;
    if (conf->framing == MORPHD_FRAMING_STREAM) {
        morphd_reply_t rep;
        morphd_service_handle(x->svc, &x->conn, data, n, MORPH_MSG_CHUNK, "",
                              x->reply, &rep);
        take(x, &rep);
        return n;
    }
    size_t used;
    framer_result(x, morphd_framer_feed(framer, data, n, on_line, x, &used));
    return used;
}

/* Sends what a pass produced and acts on how it ended. Returns false when
 * the connection is closing. */
static inline __attribute__((always_inline)) bool after_feed(feed_ctx_t *x)
{
    stream_conn_t *c = x->c;
    if (x->nomem) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                   "connection", x->svc->conf->name);
        conn_close(c);
        return false;
    }
    if (conn_send(c, x->reply->data, x->reply->len) != 0)
        return false;
    x->reply->len = 0;
    if (x->finish) {
        conn_finish(c);
        return false;
    }
    return true;
}

/* Keeps input that could not be used yet (a message is in flight). */
static bool hold(stream_conn_t *c, const unsigned char *data, size_t n)
{
    if (n == 0)
        return true;
    stream_session_t *s = session(c);
    return s != NULL && morphd_buf_append(&s->held, data, n) == 0;
}

/* The end of the input, run through the chain step by step (each step may
 * put a message in flight): a last line without newline, then the end
 * call for plugins that want one. */
static void run_eof(feed_ctx_t *x)
{
    stream_session_t *s = x->c->s;
    const morphd_service_conf_t *conf = x->svc->conf;
    morphd_reply_t rep;
    if (conf->framing == MORPHD_FRAMING_STREAM) {
        s->eof_step = 2;
        morphd_service_handle(x->svc, &x->conn, NULL, 0,
                              MORPH_MSG_CHUNK | MORPH_MSG_END, "", x->reply,
                              &rep);
        take(x, &rep);
        return;
    }
    if (s->eof_step == 0) {
        s->eof_step = 1;
        int rc = morphd_framer_finish(&s->framer, on_line, x);
        if (rc != 0) {
            framer_result(x, rc);
            return;
        }
    }
    if (s->eof_step == 1) {
        s->eof_step = 2;
        if (x->svc->chain->line_end) {
            morphd_service_handle(x->svc, &x->conn, NULL, 0, MORPH_MSG_END, "",
                                  x->reply, &rep);
            take(x, &rep);
        }
    }
}

/* Goes on with a connection after a message in flight ended: input held
 * back, then the end of the input, then reading again. */
static void process(stream_conn_t *c)
{
    stream_session_t *s = c->s;
    feed_ctx_t x = {.c = c, .svc = conn_svc(c)};
    x.reply = &x.svc->io->reply;
    x.reply->len = 0;
    while (!closing(c) && s->job == NULL && !s->finishing) {
        conn_view(c, &x.conn);
        if (s->held_off < s->held.len) {
            size_t used = feed(&x, &s->framer, s->held.data + s->held_off,
                               s->held.len - s->held_off);
            s->held_off += used;
            if (s->held_off == s->held.len)
                s->held_off = s->held.len = 0;
        } else if (s->eof && s->eof_step < 2) {
            run_eof(&x);
        } else {
            break;
        }
        if (!after_feed(&x))
            return;
        if (x.pending)
            return; /* stream_job_done brings us back */
    }
    if (closing(c) || s->job != NULL)
        return;
    if (s->eof || s->finishing)
        conn_finish(c);
    else
        start_reading(c);
}

/* Whether the peer reset the connection: its end of input may show as an
 * EOF once the error was reported, and unlike a half-close (the textbook
 * client, still waiting for its reply) nobody waits for a reply then. */
static bool peer_reset(const stream_conn_t *c)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    return !is_unix(c) && /* a unix:// peer that closes has no reset */
           getsockopt(conn_fd(c), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           ti.tcpi_state == TCP_CLOSE;
}

/* Input that arrives while a message is in flight waits its turn. */
static void wait_turn(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    stream_session_t *s = c->s;
    if (nread > 0) {
        c->last_active = NOW31(c->h.handle.loop);
        MORPHD_STAT_ADD(conn_svc(c)->stats, bytes_in, (size_t)nread);
        if (s->log != NULL)
            s->log->bytes_in += (size_t)nread;
        if (!hold(c, (const unsigned char *)buf->base, (size_t)nread)) {
            morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                       "connection", conn_svc(c)->conf->name);
            conn_close(c);
            return;
        }
        if (held_waiting(s) >= held_limit(c))
            stop_reading(c);
        return;
    }
    if (nread == UV_EOF && !peer_reset(c)) { /* answered in turn, closed */
        s->eof = true;
        stop_reading(c);
        return;
    }
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s: read failed while a "
                   "message was in flight: %s", conn_svc(c)->conf->name,
                   peer_text(c, peer, sizeof peer), uv_strerror((int)nread));
    }
    ended(c, "reset");
    conn_close(c); /* gone: its message is cancelled */
}

/* What was read (plaintext, on a tls:// connection), or its end. */
static void on_plain(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    uv_stream_t *stream = &c->h.stream;
    if (c->s != NULL && (c->s->job != NULL || held_waiting(c->s) > 0)) {
        if (nread != 0)
            wait_turn(c, nread, buf);
        return;
    }
    feed_ctx_t x = {.c = c, .svc = conn_svc(c)};
    x.reply = &x.svc->io->reply;
    x.reply->len = 0;
    conn_view(c, &x.conn);

    if (nread > 0) {
        const unsigned char *data = (const unsigned char *)buf->base;
        c->last_active = NOW31(stream->loop);
        /* one count for the service and the access log: what was read */
        MORPHD_STAT_ADD(x.svc->stats, bytes_in, (size_t)nread);
        if (c->s != NULL && c->s->log != NULL)
            c->s->log->bytes_in += (size_t)nread;
        size_t used;
        if (c->s != NULL) {
            used = feed(&x, &c->s->framer, data, (size_t)nread);
        } else if (x.svc->conf->framing == MORPHD_FRAMING_STREAM) {
            used = feed(&x, NULL, data, (size_t)nread);
        } else {
            /* most reads: whole lines, no session; a partial line left
             * over moves into one */
            morphd_framer_t f;
            morphd_framer_init(&f, x.svc->conf->max_message);
            used = feed(&x, &f, data, (size_t)nread);
            if (f.partial.len > 0 || f.partial.data != NULL) {
                stream_session_t *s = session(c);
                if (s == NULL) {
                    morphd_framer_free(&f);
                    x.nomem = true;
                } else {
                    s->framer.partial = f.partial;
                }
            }
        }
        if (x.pending && !hold(c, data + used, (size_t)nread - used))
            x.nomem = true;
    } else if (nread == UV_EOF) {
        /* The client is done sending: answer what is left, then close. */
        stop_reading(c);
        stream_session_t *s = session(c);
        if (s == NULL) {
            conn_close(c);
            return;
        }
        s->eof = true;
        run_eof(&x);
        if (!x.pending)
            x.finish = true;
    } else if (nread < 0) {
        ended(c, "reset");
        if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
            char peer[80];
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s: read failed: %s",
                       x.svc->conf->name, peer_text(c, peer, sizeof peer),
                       uv_strerror((int)nread));
        }
        conn_close(c);
        return;
    }
    if (!after_feed(&x) || x.pending)
        return;
    if (queued(c) > x.svc->conf->max_pending_output && c->reading) {
        stop_reading(c);
        c->paused = 1;
        if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
            char peer[80];
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s is not reading; "
                       "pausing input at %zu pending bytes", x.svc->conf->name,
                       peer_text(c, peer, sizeof peer), queued(c));
        }
    }
}

/* A tls:// connection's read: ciphertext through TLS, then the plaintext
 * as any read. A client that is not speaking TLS, sends garbage, asks to
 * renegotiate or ends mid-record is closed and counted; everyone else
 * goes on being served. */
static void tls_on_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    stream_session_t *s = c->s;
    morphd_service_t *svc = conn_svc(c);
    morphd_io_t *io = svc->io;
    if (nread < 0) {
        if (!s->tls_ready) { /* gone before the handshake ended */
            ended(c, "tls_error");
            if (nread == UV_EOF || nread == UV_ECONNRESET)
                MORPHD_STAT_ADD(svc->stats, tls_handshake_failures, 1);
            conn_close(c);
            return;
        }
        on_plain(c, nread, buf); /* EOF without close_notify: as TCP */
        return;
    }
    if (io->tls_plain == NULL &&
        (io->tls_plain = malloc(MORPHD_READ_BUF_SIZE)) == NULL) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                   "connection", svc->conf->name);
        conn_close(c);
        return;
    }
    io->tls.in = (const unsigned char *)buf->base;
    io->tls.in_len = (size_t)nread;
    io->tls.in_owner = c;
    c->last_active = NOW31(c->h.handle.loop);
    for (;;) {
        size_t plain_len;
        bool done;
        char why[256];
        morphd_tls_status_t st =
            morphd_tls_read(s->tls, io->tls_plain, MORPHD_READ_BUF_SIZE,
                            &plain_len, &done, why, sizeof why);
        if (done) {
            s->tls_ready = true;
            MORPHD_STAT_ADD(svc->stats, tls_handshakes, 1);
            if (morphd_tls_resumed(s->tls))
                MORPHD_STAT_ADD(svc->stats, tls_handshakes_resumed, 1);
        }
        if (tls_flush(c) != 0 || closing(c))
            break;
        if (st == MORPHD_TLS_PLAIN) {
            uv_buf_t plain = buf_of(io->tls_plain, plain_len);
            on_plain(c, (ssize_t)plain_len, &plain);
            if (closing(c) || s->finishing)
                break;
            continue;
        }
        if (st == MORPHD_TLS_EOF) {
            on_plain(c, UV_EOF, NULL);
        } else if (st != MORPHD_TLS_MORE) {
            char peer[80];
            ended(c, "tls_error");
            if (st == MORPHD_TLS_RENEGOTIATION)
                MORPHD_STAT_ADD(svc->stats, tls_renegotiations, 1);
            else if (!s->tls_ready)
                MORPHD_STAT_ADD(svc->stats, tls_handshake_failures, 1);
            else
                MORPHD_STAT_ADD(svc->stats, tls_errors, 1);
            if (morphd_log_enabled(MORPH_LOG_DEBUG))
                morphd_log(MORPH_LOG_DEBUG, "service %s: %s: closed: %s",
                           svc->conf->name, peer_text(c, peer, sizeof peer),
                           st == MORPHD_TLS_RENEGOTIATION
                               ? "asked to renegotiate" : why);
            conn_close(c);
        }
        break;
    }
    io->tls.in = NULL;
    io->tls.in_len = 0;
    io->tls.in_owner = NULL;
}

static bool open_conn(stream_conn_t *c);

/* The per-source key of a client: its address (a PROXY header's, when it
 * gave one), or for unix:// its user. */
static void source_key(const stream_conn_t *c, unsigned char key[16])
{
    struct ucred cred;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (is_unix(c)) {
        morphd_stats_source_key_uid(peer_cred(c, &cred) ? cred.uid : (uid_t)-1,
                                    key);
        return;
    }
    if (proxied(c) != NULL)
        memcpy(&ss, &proxied(c)->src, sizeof ss);
    else
        getpeername(conn_fd(c), (struct sockaddr *)&ss, &len);
    morphd_stats_source_key((struct sockaddr *)&ss, key);
}

/* rate_per_source: whether the client of source `key` may connect now
 * (counted when not). */
static bool within_rate(const stream_conn_t *c, const unsigned char key[16])
{
    const morphd_service_conf_t *conf = conn_svc(c)->conf;
    if (conf->rate_per_source == 0)
        return true;
    if (morphd_stats_rate_admit(conn_svc(c)->stats, key, conf->rate_per_source,
                                conf->rate_burst))
        return true;
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s refused: over "
                   "rate_per_source", conf->name,
                   peer_text(c, peer, sizeof peer));
    }
    return false;
}

/* The client's source `key` is known (its PROXY header has been read):
 * count it for max_connections_per_source, and the connection as accepted.
 * Returns false after closing. */
static bool admit_source(stream_conn_t *c, const unsigned char key[16])
{
    morphd_service_t *svc = conn_svc(c);
    stream_session_t *s = c->s;
    uint64_t max = svc->conf->max_connections_per_source;
    if (max == 0) {
        MORPHD_STAT_ADD(svc->stats, connections_accepted, 1);
        return true;
    }
    memcpy(s->source, key, 16);
    if (!morphd_stats_admit_source(svc->stats, s->source, max)) {
        if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
            char peer[80];
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s refused: "
                       "max_connections_per_source reached", svc->conf->name,
                       peer_text(c, peer, sizeof peer));
        }
        ended(c, "limit");
        conn_close(c);
        return false;
    }
    s->has_source = true;
    MORPHD_STAT_ADD(svc->stats, connections_accepted, 1);
    return true;
}

static void dispatch_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf);

/* A connection on a proxy_protocol service: its first bytes are the PROXY
 * header, which may come in pieces. Once whole, the client's address is
 * the connection's, the chain opens for it, and what followed the header
 * is read as the client's first bytes. A connection whose first bytes are
 * not a valid header is closed and counted; none of it reaches a plugin. */
static void proxy_on_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    stream_session_t *s = c->s;
    proxy_state_t *ps = s->proxy;
    morphd_service_t *svc = conn_svc(c);
    char peer[80], why[160];
    if (nread < 0) {
        if (ps->partial_len > 0) { /* a header cut short */
            ended(c, "proxy_invalid");
            MORPHD_STAT_ADD(svc->stats, proxy_invalid, 1);
            if (morphd_log_enabled(MORPH_LOG_DEBUG))
                morphd_log(MORPH_LOG_DEBUG, "service %s: %s: closed in the "
                           "middle of its PROXY header", svc->conf->name,
                           peer_text(c, peer, sizeof peer));
        }
        conn_close(c);
        return;
    }
    c->last_active = NOW31(c->h.handle.loop);
    const unsigned char *data = (const unsigned char *)buf->base;
    size_t n = (size_t)nread, before = ps->partial_len;
    if (before > 0) { /* the header so far, and as much as fits */
        size_t take = MORPHD_PROXY_MAX - before < n ? MORPHD_PROXY_MAX - before
                                                    : n;
        memcpy(ps->partial + before, data, take);
        ps->partial_len += take;
        data = ps->partial;
        n = ps->partial_len;
    }
    morphd_proxy_hdr_t h;
    morphd_proxy_status_t st = morphd_proxy_parse(
        data, n, svc->conf->proxy_protocol, SOCK_STREAM, &h, why, sizeof why);
    if (st == MORPHD_PROXY_MORE) {
        if (before == 0) {
            if ((ps->partial = malloc(MORPHD_PROXY_MAX)) == NULL) {
                conn_close(c);
                return;
            }
            memcpy(ps->partial, data, n);
            ps->partial_len = n;
        }
        return;
    }
    if (st != MORPHD_PROXY_DONE) {
        ended(c, "proxy_invalid");
        MORPHD_STAT_ADD(svc->stats, proxy_invalid, 1);
        if (morphd_log_enabled(MORPH_LOG_DEBUG))
            morphd_log(MORPH_LOG_DEBUG, "service %s: tcp client %s: refused: "
                       "%s", svc->conf->name, peer_text(c, peer, sizeof peer),
                       why);
        conn_close(c);
        return;
    }
    MORPHD_STAT_ADD(svc->stats, proxy_headers, 1);
    ps->done = true;
    ps->local = h.local;
    if (!h.local) {
        ps->src = h.src;
        ps->dst = h.dst;
    }
    free(ps->partial); /* what follows the header is in this read */
    ps->partial = NULL;
    ps->partial_len = 0;
    size_t used = h.len - before; /* of this read: the header's end */
    if (s->log != NULL && !h.local)
        memcpy(&s->log->client, &h.src, sizeof h.src);
    unsigned char key[16] = {0};
    if (svc->conf->rate_per_source != 0 ||
        svc->conf->max_connections_per_source != 0)
        source_key(c, key);
    if (!h.local && !within_rate(c, key)) { /* LOCAL: the balancer's check */
        ended(c, "rate_limited");
        conn_close(c);
        return;
    }
    if (!admit_source(c, key) || !open_conn(c))
        return;
    if (morphd_log_enabled(MORPH_LOG_DEBUG))
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s connected (PROXY v%d%s)",
                   svc->conf->name, peer_text(c, peer, sizeof peer), h.version,
                   h.local ? ", LOCAL" : "");
    if ((size_t)nread > used) {
        uv_buf_t rest = buf_of(buf->base + used, (size_t)nread - used);
        dispatch_read(c, (ssize_t)rest.len, &rest);
    }
}

static void dispatch_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    if (c->s != NULL && c->s->tls != NULL) {
        if (nread != 0)
            tls_on_read(c, nread, buf);
        return;
    }
    on_plain(c, nread, buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    stream_conn_t *c = conn_of(stream);
    if (c->s != NULL && c->s->proxy != NULL && !c->s->proxy->done) {
        if (nread != 0)
            proxy_on_read(c, nread, buf);
        return;
    }
    dispatch_read(c, nread, buf);
}

/* --- the loop's connections ---------------------------------------------------- */

/* Whether a draining connection still has something to be served: a
 * message in flight or read in part, input not yet read (held back, or
 * still in the socket), a TLS handshake or PROXY header under way, or
 * activity in the last `recent` ms (just accepted, its first message maybe
 * on the way; or just answered, its next one maybe). */
static bool drain_busy(stream_conn_t *c, unsigned recent)
{
    const stream_session_t *s = c->s;
    if (s != NULL &&
        (s->job != NULL || held_waiting(s) > 0 || s->framer.partial.len > 0 ||
         (s->tls != NULL && !s->tls_ready) ||
         (s->proxy != NULL && !s->proxy->done)))
        return true;
    int unread = 0;
    int fd = conn_fd(c);
    if (fd >= 0 && ioctl(fd, FIONREAD, &unread) == 0 && unread > 0)
        return true;
    return ((NOW31(c->h.handle.loop) - c->last_active) & ACTIVE_MASK) < recent;
}

static void drain_one(stream_conn_t *c, unsigned recent)
{
    if (closing(c))
        return;
    if (c->s != NULL && (c->s->finishing || c->s->eof))
        return; /* already closing once answered */
    if (recent > 0 && !c->paused && drain_busy(c, recent))
        return; /* served on; the next pass looks again */
    ended(c, "shutdown");
    conn_finish(c);
}

static void abort_one(stream_conn_t *c)
{
    if (closing(c))
        return;
    ended(c, "shutdown");
    conn_close(c);
}

/* Whether a step that must end within `limit` ms of accept (`what`: the
 * PROXY header, the TLS handshake) has not: then it is counted in
 * `counter` and the connection closed. */
static bool setup_timed_out(stream_conn_t *c, uint32_t now, unsigned limit,
                            uint64_t *counter, const char *what,
                            const char *end)
{
    if (((now - c->s->accepted_at) & ACTIVE_MASK) < limit)
        return false;
    ended(c, end);
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s: no %s in %u ms; closing",
                   conn_svc(c)->conf->name, peer_text(c, peer, sizeof peer),
                   what, limit);
    }
    conn_close(c);
    return true;
}

static void sweep_one(stream_conn_t *c, uint32_t now)
{
    if (closing(c))
        return;
    morphd_service_t *svc = conn_svc(c);
    unsigned idle = svc->conf->idle_timeout_ms;
    if (c->s != NULL && c->s->proxy != NULL && !c->s->proxy->done &&
        setup_timed_out(c, now, svc->conf->proxy_timeout_ms,
                        &svc->stats->proxy_timeouts, "PROXY header",
                        "proxy_timeout"))
        return;
    if (c->s != NULL && c->s->tls != NULL && !c->s->tls_ready &&
        setup_timed_out(c, now, svc->conf->tls_handshake_timeout_ms,
                        &svc->stats->tls_handshake_timeouts, "TLS handshake",
                        "tls_timeout"))
        return;
    if (idle == 0 || ((now - c->last_active) & ACTIVE_MASK) < idle)
        return;
    if (c->s != NULL && c->s->job != NULL)
        return; /* waiting for a plugin is not the client being idle */
    MORPHD_STAT_ADD(svc->stats, connections_idle_closed, 1);
    ended(c, "idle");
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s idle for %u ms; closing",
                   svc->conf->name, peer_text(c, peer, sizeof peer), idle);
    }
    /* Silent and not reading its replies either: close at once.
     * Silent but caught up: write what is left, then close. */
    if (queued(c) > 0 || (c->s && c->s->shutting))
        conn_close(c);
    else
        conn_finish(c);
    c->last_active = now; /* finishing gets one more period */
}

/* The walks below close connections as they go: a closed one stays in the
 * list, marked closing, until its close callback, which runs on a later
 * turn of the loop, so the list does not change under a walk. */
static void stream_drain_conns(morphd_io_t *io, unsigned recent)
{
    for (size_t i = 0; i < io->n_stream_conns; i++)
        drain_one(io->stream_conns[i], recent);
}

static void stream_abort_conns(morphd_io_t *io)
{
    for (size_t i = 0; i < io->n_stream_conns; i++)
        abort_one(io->stream_conns[i]);
}

static void stream_sweep_conns(morphd_io_t *io)
{
    if (io->n_stream_conns == 0)
        return;
    uint32_t now = NOW31(io->stream_conns[0]->h.handle.loop);
    for (size_t i = 0; i < io->n_stream_conns; i++)
        sweep_one(io->stream_conns[i], now);
}

/* --- accepting -------------------------------------------------------------- */

/* access_log: the connection's record, with its client as known now (a
 * PROXY header may tell better later). Returns false when out of memory. */
static bool start_log(stream_conn_t *c)
{
    stream_session_t *s = session(c);
    if (s == NULL || (s->log = calloc(1, sizeof *s->log)) == NULL)
        return false;
    s->log->started_ms = uv_now(c->h.handle.loop);
    s->log->uid = s->log->pid = -1;
    struct ucred cred;
    if (is_unix(c)) {
        if (peer_cred(c, &cred)) {
            s->log->uid = cred.uid;
            s->log->pid = cred.pid;
        }
    } else {
        socklen_t len = sizeof s->log->client;
        if (getpeername(conn_fd(c), (struct sockaddr *)&s->log->client,
                        &len) != 0)
            s->log->client.ss_family = AF_UNSPEC;
    }
    return true;
}

/* Closes a connection accepted but not taken on (a limit, out of
 * memory): nothing read, nothing written, nothing counted open. */
static void drop_unopened(stream_conn_t *c)
{
    if (c->s != NULL) {
        free(c->s->proxy);
        free(c->s->log);
    }
    free(c->s);
    c->s = NULL;
    uv_close(&c->h.handle, free_conn);
}

/* Out of descriptors, libuv accepts and closes a connection with a
 * descriptor it keeps in reserve (its "EMFILE trick"), unseen by us. So the
 * last FD_RESERVE descriptors are never given to a connection: one that
 * gets a descriptor among them (the kernel hands out the lowest free one,
 * so all below it are taken) is closed at once, counted and logged. The
 * spare ones leave room for each worker's accept in flight, the log, the
 * admin socket and a reload. */
#define FD_RESERVE 32
static int fd_ceiling = INT_MAX; /* set by the first listener, then read */

static void set_fd_ceiling(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)INT_MAX)
        __atomic_store_n(&fd_ceiling,
                         rl.rlim_cur > 2 * FD_RESERVE
                             ? (int)rl.rlim_cur - FD_RESERVE
                             : (int)rl.rlim_cur / 2,
                         __ATOMIC_RELAXED);
}

/* Connections closed for want of a descriptor or of memory, and not yet
 * logged (atomic), per process: each line says how many since the last. */
static uint64_t drops_nofd, drops_nomem;
static uint64_t drops_window_end_ms; /* atomic: the last line's + 10 s */
static pthread_mutex_t drops_lock = PTHREAD_MUTEX_INITIALIZER;
static char drops_service[128];      /* the last one (a reload frees names) */

static void report_drops(uint64_t now)
{
    uint64_t nofd = __atomic_exchange_n(&drops_nofd, 0, __ATOMIC_RELAXED);
    uint64_t nomem = __atomic_exchange_n(&drops_nomem, 0, __ATOMIC_RELAXED);
    if (nofd == 0 && nomem == 0)
        return;
    __atomic_store_n(&drops_window_end_ms, now + 10000, __ATOMIC_RELAXED);
    char svc[sizeof drops_service];
    pthread_mutex_lock(&drops_lock);
    memcpy(svc, drops_service, sizeof svc);
    pthread_mutex_unlock(&drops_lock);
    if (nomem > 0)
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory: dropped %llu "
                   "connection(s) at accept (connections_dropped)", svc,
                   (unsigned long long)nomem);
    if (nofd > 0) {
        struct rlimit rl = {0};
        getrlimit(RLIMIT_NOFILE, &rl);
        morphd_log(MORPH_LOG_ERROR, "service %s: out of file descriptors "
                   "(limit %llu, the last %d kept in reserve): dropped %llu "
                   "connection(s) at accept since the last such line "
                   "(connections_dropped; at most one line per 10 s); raise "
                   "LimitNOFILE= or lower max_connections", svc,
                   (unsigned long long)rl.rlim_cur, FD_RESERVE,
                   (unsigned long long)nofd);
    }
}

/* Logs the drops since the last line (no descriptor, no memory) once the
 * 10 s window of that line has ended. Returns the ms left of the window
 * when it has not (nothing logged), else 0. Thread-safe. */
static uint64_t report_drops_after_window(void)
{
    uint64_t now = uv_hrtime() / 1000000;
    uint64_t end = __atomic_load_n(&drops_window_end_ms, __ATOMIC_RELAXED);
    if (now < end)
        return end - now;
    report_drops(now);
    return 0;
}

/* The window of the last line has ended (or another loop's line moved it):
 * what dropped meanwhile is logged even if no drop follows. */
static void on_drops_window_end(uv_timer_t *t)
{
    uint64_t left = report_drops_after_window();
    if (left > 0)
        uv_timer_start(t, on_drops_window_end, left, 0);
}

/* Counts a connection closed for want of a descriptor (or of memory). The
 * first of a burst is logged at once; the rest are summed and logged when
 * the window ends, on the loop's drops_timer. */
static void dropped(morphd_service_t *svc, int why, uint64_t n)
{
    n = n ? n : 1; /* libuv dropped it: at least one */
    MORPHD_STAT_ADD(svc->stats, connections_dropped, n);
    pthread_mutex_lock(&drops_lock);
    snprintf(drops_service, sizeof drops_service, "%s", svc->conf->name);
    pthread_mutex_unlock(&drops_lock);
    __atomic_add_fetch(why == UV_ENOMEM ? &drops_nomem : &drops_nofd, n,
                       __ATOMIC_RELAXED);
    uint64_t left = report_drops_after_window();
    uv_timer_t *t = &svc->io->drops_timer;
    if (left > 0 && !uv_is_active((uv_handle_t *)t))
        uv_timer_start(t, on_drops_window_end, left, 0);
}

/* Accepts the pending connection of `server`. Returns it (its data the
 * service, nothing counted yet), or NULL when it could not be taken: out
 * of memory or descriptors (counted and dropped), or gone already. */
static stream_conn_t *accept_conn(uv_stream_t *server, morphd_service_t *svc)
{
    uv_handle_type type = server->type;
    /* room in the loop's list first: listing it later cannot fail */
    stream_conn_t *c = reserve_listing(svc->io) ? calloc(1, conn_size(type))
                                                : NULL;
    if (c == NULL) {
        /* Accept and drop it: libuv stops accepting on a listener until
         * the pending connection is taken. */
        dropped(svc, UV_ENOMEM, 1);
        union {
            uv_handle_t handle;
            uv_tcp_t tcp;
            uv_pipe_t pipe;
        } *tmp = malloc(sizeof *tmp);
        if (tmp != NULL) {
            if (type == UV_NAMED_PIPE)
                uv_pipe_init(server->loop, &tmp->pipe, 0);
            else
                uv_tcp_init(server->loop, &tmp->tcp);
            uv_accept(server, (uv_stream_t *)tmp);
            uv_close(&tmp->handle, (uv_close_cb)free);
        }
        return NULL;
    }
    if (type == UV_NAMED_PIPE)
        uv_pipe_init(server->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(server->loop, &c->h.tcp);
    if (uv_accept(server, &c->h.stream) != 0) {
        uv_close(&c->h.handle, free_conn);
        return NULL;
    }
    c->last_active = NOW31(server->loop);
    c->h.handle.data = svc;
    if (conn_fd(c) >= fd_ceiling) { /* the last descriptors are kept */
        dropped(svc, UV_EMFILE, 1);
        drop_unopened(c);
        return NULL;
    }
    return c;
}

/* Behind a balancer: only it may connect, and the client's source is known
 * once its header is read. Returns false after dropping the connection. */
static bool admit_balancer(stream_conn_t *c)
{
    morphd_service_t *svc = conn_svc(c);
    const morphd_service_conf_t *conf = svc->conf;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getpeername(conn_fd(c), (struct sockaddr *)&ss, &len) != 0) {
        drop_unopened(c); /* reset before it was accepted: gone */
        return false;
    }
    if (!morphd_cidr_match(conf->proxy_from, conf->n_proxy_from,
                           (struct sockaddr *)&ss)) {
        MORPHD_STAT_ADD(svc->stats, proxy_untrusted, 1);
        if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
            char peer[80];
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s refused: not in "
                       "proxy_from", conf->name,
                       peer_text(c, peer, sizeof peer));
        }
        drop_unopened(c);
        return false;
    }
    stream_session_t *s = session(c);
    if (s == NULL || (s->proxy = calloc(1, sizeof *s->proxy)) == NULL) {
        dropped(svc, UV_ENOMEM, 1);
        drop_unopened(c);
        return false;
    }
    s->accepted_at = NOW31(c->h.handle.loop);
    return true;
}

/* rate_per_source, and the per-source key kept for max_connections_per_
 * source (its release needs it). Returns false after dropping. */
static bool admit_source_of(stream_conn_t *c, bool per_source)
{
    morphd_service_t *svc = conn_svc(c);
    unsigned char key[16];
    source_key(c, key); /* a unix:// client is its user */
    if (!within_rate(c, key)) {
        drop_unopened(c);
        return false;
    }
    if (!per_source)
        return true;
    stream_session_t *s = session(c);
    if (s == NULL) {
        dropped(svc, UV_ENOMEM, 1);
        drop_unopened(c);
        return false;
    }
    memcpy(s->source, key, 16);
    s->has_source = true;
    return true;
}

/* What an admitted connection needs before it is served: its TLS (tls://)
 * and its access-log record. Returns false after releasing its place in
 * the limits and dropping it (out of memory). */
static bool equip(stream_conn_t *c, const morphd_listener_t *l, bool proxy)
{
    morphd_service_t *svc = conn_svc(c);
    if (l->endpoint.transport == MORPHD_TLS) {
        stream_session_t *s = session(c);
        if (s == NULL || svc->tls == NULL ||
            (s->tls = morphd_tls_new(svc->tls, &svc->io->tls, c)) == NULL)
            goto nomem;
        if (!proxy)
            s->accepted_at = NOW31(c->h.handle.loop);
    }
    if (*svc->access_log != NULL && !start_log(c))
        goto nomem;
    return true;
nomem:
    dropped(svc, UV_ENOMEM, 1);
    morphd_stats_release(svc->stats,
                         c->s && c->s->has_source ? c->s->source : NULL);
    drop_unopened(c);
    return false;
}

/* A new connection: accepted, admitted (balancer, rates, limits),
 * equipped, then listed and served. Each step that refuses it drops it
 * itself, counted where its counter says. */
static void on_connection(uv_stream_t *server, int status)
{
    stream_listener_t *tl = server->data;
    morphd_service_t *svc = tl->l->service;
    const morphd_service_conf_t *conf = svc->conf;
    if (status < 0) {
        if (status == UV_EMFILE || status == UV_ENFILE)
            dropped(svc, status, 0); /* libuv dropped it itself */
        else
            morphd_log(MORPH_LOG_WARN, "service %s: %s: accept failed: %s",
                       conf->name, tl->l->bound, uv_strerror(status));
        return;
    }
    stream_conn_t *c = accept_conn(server, svc);
    if (c == NULL)
        return;
    bool proxy = conf->proxy_protocol != 0 && server->type == UV_TCP;
    if (proxy && !admit_balancer(c))
        return;
    bool per_source = conf->max_connections_per_source > 0 && !proxy;
    if (!proxy && (per_source || conf->rate_per_source != 0) &&
        !admit_source_of(c, per_source))
        return;
    if (!morphd_stats_admit(svc->stats, per_source ? c->s->source : NULL,
                            conf->max_connections,
                            conf->max_connections_per_source)) {
        if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
            char peer[80];
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s refused: connection "
                       "limit reached", conf->name,
                       peer_text(c, peer, sizeof peer));
        }
        drop_unopened(c); /* at once */
        return;
    }
    if (!equip(c, tl->l, proxy))
        return;
    if (!proxy) /* behind PROXY: once its header is read (admit_source) */
        MORPHD_STAT_ADD(svc->stats, connections_accepted, 1);
    morphd_service_ref(svc);
    morphd_service_conn_opened(svc);
    list_conn(c, svc->io);
    if (server->type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (!proxy && !open_conn(c))
        return;
    start_reading(c);
    if (!c->reading) {
        conn_close(c);
        return;
    }
    if (!proxy && morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s connected", conf->name,
                   peer_text(c, peer, sizeof peer));
    }
}

/* The connection is the client's: the plugins that open per-connection
 * state do so now. Returns false after closing. */
static bool open_conn(stream_conn_t *c)
{
    morphd_service_t *svc = conn_svc(c);
    const morphd_service_conf_t *conf = svc->conf;
    if (svc->chain->opens_conns) {
        char err[256];
        void **states = NULL;
        morphd_conn_t mc;
        conn_view(c, &mc);
        states = stream_states(&mc);
        if (states == NULL ||
            morphd_chain_conn_open(svc->chain, &mc, states, err, sizeof err) != 0) {
            char peer[80];
            morphd_log(MORPH_LOG_WARN, "service %s: %s: %s", conf->name,
                       peer_text(c, peer, sizeof peer),
                       states ? err : "out of memory");
            if (states != NULL) { /* conn_open undid itself */
                free(c->s->states);
                c->s->states = NULL;
            }
            ended(c, "plugin_failed");
            conn_close(c);
            return false;
        }
        c->s->states_open = true;
    }
    return true;
}

/* --- the listeners ----------------------------------------------------------- */

static void on_server_closed(uv_handle_t *h)
{
    stream_listener_t *tl = (stream_listener_t *)h;
    morphd_listener_t *l = tl->l;
    free(tl);
    l->impl = NULL;
    l->on_closed(l);
}

static stream_listener_t *new_listener(morphd_listener_t *l, uv_loop_t *loop,
                                    uv_handle_type type)
{
    stream_listener_t *tl = calloc(1, sizeof *tl);
    if (tl == NULL)
        return NULL;
    tl->l = l;
    if (type == UV_NAMED_PIPE)
        uv_pipe_init(loop, &tl->server.pipe, 0);
    else
        uv_tcp_init(loop, &tl->server.tcp);
    tl->server.handle.data = tl;
    return tl;
}

/* Listens, or undoes the listener with the reason in err. */
static int start_listening(morphd_listener_t *l, stream_listener_t *tl, int rc,
                           char *err, size_t err_size)
{
    if (rc == 0)
        rc = uv_listen(&tl->server.stream, 511, on_connection);
    if (rc != 0) {
        if (err[0] == '\0')
            snprintf(err, err_size, "%s: cannot listen: %s", l->endpoint.text,
                     uv_strerror(rc));
        morphd_unix_remove(&tl->file);
        uv_close(&tl->server.handle, (uv_close_cb)free);
        return -1;
    }
    uv_os_fd_t fd;
    l->fd = uv_fileno(&tl->server.handle, &fd) == 0 ? fd : -1;
    l->impl = tl;
    return 0;
}

static int tcp_open(morphd_listener_t *l, uv_loop_t *loop, char *err,
                    size_t err_size)
{
    set_fd_ceiling();
    stream_listener_t *tl = new_listener(l, loop, UV_TCP);
    if (tl == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    err[0] = '\0';
    const struct sockaddr *addr = (const struct sockaddr *)&l->endpoint.addr;
    unsigned flags = addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    int rc;
    if (l->adopted || l->share != NULL) { /* systemd's socket, or a copy */
        int fd = l->adopted ? l->fd : fcntl(l->share->fd, F_DUPFD_CLOEXEC, 0);
        l->share = NULL;
        rc = fd < 0 ? uv_translate_sys_error(errno)
                    : uv_tcp_open(&tl->server.tcp, fd);
        if (rc != 0 && fd >= 0)
            close(fd);
    } else if (l->reuseport) {
        int fd = morphd_listener_socket(l, SOCK_STREAM);
        rc = fd < 0 ? fd : uv_tcp_open(&tl->server.tcp, fd);
    } else {
        rc = uv_tcp_bind(&tl->server.tcp, addr, flags);
    }
    if (start_listening(l, tl, rc, err, err_size) != 0)
        return -1;
    int len = sizeof l->bound_addr;
    uv_tcp_getsockname(&tl->server.tcp, (struct sockaddr *)&l->bound_addr, &len);
    morphd_endpoint_format(l->endpoint.transport,
                           (struct sockaddr *)&l->bound_addr, l->bound,
                           sizeof l->bound);
    return 0;
}

/* The first worker makes the socket file; the others listen on a copy of
 * its descriptor (SO_REUSEPORT does not spread unix:// connections). */
static int unix_open(morphd_listener_t *l, uv_loop_t *loop, char *err,
                     size_t err_size)
{
    set_fd_ceiling();
    stream_listener_t *tl = new_listener(l, loop, UV_NAMED_PIPE);
    if (tl == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    err[0] = '\0';
    const morphd_service_conf_t *conf = l->service->conf;
    int fd;
    if (l->adopted) { /* systemd made the file, and removes it */
        fd = l->fd;
    } else if (l->share != NULL) {
        fd = fcntl(l->share->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            snprintf(err, err_size, "%s: dup: %s", l->endpoint.text,
                     strerror(errno));
        l->share = NULL; /* only needed now; it may go with its site */
    } else {
        fd = morphd_unix_listen(&l->endpoint, conf->unix_mode, conf->unix_group,
                                511, &tl->file, err, err_size);
    }
    int rc = fd < 0 ? UV_EINVAL : uv_pipe_open(&tl->server.pipe, fd);
    if (rc != 0 && fd >= 0)
        close(fd);
    if (start_listening(l, tl, rc, err, err_size) != 0)
        return -1;
    memcpy(&l->bound_addr, &l->endpoint.addr, sizeof l->bound_addr);
    snprintf(l->bound, sizeof l->bound, "%s", l->endpoint.text);
    return 0;
}

static void stream_close(morphd_listener_t *l)
{
    stream_listener_t *tl = l->impl;
    if (tl == NULL || tl->closing)
        return;
    tl->closing = true;
    /* removed now, while its descriptor still holds the name: a new
     * listener on the same path (another process, a restart) is safe */
    morphd_unix_remove(&tl->file);
    uv_close(&tl->server.handle, on_server_closed);
}

static void stream_abort(morphd_listener_t *l) { stream_close(l); }

static void stream_rebind(morphd_listener_t *l)
{
    stream_listener_t *tl = l->impl;
    tl->l = l; /* new connections get l's service; old ones keep theirs */
}

const morphd_listener_ops_t morphd_listener_tcp = {
    .name = "tcp",
    .open = tcp_open,
    .close = stream_close,
    .abort = stream_abort,
    .rebind = stream_rebind,
    .drain_conns = stream_drain_conns,
    .abort_conns = stream_abort_conns,
    .sweep_conns = stream_sweep_conns,
};

const morphd_listener_ops_t morphd_listener_tls = {
    .name = "tls",
    .open = tcp_open,
    .close = stream_close,
    .abort = stream_abort,
    .rebind = stream_rebind,
};

/* Its connections (and tls://'s) are in the same list as tcp://'s, walked
 * by the tcp table's drain, abort and sweep, so it has none of its own. */
const morphd_listener_ops_t morphd_listener_unix = {
    .name = "unix",
    .open = unix_open,
    .close = stream_close,
    .abort = stream_abort,
    .rebind = stream_rebind,
};
