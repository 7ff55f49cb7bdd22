/*
 * stream_io.c -- a stream connection's I/O (stream_conn.h): each read is
 * decoded by the service's codec, run through the message path, and all replies
 * to that read are written with one write; for tls:// the bytes pass
 * through TLS (tls.c) between the socket and the message path. Here too:
 * backpressure, input held back while a message is in flight, closing,
 * and the loop's list of connections.
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
#include "codec/codec.h"
#include "codec/http.h"
#include "codec/detect.h"
#include "codec/ws.h"
#include "net/listener.h"
#include "net/listener_unix.h"
#include "base/log.h"
#include "net/proxy_protocol.h"
#include "net/service.h"

#include "net/stream_conn.h"

void stream_free_conn(uv_handle_t *h) { free(conn_of(h)); }

bool stream_reserve_listing(morphd_io_t *io)
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

void stream_list_conn(stream_conn_t *c, morphd_io_t *io)
{
    io->stream_conns[io->n_stream_conns++] = c;
    c->listed = (uint32_t)io->n_stream_conns;
}

void stream_unlist_conn(stream_conn_t *c, morphd_io_t *io)
{
    if (c->listed == 0)
        return;
    size_t at = c->listed - 1;
    stream_conn_t *last = io->stream_conns[--io->n_stream_conns];
    io->stream_conns[at] = last;
    last->listed = (uint32_t)(at + 1);
    c->listed = 0;
}

int stream_conn_fd(const stream_conn_t *c)
{
    uv_os_fd_t fd;
    return uv_fileno(&c->h.handle, &fd) == 0 ? fd : -1;
}

bool stream_peer_cred(const stream_conn_t *c, struct ucred *cred)
{
    socklen_t len = sizeof *cred;
    int fd = stream_conn_fd(c);
    return fd >= 0 &&
           getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0;
}

const char *stream_peer_text(const stream_conn_t *c, char *buf, size_t size)
{
    if (is_unix(c)) {
        struct ucred cred;
        if (stream_peer_cred(c, &cred))
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
    else if (getpeername(stream_conn_fd(c), (struct sockaddr *)&ss, &len) != 0) {
        snprintf(buf, size, "a client");
        return buf;
    }
    const stream_session_t *s = c->s;
    morphd_endpoint_format(s == NULL ? MORPHD_TCP
                           : s->tls != NULL
                               ? (s->codec != NULL ? MORPHD_HTTPS : MORPHD_TLS)
                           : s->codec != NULL ? MORPHD_HTTP
                                              : MORPHD_TCP,
                           (struct sockaddr *)&ss, buf, size);
    return buf;
}

stream_session_t *stream_session_of(stream_conn_t *c)
{
    if (c->s == NULL) /* zeroed: its decoder is MORPHD_DECODER_INIT */
        c->s = calloc(1, sizeof *c->s);
    return c->s;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void process(stream_conn_t *c);

/* access_log: an HTTP request's line, once it is answered (`x->answered`,
 * which this takes: a request is logged once); `bytes_out` its response's
 * bytes. */
static __attribute__((noinline, cold)) void
log_request(stream_conn_t *c, morphd_http_exchange_t *x, size_t bytes_out)
{
    morphd_service_t *svc = conn_svc(c);
    if (x == NULL || (x->answered < 200 && x->answered != 101) ||
        c->s == NULL || c->s->log == NULL ||
        *svc->access_log == NULL)
        return;
    if (x->sent > 0) /* a streamed response: all of it */
        bytes_out = (size_t)x->sent;
    const conn_log_t *lg = c->s->log;
    morphd_access_entry_t e = {
        .transport = c->s->tls != NULL ? "https" : "http",
        .service = svc->conf->name,
        .client = lg->client.ss_family != AF_UNSPEC
                      ? (const struct sockaddr *)&lg->client : NULL,
        .uid = -1, .pid = -1,
        .bytes_in = x->body_len, .bytes_out = bytes_out,
        .status = x->answered,
        .method = (const char *)x->method.p, .method_len = x->method.len,
        .target = (const char *)x->target.p, .target_len = x->target.len,
    };
    x->answered = 0;
    morphd_access_log_write(*svc->access_log, &e);
}

/* The exchange of the request an http:// connection is being served now
 * (its codec's; with framing = stream, the connection's own), or NULL. */
static morphd_http_exchange_t *current_exchange(const stream_conn_t *c)
{
    if (c->s == NULL || c->s->codec == NULL ||
        c->s->codec->ops != &morphd_codec_http)
        return NULL;
    return c->s->decoder.state != NULL
               ? morphd_http_stream_exchange(c->s->decoder.state)
               : c->s->codec->exchange;
}

/* Whether a session is an http:// connection's still reading requests
 * (not yet switched to WebSocket): http_request_timeout's clock runs. */
static inline bool reads_requests(const stream_session_t *s)
{
    return s->codec != NULL && s->codec->ops == &morphd_codec_http;
}

/* Whether it switched to WebSocket. */
static inline bool is_ws(const stream_conn_t *c)
{
    return c->s != NULL && c->s->codec != NULL &&
           c->s->codec->ops == &morphd_codec_ws;
}

/* The codec a connection's bytes go through: its service's framing, or
 * an http:// connection's (its session says). */
static inline const morphd_codec_t *conn_codec(const stream_conn_t *c,
                                               const morphd_service_t *svc)
{
    return c->s != NULL && c->s->codec != NULL ? c->s->codec : &svc->codec;
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
    int fd = stream_conn_fd(c);
    socklen_t len = sizeof *peer;
    getpeername(fd, (struct sockaddr *)peer, &len);
    len = sizeof *local;
    getsockname(fd, (struct sockaddr *)local, &len);
}

static int unix_credentials(const morphd_conn_t *mc, morphd_cred_t *out)
{
    const stream_conn_t *c = mc->transport;
    struct ucred cred;
    if (c == NULL || !stream_peer_cred(c, &cred))
        return -1;
    out->uid = cred.uid;
    out->gid = cred.gid;
    out->pid = cred.pid;
    return 0;
}

static void **stream_states(morphd_conn_t *mc)
{
    stream_conn_t *c = mc->transport;
    stream_session_t *s = c ? stream_session_of(c) : NULL;
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
    return c != NULL && stream_session_of(c) != NULL ? 0 : -1;
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
        stream_conn_close(c);
        return;
    }
    if (__builtin_expect(c->s->log != NULL, 0))
        log_request(c, morphd_http_exchange_of(r->frame), rep.len);
    if (conn_send(c, io->reply.data, io->reply.len) != 0)
        return;
    if ((rep.flags & MORPH_REPLY_CLOSE) ||
        (rep.status == MORPHD_RUN_FAILED && conn_codec(c, svc)->chunks)) {
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

static const morphd_conn_ops_t https_conn_ops = {
    .transport = "https",
    .addresses = stream_addresses,
    .states = stream_states,
    .job_admit = stream_job_admit,
    .job_start = stream_job_start,
    .job_done = stream_job_done,
};

static const morphd_conn_ops_t http_conn_ops = {
    .transport = "http",
    .addresses = stream_addresses,
    .states = stream_states,
    .job_admit = stream_job_admit,
    .job_start = stream_job_start,
    .job_done = stream_job_done,
};

/* (always inline: it is on every read, and the compiler's own choice
 * cost a call there) */
static inline __attribute__((always_inline)) void
conn_view(stream_conn_t *c, morphd_conn_t *mc)
{
    if (__builtin_expect(c->s == NULL, 1))
        mc->ops = is_unix(c) ? &unix_conn_ops : &tcp_conn_ops;
    else
        mc->ops = is_unix(c)             ? &unix_conn_ops
                  : c->s->tls != NULL   ? (c->s->codec != NULL ? &https_conn_ops
                                                               : &tls_conn_ops)
                  : c->s->codec != NULL ? &http_conn_ops
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
            .transport = is_unix(c)         ? "unix"
                         : s->codec != NULL ? (s->tls ? "https" : "http")
                         : s->tls           ? "tls"
                                            : "tcp",
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
        if (s->codec_open)
            morphd_chain_codec_close(svc->chain, s->decoder.state);
        else if (is_ws(c))
            morphd_ws_conn_free(s->decoder.state);
        else if (s->codec != NULL) /* http://, framing = stream */
            morphd_http_stream_free(s->decoder.state);
        morphd_decoder_free(&s->decoder);
        morphd_buf_free(&s->held);
        if (s->tls != NULL)
            morphd_tls_free(s->tls);
        if (s->proxy != NULL) {
            free(s->proxy->partial);
            free(s->proxy);
        }
    }
    morphd_stats_release(svc->stats, s && s->has_source ? s->source : NULL);
    stream_unlist_conn(c, svc->io);
    free(s);
    free(c);
    morphd_service_conn_closed(svc);
    morphd_service_unref(svc);
}

void stream_conn_close(stream_conn_t *c)
{
    if (closing(c))
        return;
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s closed",
                   conn_svc(c)->conf->name, stream_peer_text(c, peer, sizeof peer));
    }
    c->closing = 1;
    uv_close(&c->h.handle, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status; /* closing either way */
    stream_conn_t *c = req->data;
    free(req);
    stream_conn_close(c);
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
    stream_session_t *s = stream_session_of(c);
    if (s == NULL) {
        stream_conn_close(c);
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
        stream_conn_close(c);
        return;
    }
    req->data = c;
    if (uv_shutdown(req, &c->h.stream, on_shutdown) != 0) {
        free(req);
        stream_conn_close(c);
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

void stream_start_reading(stream_conn_t *c)
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
        stream_conn_close(c);
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
                       stream_peer_text(c, peer, sizeof peer), uv_strerror(status));
        }
        stream_conn_close(c);
        return;
    }
    if (closing(c))
        return;
    c->last_active = NOW31(c->h.handle.loop); /* it reads: not idle */
    size_t high = conn_svc(c)->conf->max_pending_output;
    if (c->paused && queued(c) <= high / 2) {
        c->paused = 0;
        stream_start_reading(c);
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
            stream_conn_close(c);
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
        stream_conn_close(c);
        return -1;
    }
    write_req_t *w = malloc(sizeof *w + rest);
    if (w == NULL) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory queueing a "
                   "reply; closing the connection", svc->conf->name);
        stream_conn_close(c);
        return -1;
    }
    memcpy(w->data, data + done, rest);
    w->req.data = c;
    uv_buf_t b = buf_of(w->data, rest);
    if (uv_write(&w->req, &c->h.stream, &b, 1, on_write) != 0) {
        free(w);
        stream_conn_close(c);
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
    bool upgrade; /* a 101 went out: what follows is WebSocket frames */
} feed_ctx_t;

/* access_log: the message is counted in its connection's line, and an
 * HTTP request answered now has a line of its own. */
static __attribute__((noinline)) void logged(feed_ctx_t *x,
                                             const morphd_reply_t *rep)
{
    if (rep->counted)
        x->c->s->log->messages++;
    if (rep->status != MORPHD_RUN_PENDING)
        log_request(x->c, current_exchange(x->c), rep->len);
}

/* Takes a message's outcome; returns whether to go on with the input. */
static inline __attribute__((always_inline)) bool take(feed_ctx_t *x, const morphd_reply_t *rep)
{
    if (x->c->s != NULL && x->c->s->log != NULL)
        logged(x, rep);
    switch (rep->status) {
    case MORPHD_RUN_NOMEM:
        x->nomem = true;
        return false;
    case MORPHD_RUN_PENDING:
        x->pending = true;
        return false;
    case MORPHD_RUN_FAILED:
        /* in a stream, a lost chunk would be a silent gap: end it there;
         * an HTTP/1.0 request's 500 closes too */
        if (conn_codec(x->c, x->svc)->chunks ||
            (rep->flags & MORPH_REPLY_CLOSE)) {
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

/* A codec plugin's answer of its own: sent in turn, counted as sent;
 * and maybe the end. */
static __attribute__((noinline)) int codec_said(feed_ctx_t *x,
                                                const unsigned char *bytes,
                                                size_t len, bool close)
{
    if (len > 0 && morphd_buf_append(x->reply, bytes, len) != 0) {
        x->nomem = true;
        return 1;
    }
    MORPHD_LANE_ADD(x->svc->counts, bytes_out, len);
    morphd_http_exchange_t *hx = current_exchange(x->c);
    const char *why = hx != NULL && close ? hx->why : NULL;
    int status = hx != NULL ? hx->answered : 0;
    if (x->c->s != NULL && x->c->s->log != NULL) /* http: 405, 400... */
        log_request(x->c, hx, len);
    if (!close)
        return 0;
    if (why != NULL) { /* http refused a request: a bad frame, as others' */
        char peer[80];
        MORPHD_LANE_ADD(x->svc->counts, errors, 1);
        if (status == 413)
            MORPHD_LANE_ADD(x->svc->counts, frames_too_long, 1);
        else
            MORPHD_LANE_ADD(x->svc->counts, frames_invalid, 1);
        morphd_log(MORPH_LOG_INFO, "service %s: %s sent a request answered "
                   "%s; closing the connection after the replies before it",
                   x->svc->conf->name,
                   stream_peer_text(x->c, peer, sizeof peer), why);
        ended(x->c, "bad_request");
    }
    ended(x->c, "codec_closed");
    x->finish = true;
    return 1;
}

static int on_message(void *arg, const unsigned char *msg, size_t len,
                      const morphd_frame_t *frame)
{
    feed_ctx_t *x = arg;
    if (__builtin_expect(frame->shape == &morphd_shape_direct ||
                         frame->shape == &morphd_shape_direct_close, 0))
        return codec_said(x, msg, len,
                          frame->shape == &morphd_shape_direct_close);
    if (__builtin_expect(frame->shape == &morphd_http_chunk_shape, 0)) {
        /* framing = stream on http://: a piece of a body, or its end */
        morphd_reply_t rep;
        morphd_service_handle(x->svc, &x->conn, msg, len,
                              MORPH_MSG_CHUNK | (frame->guess & MORPHD_HTTP_LAST
                                                     ? MORPH_MSG_END : 0),
                              frame, x->reply, &rep);
        return take(x, &rep) ? 0 : 1;
    }
    if (__builtin_expect(frame->shape == &morphd_shape_direct_switch, 0)) {
        if (codec_said(x, msg, len, false) != 0)
            return 1;
        x->upgrade = true; /* the feeding stops here: see upgrade() */
        return 1;
    }
    morphd_reply_t rep;
    morphd_service_handle(x->svc, &x->conn, msg, len, 0, frame, x->reply,
                          &rep);
    return take(x, &rep) ? 0 : 1;
}

/* "line", "length"..., a codec plugin's name, or http. */
static const char *framing_name(const morphd_service_t *svc,
                                const morphd_codec_t *codec)
{
    if (codec != &svc->codec)
        return codec->ops->name; /* http:// */
    return svc->conf->framing_plugin ? svc->conf->framing_plugin
                                     : svc->codec.ops->name;
}

/* Acts on what the decoder returned: a frame over max_message, or bytes
 * that do not follow the framing, end the connection once the replies
 * before it are sent. */
static void decoder_result(feed_ctx_t *x, int rc, const morphd_decoder_t *d,
                           const morphd_codec_t *codec)
{
    if (rc == MORPHD_DECODER_TOO_LONG || rc == MORPHD_DECODER_INVALID) {
        char peer[80];
        bool too_long = rc == MORPHD_DECODER_TOO_LONG;
        MORPHD_LANE_ADD(x->svc->counts, errors, 1);
        if (too_long)
            MORPHD_LANE_ADD(x->svc->counts, frames_too_long, 1);
        else
            MORPHD_LANE_ADD(x->svc->counts, frames_invalid, 1);
        if (too_long)
            morphd_log(MORPH_LOG_WARN, "service %s: %s sent %s (%zu bytes); "
                       "closing the connection after the replies before it",
                       x->svc->conf->name,
                       stream_peer_text(x->c, peer, sizeof peer), d->reason,
                       x->svc->conf->max_message);
        else
            morphd_log(MORPH_LOG_WARN, "service %s: %s does not speak "
                       "framing = %s: %s; closing the connection after the "
                       "replies before it", x->svc->conf->name,
                       stream_peer_text(x->c, peer, sizeof peer),
                       framing_name(x->svc, codec), d->reason);
        ended(x->c, too_long ? "too_long" : "bad_frame");
        x->finish = true;
    } else if (rc == -1) {
        x->nomem = true;
    }
}

/* Runs input through the codec and the chain. Returns how much of it was
 * used: all of it, unless a message went in flight or the input ended. */
static inline __attribute__((always_inline)) size_t
feed(feed_ctx_t *x, morphd_decoder_t *d, const unsigned char *data, size_t n,
     const morphd_codec_t *codec)
{
    if (codec->chunks) {
        morphd_reply_t rep;
        morphd_service_handle(x->svc, &x->conn, data, n, MORPH_MSG_CHUNK,
                              &morphd_frame_none, x->reply, &rep);
        take(x, &rep);
        return n;
    }
    size_t used;
    int rc = morphd_decoder_feed(d, codec, data, n, on_message, x, &used);
    if (rc < 0)
        decoder_result(x, rc, d, codec);
    return used;
}

/* http_request_timeout's clock, for an http:// session after a pass: it
 * runs while a request's head is in pieces, from the accept or the head's
 * first byte; a request whose head is whole (its body may take
 * idle_timeout) stops it. */
static inline void http_clock(stream_session_t *s, uint32_t now)
{
    if (s->decoder.partial.len == 0 ||
        (s->decoder.scanned & MORPHD_HTTP_IN_BODY) ||
        morphd_http_stream_in_body(s->decoder.state))
        s->request_at = 0;
    else if (s->request_at == 0)
        s->request_at = now != 0 ? now : 1;
}

/* Sends what a pass produced and acts on how it ended. Returns false when
 * the connection is closing. */
static inline __attribute__((always_inline)) bool after_feed(feed_ctx_t *x)
{
    stream_conn_t *c = x->c;
    if (x->nomem) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                   "connection", x->svc->conf->name);
        stream_conn_close(c);
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

/* The connection switches to WebSocket after its 101 (x->upgrade): its
 * codec and the state of its frames. Bytes after the handshake that the
 * decoder kept go before the rest of the input, which process() then
 * reads as frames. Returns false when out of memory. */
static bool upgrade(feed_ctx_t *x)
{
    stream_session_t *s = x->c->s;
    x->upgrade = false;
    morphd_ws_conn_t *w = morphd_ws_conn_new();
    if (w == NULL)
        return false;
    if (s->codec_open) { /* (detect's http gave it back: never here) */
        morphd_chain_codec_close(x->svc->chain, s->decoder.state);
        s->codec_open = false;
    } else {
        morphd_http_stream_free(s->decoder.state); /* framing = stream's */
    }
    s->codec = &x->svc->ws_codec;
    s->decoder.state = w;
    s->decoder.scanned = 0;
    s->request_at = 0; /* a WebSocket has idle_timeout alone */
    if (s->decoder.partial.len > 0) {
        morphd_buf_t rest = MORPHD_BUF_INIT;
        if (morphd_buf_append(&rest, s->decoder.partial.data,
                              s->decoder.partial.len) != 0 ||
            morphd_buf_append(&rest, s->held.data + s->held_off,
                              s->held.len - s->held_off) != 0) {
            morphd_buf_free(&rest);
            return false;
        }
        morphd_buf_free(&s->held);
        s->held = rest;
        s->held_off = 0;
        s->decoder.partial.len = 0;
    }
    return true;
}

/* Keeps input that could not be used yet (a message is in flight). */
static bool hold(stream_conn_t *c, const unsigned char *data, size_t n)
{
    if (n == 0)
        return true;
    stream_session_t *s = stream_session_of(c);
    return s != NULL && morphd_buf_append(&s->held, data, n) == 0;
}

/* The end of the input, run through the chain step by step (each step may
 * put a message in flight): a last line without newline, then the end
 * call for plugins that want one. */
static void run_eof(feed_ctx_t *x, const morphd_codec_t *codec)
{
    stream_session_t *s = x->c->s;
    morphd_reply_t rep;
    if (codec->chunks) {
        s->eof_step = 2;
        morphd_service_handle(x->svc, &x->conn, NULL, 0,
                              MORPH_MSG_CHUNK | MORPH_MSG_END,
                              &morphd_frame_none, x->reply, &rep);
        take(x, &rep);
        return;
    }
    if (s->eof_step == 0) {
        s->eof_step = 1;
        int rc = morphd_decoder_finish(&s->decoder, codec, on_message, x);
        if (rc != 0) {
            if (rc < 0)
                decoder_result(x, rc, &s->decoder, codec);
            return;
        }
    }
    if (s->eof_step == 1) {
        s->eof_step = 2;
        if (x->svc->chain->line_end) {
            morphd_service_handle(x->svc, &x->conn, NULL, 0, MORPH_MSG_END,
                                  &morphd_frame_none, x->reply, &rep);
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
        /* (each pass: a WebSocket handshake changes it) */
        const morphd_codec_t *codec = conn_codec(c, x.svc);
        conn_view(c, &x.conn);
        if (s->held_off < s->held.len) {
            size_t used = feed(&x, &s->decoder, s->held.data + s->held_off,
                               s->held.len - s->held_off, codec);
            if (reads_requests(s))
                http_clock(s, NOW31(c->h.handle.loop));
            s->held_off += used;
            if (s->held_off == s->held.len)
                s->held_off = s->held.len = 0;
            if (x.upgrade && !upgrade(&x))
                x.nomem = true;
        } else if (s->eof && s->eof_step < 2) {
            run_eof(&x, codec);
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
        stream_start_reading(c);
}

/* A read whose WebSocket handshake was answered: the 101 goes out, and
 * the rest of the read is frames, which process() reads as held input
 * (off on_plain's path, which every read takes). */
static __attribute__((noinline, cold)) void
switched(feed_ctx_t *x, const unsigned char *rest, size_t n)
{
    if (!upgrade(x) || !hold(x->c, rest, n))
        x->nomem = true;
    if (after_feed(x))
        process(x->c);
}

/* Whether the peer reset the connection: its end of input may show as an
 * EOF once the error was reported, and unlike a half-close (the textbook
 * client, still waiting for its reply) nobody waits for a reply then. */
static bool peer_reset(const stream_conn_t *c)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    return !is_unix(c) && /* a unix:// peer that closes has no reset */
           getsockopt(stream_conn_fd(c), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           ti.tcpi_state == TCP_CLOSE;
}

/* Input that arrives while a message is in flight waits its turn. */
static void wait_turn(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    stream_session_t *s = c->s;
    if (nread > 0) {
        c->last_active = NOW31(c->h.handle.loop);
        MORPHD_LANE_ADD(conn_svc(c)->counts, bytes_in, (size_t)nread);
        if (s->log != NULL)
            s->log->bytes_in += (size_t)nread;
        if (!hold(c, (const unsigned char *)buf->base, (size_t)nread)) {
            morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                       "connection", conn_svc(c)->conf->name);
            stream_conn_close(c);
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
                   stream_peer_text(c, peer, sizeof peer), uv_strerror((int)nread));
    }
    ended(c, "reset");
    stream_conn_close(c); /* gone: its message is cancelled */
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
        MORPHD_LANE_ADD(x.svc->counts, bytes_in, (size_t)nread);
        if (c->s != NULL && c->s->log != NULL)
            c->s->log->bytes_in += (size_t)nread;
        size_t used;
        if (c->s != NULL) {
            used = feed(&x, &c->s->decoder, data, (size_t)nread,
                        conn_codec(c, x.svc));
            if (reads_requests(c->s))
                http_clock(c->s, c->last_active);
            if (__builtin_expect(x.upgrade, 0)) {
                switched(&x, data + used, (size_t)nread - used);
                return;
            }
        } else if (x.svc->conf->codec.chunks) {
            used = feed(&x, NULL, data, (size_t)nread, &x.svc->codec);
        } else {
            /* most reads: whole frames, no session; a frame left over in
             * part moves into one (the decoder's error text is written
             * only with an error: not cleared here) */
            morphd_decoder_t d;
            d.partial = (morphd_buf_t)MORPHD_BUF_INIT;
            d.scanned = 0;
            d.state = NULL; /* a codec without conn_open has none */
            used = feed(&x, &d, data, (size_t)nread, &x.svc->codec);
            if (d.partial.data != NULL) {
                stream_session_t *s = stream_session_of(c);
                if (s == NULL) {
                    morphd_decoder_free(&d);
                    x.nomem = true;
                } else {
                    s->decoder.partial = d.partial;
                    s->decoder.scanned = d.scanned;
                }
            }
        }
        if (x.pending && !hold(c, data + used, (size_t)nread - used))
            x.nomem = true;
    } else if (nread == UV_EOF) {
        /* The client is done sending: answer what is left, then close. */
        stop_reading(c);
        stream_session_t *s = stream_session_of(c);
        if (s == NULL) {
            stream_conn_close(c);
            return;
        }
        s->eof = true;
        run_eof(&x, conn_codec(c, x.svc));
        if (!x.pending)
            x.finish = true;
    } else if (nread < 0) {
        ended(c, "reset");
        if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
            char peer[80];
            morphd_log(MORPH_LOG_DEBUG, "service %s: %s: read failed: %s",
                       x.svc->conf->name, stream_peer_text(c, peer, sizeof peer),
                       uv_strerror((int)nread));
        }
        stream_conn_close(c);
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
                       stream_peer_text(c, peer, sizeof peer), queued(c));
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
            stream_conn_close(c);
            return;
        }
        on_plain(c, nread, buf); /* EOF without close_notify: as TCP */
        return;
    }
    if (io->tls_plain == NULL &&
        (io->tls_plain = malloc(MORPHD_READ_BUF_SIZE)) == NULL) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                   "connection", svc->conf->name);
        stream_conn_close(c);
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
                           svc->conf->name, stream_peer_text(c, peer, sizeof peer),
                           st == MORPHD_TLS_RENEGOTIATION
                               ? "asked to renegotiate" : why);
            stream_conn_close(c);
        }
        break;
    }
    io->tls.in = NULL;
    io->tls.in_len = 0;
    io->tls.in_owner = NULL;
}

/* (out of line: inlined, it made every read of every connection save
 * registers it needs, 15 instructions a request: CI's tcp-rr count) */
static __attribute__((noinline, cold)) void
detect_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf);

void stream_dispatch_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    if (c->s != NULL) {
        if (c->s->tls != NULL) {
            if (nread != 0)
                tls_on_read(c, nread, buf);
            return;
        }
        if (__builtin_expect(c->s->detecting, 0)) {
            if (nread != 0)
                detect_read(c, nread, buf);
            return;
        }
    }
    on_plain(c, nread, buf);
}

/* --- detect: one port, several protocols ---------------------------------------- */

/* detect's verdicts, by their names here */
typedef morphd_detect_t verdict_t;
#define SERVE_PLAIN MORPHD_DETECT_PLAIN
#define SERVE_TLS MORPHD_DETECT_TLS
#define SERVE_HTTP MORPHD_DETECT_HTTP
#define WAIT MORPHD_DETECT_WAIT

/* Whether a session holds nothing but what detect put in it: a plain
 * connection then goes without one, as every tcp:// one does. */
static bool session_bare(const stream_session_t *s)
{
    return s->states == NULL && s->job == NULL && s->held.len == 0 &&
           s->decoder.partial.len == 0 && s->decoder.state == NULL &&
           !s->codec_open && s->tls == NULL && s->codec == NULL &&
           s->proxy == NULL && s->log == NULL && !s->has_source &&
           !s->eof && !s->finishing && !s->shutting;
}

/* The connection is `v`: it becomes a tls:// or http:// one, or stays
 * what its endpoint is, and the bytes that told it go through as read. */
static void detected(stream_conn_t *c, verdict_t v)
{
    stream_session_t *s = c->s;
    morphd_service_t *svc = conn_svc(c);
    morphd_buf_t first = s->held;
    s->held = (morphd_buf_t)MORPHD_BUF_INIT;
    s->held_off = 0;
    s->detecting = false;
    s->detect_at = 0;
    uint32_t now = NOW31(c->h.handle.loop);
    if (v == SERVE_TLS) {
        s->tls = svc->tls != NULL
                     ? morphd_tls_new(svc->tls, &svc->io->tls, c, false)
                     : NULL;
        s->accepted_at = now; /* tls_handshake_timeout from here */
    } else if (v == SERVE_HTTP) {
        if (s->codec_open) { /* framing = NAME's state: http reads requests */
            morphd_chain_codec_close(svc->chain, s->decoder.state);
            s->codec_open = false;
            s->decoder.state = NULL;
        }
        s->codec = &svc->http_codec;
        if (svc->http_codec.http_stream)
            s->decoder.state = morphd_http_stream_new();
        s->request_at = now != 0 ? now : 1;
    } else if (session_bare(s)) {
        free(s);
        c->s = NULL;
    }
    if ((v == SERVE_TLS && c->s->tls == NULL) ||
        (v == SERVE_HTTP && svc->http_codec.http_stream &&
         c->s->decoder.state == NULL)) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                   "connection", svc->conf->name);
        morphd_buf_free(&first);
        stream_conn_close(c);
        return;
    }
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s: detect: %s",
                   svc->conf->name, stream_peer_text(c, peer, sizeof peer),
                   v == SERVE_TLS ? "TLS" : v == SERVE_HTTP ? "HTTP"
                                                            : "the service's framing");
    }
    if (first.len > 0) {
        uv_buf_t b = buf_of((char *)first.data, first.len);
        stream_dispatch_read(c, (ssize_t)first.len, &b);
    }
    morphd_buf_free(&first);
}

/* A read while the protocol is not told: its bytes join those before,
 * until they say what they are (a prefix that still may be TLS or HTTP
 * waits, detect_timeout at most: sweep_one). The end of the input, or an
 * error, goes to the service's framing with what came before it. */
static __attribute__((noinline, cold)) void
detect_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    stream_session_t *s = c->s;
    if (nread < 0) {
        detected(c, SERVE_PLAIN);
        if (!closing(c))
            stream_dispatch_read(c, nread, buf);
        return;
    }
    c->last_active = NOW31(c->h.handle.loop);
    if (morphd_buf_append(&s->held, buf->base, (size_t)nread) != 0) {
        morphd_log(MORPH_LOG_ERROR, "service %s: out of memory; closing a "
                   "connection", conn_svc(c)->conf->name);
        stream_conn_close(c);
        return;
    }
    const morphd_service_conf_t *conf = conn_svc(c)->conf;
    verdict_t v = morphd_detect(s->held.data, s->held.len, conf->detect_tls,
                                conf->detect_http);
    if (v != WAIT) {
        detected(c, v);
        return;
    }
    if (s->detect_at == 0)
        s->detect_at = c->last_active != 0 ? c->last_active : 1;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    stream_conn_t *c = conn_of(stream);
    if (c->s != NULL && c->s->proxy != NULL && !c->s->proxy->done) {
        if (nread != 0)
            stream_proxy_on_read(c, nread, buf);
        return;
    }
    stream_dispatch_read(c, nread, buf);
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
        (s->job != NULL || held_waiting(s) > 0 ||
         morphd_decoder_pending(&s->decoder) > 0 ||
         (reads_requests(s) && morphd_http_stream_in_body(s->decoder.state)) ||
         (s->tls != NULL && !s->tls_ready) ||
         (s->proxy != NULL && !s->proxy->done)))
        return true;
    int unread = 0;
    int fd = stream_conn_fd(c);
    if (fd >= 0 && ioctl(fd, FIONREAD, &unread) == 0 && unread > 0)
        return true;
    return ((NOW31(c->h.handle.loop) - c->last_active) & ACTIVE_MASK) < recent;
}

/* A WebSocket closed by morphd (shutdown, idle_timeout) is told so:
 * close 1001, then the connection ends once written. */
static void going_away(stream_conn_t *c)
{
    static const unsigned char bye[4] = {0x88, 2, MORPHD_WS_GOING_AWAY >> 8,
                                         MORPHD_WS_GOING_AWAY & 0xff};
    if (is_ws(c) && !closing(c))
        conn_send(c, bye, sizeof bye);
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
    going_away(c);
    if (!closing(c))
        conn_finish(c);
}

static void abort_one(stream_conn_t *c)
{
    if (closing(c))
        return;
    ended(c, "shutdown");
    stream_conn_close(c);
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
                   conn_svc(c)->conf->name, stream_peer_text(c, peer, sizeof peer),
                   what, limit);
    }
    stream_conn_close(c);
    return true;
}

/* An http:// request whose head did not arrive in http_request_timeout:
 * 408, then the close (what nginx does for client_header_timeout). */
static bool request_timed_out(stream_conn_t *c, uint32_t now)
{
    morphd_service_t *svc = conn_svc(c);
    unsigned limit = svc->conf->http_request_timeout_ms;
    if (limit == 0 || c->s->job != NULL ||
        ((now - c->s->request_at) & ACTIVE_MASK) < limit)
        return false;
    c->s->request_at = 0;
    MORPHD_LANE_ADD(svc->counts, errors, 1);
    ended(c, "request_timeout");
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s: no whole request head "
                   "in %u ms (http_request_timeout); 408, closing",
                   svc->conf->name, stream_peer_text(c, peer, sizeof peer),
                   limit);
    }
    morphd_buf_t b = MORPHD_BUF_INIT;
    morphd_frame_t f = {&svc->http_codec.shape, NULL, 0, MORPHD_HTTP_CLOSE,
                        NULL};
    int said = morphd_http_respond(&f, &b, 408, 0);
    if (said >= 0 && c->s->log != NULL) {
        morphd_http_exchange_t x = {.answered = 408};
        log_request(c, &x, b.len);
    }
    if (said < 0 || conn_send(c, b.data, b.len) != 0) {
        morphd_buf_free(&b);
        if (!closing(c))
            stream_conn_close(c);
        return true;
    }
    morphd_buf_free(&b);
    conn_finish(c);
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
                        &svc->stats->any.proxy_timeouts, "PROXY header",
                        "proxy_timeout"))
        return;
    if (c->s != NULL && c->s->tls != NULL && !c->s->tls_ready &&
        setup_timed_out(c, now, svc->conf->tls_handshake_timeout_ms,
                        &svc->stats->any.tls_handshake_timeouts, "TLS handshake",
                        "tls_timeout"))
        return;
    if (c->s != NULL && c->s->request_at != 0 && request_timed_out(c, now))
        return;
    if (c->s != NULL && c->s->detect_at != 0 &&
        ((now - c->s->detect_at) & ACTIVE_MASK) >= svc->conf->detect_timeout_ms) {
        detected(c, SERVE_PLAIN); /* a prefix that said nothing more */
        return;
    }
    if (idle == 0 || ((now - c->last_active) & ACTIVE_MASK) < idle)
        return;
    if (c->s != NULL && c->s->job != NULL)
        return; /* waiting for a plugin is not the client being idle */
    MORPHD_STAT_ADD(svc->stats, connections_idle_closed, 1);
    ended(c, "idle");
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s idle for %u ms; closing",
                   svc->conf->name, stream_peer_text(c, peer, sizeof peer), idle);
    }
    /* Silent and not reading its replies either: close at once.
     * Silent but caught up: write what is left, then close. */
    if (queued(c) > 0 || (c->s && c->s->shutting)) {
        stream_conn_close(c);
    } else {
        going_away(c);
        if (!closing(c))
            conn_finish(c);
    }
    c->last_active = now; /* finishing gets one more period */
}

/* The walks below close connections as they go: a closed one stays in the
 * list, marked closing, until its close callback, which runs on a later
 * turn of the loop, so the list does not change under a walk. */
void stream_drain_conns(morphd_io_t *io, unsigned recent)
{
    for (size_t i = 0; i < io->n_stream_conns; i++)
        drain_one(io->stream_conns[i], recent);
}

void stream_abort_conns(morphd_io_t *io)
{
    for (size_t i = 0; i < io->n_stream_conns; i++)
        abort_one(io->stream_conns[i]);
}

void stream_sweep_conns(morphd_io_t *io)
{
    if (io->n_stream_conns == 0)
        return;
    uint32_t now = NOW31(io->stream_conns[0]->h.handle.loop);
    for (size_t i = 0; i < io->n_stream_conns; i++)
        sweep_one(io->stream_conns[i], now);
}

/* The connection is the client's: the plugins that open per-connection
 * state do so now. Returns false after closing. */
/* A codec plugin's state for the connection. Returns false after
 * closing. */
static bool open_codec(stream_conn_t *c, const morphd_chain_t *chain)
{
    stream_session_t *s = stream_session_of(c);
    char err[256] = "out of memory";
    int rc = -1;
    if (s != NULL) {
        morphd_conn_t mc;
        conn_view(c, &mc);
        rc = morphd_chain_codec_open(chain, &mc, &s->decoder.state, err,
                                     sizeof err);
    }
    if (rc >= 0) {
        s->codec_open = rc == 1;
        return true;
    }
    char peer[80];
    morphd_log(MORPH_LOG_WARN, "service %s: %s: %s", conn_svc(c)->conf->name,
               stream_peer_text(c, peer, sizeof peer), err);
    ended(c, "plugin_failed");
    stream_conn_close(c);
    return false;
}

bool stream_open_conn(stream_conn_t *c)
{
    morphd_service_t *svc = conn_svc(c);
    const morphd_service_conf_t *conf = svc->conf;
    /* (an http:// connection reads requests, not the service's framing) */
    if (svc->chain->codec != NULL && (c->s == NULL || c->s->codec == NULL) &&
        !open_codec(c, svc->chain))
        return false;
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
                       stream_peer_text(c, peer, sizeof peer),
                       states ? err : "out of memory");
            if (states != NULL) { /* conn_open undid itself */
                free(c->s->states);
                c->s->states = NULL;
            }
            ended(c, "plugin_failed");
            stream_conn_close(c);
            return false;
        }
        c->s->states_open = true;
    }
    return true;
}

