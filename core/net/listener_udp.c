/*
 * listener_udp.c -- the UDP transport: one datagram is one message, and its
 * reply goes back to the sender. Datagrams come in batches (recvmmsg) and
 * their replies go out in batches (sendmmsg): the chain's last plugin
 * writes each reply straight into the batch. Replies are sent at once when
 * the socket takes them; otherwise they are queued up to max_pending_output
 * bytes, and beyond that dropped and counted, because UDP has no
 * backpressure to apply. A datagram whose reply comes later (a deferred or
 * blocking plugin) is answered on its own when it ends; such datagrams
 * take at most max_pending_output bytes per listener too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/access_log.h"
#include "net/listener.h"
#include "base/log.h"
#include "net/proxy_protocol.h"
#include "net/service.h"

/* libuv's recvmmsg slot size (UV__UDP_DGRAM_MAXSIZE), and how many
 * datagrams one system call may bring: fewer system calls under load, the
 * same behaviour otherwise. 1 MiB per UDP listener and worker, touched
 * only as datagrams arrive. */
#define UDP_SLOT 65536
#define UDP_BATCH 16

/* What a datagram in flight is counted as, besides its bytes. */
#define JOB_OVERHEAD 512

/* The replies to one received batch, sent together with one sendmmsg(2)
 * when the batch ends. */
typedef struct reply_batch {
    size_t n;
    size_t offset[UDP_BATCH], len[UDP_BATCH];
    struct sockaddr_storage to[UDP_BATCH];
    morphd_buf_t bytes; /* the replies, back to back */
} reply_batch_t;

typedef struct udp_listener {
    uv_udp_t handle;
    morphd_listener_t *l;
    unsigned char *buf; /* receive buffer: room for a batch of datagrams */
    size_t buf_size;
    size_t pending; /* bytes of queued replies */
    reply_batch_t batch;
    morphd_job_t *jobs; /* datagrams in flight */
    size_t job_bytes;
    void **states;     /* the datagram's states, while it runs (stack) */
    bool states_used;  /* ... made by a plugin lazily: close them */
    uv_os_fd_t fd;
    uint64_t last_ratio_log; /* uv_now() of the last drop logged */
    uint64_t ratio_drops;    /* dropped since */
    bool closing;
    bool handle_closing;
} udp_listener_t;

typedef struct send_req {
    uv_udp_send_t req;
    udp_listener_t *ul;
    size_t len;
    unsigned char data[];
} send_req_t;

static void on_handle_closed(uv_handle_t *h)
{
    udp_listener_t *ul = h->data;
    morphd_listener_t *l = ul->l;
    morphd_buf_free(&ul->batch.bytes);
    free(ul->buf);
    free(ul);
    l->impl = NULL;
    l->on_closed(l);
}

static void free_unopened(uv_handle_t *h)
{
    udp_listener_t *ul = h->data;
    free(ul->buf);
    free(ul);
}

/* A closing listener goes once its queued replies are sent and its
 * datagrams in flight answered. */
static void maybe_close_handle(udp_listener_t *ul)
{
    if (ul->closing && ul->pending == 0 && ul->jobs == NULL &&
        !ul->handle_closing) {
        ul->handle_closing = true;
        uv_close((uv_handle_t *)&ul->handle, on_handle_closed);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    udp_listener_t *ul = h->data;
    buf->base = (char *)ul->buf;
    buf->len = ul->buf_size;
}

static void on_send(uv_udp_send_t *req, int status)
{
    send_req_t *s = (send_req_t *)req;
    udp_listener_t *ul = s->ul;
    ul->pending -= s->len;
    if (status < 0 && status != UV_ECANCELED)
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s: send failed: %s",
                   ul->l->service->conf->name, ul->l->bound,
                   uv_strerror(status));
    free(s);
    maybe_close_handle(ul);
}

/* A reply that will not be sent after all: counted as dropped, not sent. */
static void count_dropped(morphd_service_t *svc, size_t len)
{
    MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
    MORPHD_LANE_SUB(svc->counts, messages_out, 1);
    MORPHD_LANE_SUB(svc->counts, bytes_out, len);
}

static void send_reply(udp_listener_t *ul, morphd_service_t *svc,
                       const unsigned char *data, size_t len,
                       const struct sockaddr *to)
{
    uv_buf_t b;
    b.base = (char *)data;
    b.len = len;
    if (ul->pending == 0) {
        int rc = uv_udp_try_send(&ul->handle, &b, 1, to);
        if (rc >= 0)
            return;
        if (rc != UV_EAGAIN) {
            morphd_log(MORPH_LOG_DEBUG, "service %s: reply of %zu bytes "
                       "failed: %s", svc->conf->name, len, uv_strerror(rc));
            count_dropped(svc, len);
            return;
        }
    }
    send_req_t *s = NULL;
    if (ul->pending + len <= svc->conf->max_pending_output)
        s = malloc(sizeof *s + len);
    if (s == NULL) {
        count_dropped(svc, len);
        morphd_log(MORPH_LOG_DEBUG, "service %s: send queue full; reply "
                   "dropped", svc->conf->name);
        return;
    }
    s->ul = ul;
    s->len = len;
    memcpy(s->data, data, len);
    b = uv_buf_init((char *)s->data, (unsigned)len);
    if (uv_udp_send(&s->req, &ul->handle, &b, 1, to, on_send) != 0) {
        free(s);
        count_dropped(svc, len);
        return;
    }
    ul->pending += len;
}

/* Sends the batch with one system call; what the socket does not take
 * goes through the queue. */
static void flush_batch(udp_listener_t *ul)
{
    reply_batch_t *b = &ul->batch;
    if (b->n == 0) {
        b->bytes.len = 0;
        return;
    }
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    for (size_t i = 0; i < b->n; i++) {
        iov[i].iov_base = b->bytes.data + b->offset[i];
        iov[i].iov_len = b->len[i];
        msgs[i] = (struct mmsghdr){
            .msg_hdr = {.msg_name = &b->to[i],
                        .msg_namelen = (socklen_t)morphd_sockaddr_len(
                            (struct sockaddr *)&b->to[i]),
                        .msg_iov = &iov[i],
                        .msg_iovlen = 1}};
    }
    int sent = sendmmsg(ul->fd, msgs, (unsigned)b->n, MSG_DONTWAIT);
    if (sent < 0)
        sent = 0;
    for (size_t i = (size_t)sent; i < b->n; i++) /* the rest: queued */
        send_reply(ul, ul->l->service, b->bytes.data + b->offset[i], b->len[i],
                   (const struct sockaddr *)&b->to[i]);
    b->n = 0;
    b->bytes.len = 0;
}

/* IP and UDP headers of a datagram to or from `sa`: 20 + 8 bytes for
 * IPv4 (an IPv4-mapped IPv6 address included), 40 + 8 for IPv6. */
static size_t wire_overhead(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_V4MAPPED(a) ? 28 : 48;
    }
    return 28;
}

/* No amplification: a spoofed source must not get more than a small
 * multiple of what it sent, in bytes on the wire -- headers included on
 * both sides, so that a 3-byte probe may have its 22-byte answer while an
 * empty datagram still gets at most the ratio. A dropped reply is counted;
 * the first of a listener is logged at warn (a plugin author's first UDP
 * test meets it), later ones at info at most once a second. */
static bool over_ratio(udp_listener_t *ul, morphd_service_t *svc,
                       size_t reply, size_t request)
{
    const morphd_service_conf_t *conf = svc->conf;
    count_dropped(svc, reply);
    ul->ratio_drops++;
    uint64_t now = uv_now(ul->handle.loop);
    if (ul->last_ratio_log == 0 || now - ul->last_ratio_log >= 1000) {
        morphd_log(ul->last_ratio_log == 0 ? MORPH_LOG_WARN : MORPH_LOG_INFO,
                   "service %s: reply of %zu bytes on the wire to a datagram "
                   "of %zu dropped: over udp_max_reply_ratio = %zu (IP and "
                   "UDP headers counted on both sides; %llu dropped so; "
                   "logged at most once a second)",
                   conf->name, reply, request, conf->udp_max_reply_ratio,
                   (unsigned long long)ul->ratio_drops);
        ul->last_ratio_log = now;
        ul->ratio_drops = 0;
    }
    return false;
}

/* `reply`: the payload; `overhead`: its headers (wire_overhead of where
 * it goes); `request`: what came in, on the wire
 * (morphd_conn_t.request_wire). */
static inline bool within_ratio(udp_listener_t *ul, morphd_service_t *svc,
                                size_t reply, size_t overhead, size_t request)
{
    size_t wire = reply + overhead;
    return wire <= svc->conf->udp_max_reply_ratio * request ||
           over_ratio(ul, svc, wire, request);
}

/* What became of a datagram's reply, for the stats and the access log:
 * "replied" (sent: `bytes` of it), "no_reply" (the plugin answered
 * nothing: no datagram, and not counted as a message out),
 * "dropped_ratio" (over udp_max_reply_ratio: counted as dropped) or
 * "failed". Returns whether to send it. */
static inline bool reply_fate(udp_listener_t *ul, morphd_service_t *svc,
                              const morphd_reply_t *rep, size_t overhead,
                              size_t request_wire, const char **end)
{
    if (rep->status != MORPHD_RUN_DONE) {
        *end = "failed";
        return false;
    }
    if (!rep->datagram) {
        /* an empty reply was counted as a message out (a no_reply() one
         * never was): over UDP nothing is sent */
        if (!(rep->flags & MORPH_REPLY_NONE))
            MORPHD_LANE_SUB(svc->counts, messages_out, 1);
        *end = "no_reply";
        return false;
    }
    if (!within_ratio(ul, svc, rep->len, overhead, request_wire)) {
        *end = "dropped_ratio";
        return false;
    }
    *end = "replied";
    return true;
}

/* access_log_udp: a line for the datagram once its reply's fate is known
 * (a deferred one's when it completes): its size and what became of it. */
static void log_datagram(morphd_service_t *svc, const struct sockaddr *client,
                         size_t len, size_t bytes_out, const char *end)
{
    if (*svc->access_log == NULL)
        return;
    morphd_access_entry_t e = {
        .transport = "udp",
        .service = svc->conf->name,
        .client = client,
        .uid = -1, .pid = -1,
        .bytes_in = len,
        .bytes_out = bytes_out,
        .messages = 1,
        .end = end,
    };
    morphd_access_log_write(*svc->access_log, &e);
}

/* --- the datagram as the message path sees it ------------------------------- */

static void udp_addresses(const morphd_conn_t *c, struct sockaddr_storage *peer,
                          struct sockaddr_storage *local)
{
    (void)peer; /* always in c->peer */
    const udp_listener_t *ul = c->transport;
    if (ul != NULL)
        memcpy(local, &ul->l->bound_addr, sizeof *local);
}

/* A plugin made state lazily: the datagram's array, zeroed now. */
static void **udp_states(morphd_conn_t *c)
{
    udp_listener_t *ul = c->transport;
    if (ul == NULL || ul->states == NULL)
        return NULL;
    if (!ul->states_used) {
        memset(ul->states, 0, ul->l->service->chain->n * sizeof(void *));
        ul->states_used = true;
    }
    return ul->states;
}

static int udp_job_admit(morphd_conn_t *c, size_t bytes)
{
    udp_listener_t *ul = c->transport;
    morphd_service_t *svc = c->owner;
    if (ul == NULL || ul->closing ||
        ul->job_bytes + bytes + JOB_OVERHEAD > svc->conf->max_pending_output)
        return -1;
    return 0;
}

static int udp_job_start(morphd_conn_t *c, morphd_job_t *job)
{
    udp_listener_t *ul = c->transport;
    morphd_service_t *svc = c->owner;
    /* the datagram's states lived on the stack; the job keeps a copy */
    if (c->states != NULL && job->own_states == NULL &&
        morphd_job_own_states(job, c->states) != 0)
        return -1;
    job->tdata = (void *)(uintptr_t)(job->in.len + job->buf.cap + JOB_OVERHEAD);
    ul->job_bytes += (size_t)(uintptr_t)job->tdata;
    job->tprev = NULL;
    job->tnext = ul->jobs;
    if (ul->jobs)
        ul->jobs->tprev = job;
    ul->jobs = job;
    morphd_service_ref(svc); /* a reload may retire it meanwhile */
    return 0;
}

static void unlink_job(udp_listener_t *ul, morphd_job_t *job)
{
    if (job->tprev)
        job->tprev->tnext = job->tnext;
    else
        ul->jobs = job->tnext;
    if (job->tnext)
        job->tnext->tprev = job->tprev;
    ul->job_bytes -= (size_t)(uintptr_t)job->tdata;
}

static void udp_job_done(morphd_conn_t *c, morphd_job_t *job,
                         const morphd_result_t *r)
{
    udp_listener_t *ul = c->transport;
    morphd_service_t *svc = c->owner;
    unlink_job(ul, job);
    if (r->status == MORPHD_RUN_PENDING) {
        /* a later plugin deferred too: udp_job_start took the next job,
         * with a reference of its own */
        morphd_service_unref(svc);
        return;
    }
    morphd_io_t *io = svc->io;
    io->reply.len = 0;
    morphd_reply_t rep;
    morphd_service_finish(svc, r, &io->reply, &rep);
    const struct sockaddr *to = c->via ? c->via : c->peer;
    const char *end;
    bool send = reply_fate(ul, svc, &rep, wire_overhead(to), c->request_wire,
                           &end);
    if (send && ul->handle_closing)
        end = "closed";
    else if (send)
        send_reply(ul, svc, io->reply.data, io->reply.len, to);
    if (svc->access_log_udp)
        log_datagram(svc, c->peer, c->request_len,
                     send && !ul->handle_closing ? rep.len : 0, end);
    morphd_service_unref(svc);
    maybe_close_handle(ul);
}

static const morphd_conn_ops_t udp_conn_ops = {
    .transport = "udp",
    .addresses = udp_addresses,
    .states = udp_states,
    .job_admit = udp_job_admit,
    .job_start = udp_job_start,
    .job_done = udp_job_done,
};

/* proxy_protocol: a datagram from a balancer in proxy_from starts with a
 * v2 header. Returns the client it names (in *store; `from` for a LOCAL
 * header) with *msg and *len past the header, or NULL when the datagram is
 * refused: counted, and logged at debug. */
static const struct sockaddr *proxy_client(udp_listener_t *ul,
                                           morphd_service_t *svc,
                                           const struct sockaddr *from,
                                           const unsigned char **msg,
                                           size_t *len,
                                           struct sockaddr_storage *store)
{
    const morphd_service_conf_t *conf = svc->conf;
    char why[160];
    if (!morphd_cidr_match(conf->proxy_from, conf->n_proxy_from, from)) {
        MORPHD_STAT_ADD(svc->stats, proxy_untrusted, 1);
        snprintf(why, sizeof why, "not in proxy_from");
        goto refused;
    }
    morphd_proxy_hdr_t h;
    morphd_proxy_status_t st = morphd_proxy_parse(
        *msg, *len, conf->proxy_protocol, SOCK_DGRAM, &h, why, sizeof why);
    if (st != MORPHD_PROXY_DONE) {
        if (st == MORPHD_PROXY_MORE)
            snprintf(why, sizeof why, "a datagram shorter than its PROXY "
                     "header");
        MORPHD_STAT_ADD(svc->stats, proxy_invalid, 1);
        goto refused;
    }
    MORPHD_STAT_ADD(svc->stats, proxy_headers, 1);
    *msg += h.len;
    *len -= h.len;
    if (h.local)
        return from;
    *store = h.src;
    return (const struct sockaddr *)store;
refused:
    MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[MORPHD_ENDPOINT_TEXT];
        morphd_endpoint_format(MORPHD_UDP, from, peer, sizeof peer);
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s: datagram from %s "
                   "dropped: %s", conf->name, ul->l->bound, peer, why);
    }
    return NULL;
}

/* rate_per_source: whether a datagram from `client` is within it; one
 * over it is dropped and counted. */
static bool within_rate(udp_listener_t *ul, morphd_service_t *svc,
                        const struct sockaddr *client)
{
    unsigned char key[16];
    morphd_stats_source_key(client, key);
    if (morphd_stats_rate_admit(svc->stats, key, svc->conf->rate_per_source,
                                svc->conf->rate_burst))
        return true;
    MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
    if (morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[MORPHD_ENDPOINT_TEXT];
        morphd_endpoint_format(MORPHD_UDP, client, peer, sizeof peer);
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s: datagram from %s "
                   "dropped: over rate_per_source", svc->conf->name,
                   ul->l->bound, peer);
    }
    return false;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags)
{
    udp_listener_t *ul = h->data;
    morphd_service_t *svc = ul->l->service;
    const morphd_service_conf_t *conf = svc->conf;
    if (flags & UV_UDP_MMSG_FREE) { /* end of a batch */
        flush_batch(ul);
        return;
    }
    if (nread < 0) {
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s: receive failed: %s",
                   conf->name, ul->l->bound, uv_strerror((int)nread));
        return;
    }
    if (from == NULL)
        return; /* nothing more to read right now */
    const unsigned char *msg = (const unsigned char *)buf->base;
    size_t len = (size_t)nread;
    const struct sockaddr *client = from;
    struct sockaddr_storage proxied;
    if (conf->proxy_protocol != 0 &&
        !(flags & UV_UDP_PARTIAL) &&
        (client = proxy_client(ul, svc, from, &msg, &len, &proxied)) == NULL)
        return;
    if (conf->rate_per_source != 0 && !within_rate(ul, svc, client))
        return;
    MORPHD_LANE_ADD(svc->counts, bytes_in, len); /* as the access log */
    if ((flags & UV_UDP_PARTIAL) || len > conf->max_message) {
        MORPHD_LANE_ADD(svc->counts, errors, 1);
        MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
        morphd_log(MORPH_LOG_DEBUG, "service %s: dropped a datagram over "
                   "max_message (%zu bytes)", conf->name, conf->max_message);
        return;
    }

    /* Each datagram is a connection: conn_open and conn_close around it
     * when a plugin has them; a plugin that makes state lazily gets the
     * array only if it asks (udp_states), which over UDP is rare. */
    morphd_chain_t *chain = svc->chain;
    void *states[chain->keeps_state ? chain->n : 1];
    /* on the wire: headers, the PROXY header if any, the payload; the
     * reply goes back to `from` with the same headers */
    size_t overhead = wire_overhead(from);
    size_t wire_in = (size_t)nread + overhead;
    morphd_conn_t c = {&udp_conn_ops, ul, svc, NULL, client, len, NULL,
                       NULL, client != from ? from : NULL, wire_in};
    ul->states = chain->keeps_state ? states : NULL;
    ul->states_used = false;
    if (chain->opens_conns) {
        char err[256];
        memset(states, 0, chain->n * sizeof *states);
        ul->states_used = true;
        if (morphd_chain_conn_open(chain, &c, states, err, sizeof err) != 0) {
            morphd_log(MORPH_LOG_WARN, "service %s: %s", conf->name, err);
            return;
        }
    }
    if (ul->states_used)
        c.states = states;
    /* In a batch the reply goes straight into the batch's buffer. */
    reply_batch_t *b = &ul->batch;
    bool batched = (flags & UV_UDP_MMSG_CHUNK) && ul->pending == 0 &&
                   b->n < UDP_BATCH;
    if (!batched)
        flush_batch(ul); /* keep the order of what is there already */
    size_t off = b->bytes.len;
    morphd_reply_t rep;
    morphd_service_handle(svc, &c, msg, len, 0, &morphd_frame_none, &b->bytes,
                          &rep);
    if (ul->states_used && rep.status != MORPHD_RUN_PENDING)
        morphd_chain_conn_close(chain, states);
    ul->states = NULL;
    if (rep.status == MORPHD_RUN_PENDING) {
        b->bytes.len = off; /* logged when it completes (udp_job_done) */
        return;
    }
    const char *end;
    bool send = reply_fate(ul, svc, &rep, overhead, wire_in, &end);
    if (svc->access_log_udp)
        log_datagram(svc, client, len, send ? rep.len : 0, end);
    if (!send) {
        b->bytes.len = off; /* a failed, silent or dropped reply */
        return;
    }
    if (batched) {
        b->offset[b->n] = off;
        b->len[b->n] = rep.len;
        if (from->sa_family == AF_INET)
            memcpy(&b->to[b->n], from, sizeof(struct sockaddr_in));
        else
            memcpy(&b->to[b->n], from, sizeof(struct sockaddr_in6));
        b->n++;
    } else {
        send_reply(ul, svc, b->bytes.data + off, rep.len, from);
        b->bytes.len = off;
    }
}

/* udp_receive_buffer: SO_RCVBUFFORCE (root may pass net.core.rmem_max),
 * else SO_RCVBUF; what the kernel gave is logged when it is less. */
static void set_receive_buffer(const morphd_listener_t *l, int fd)
{
    const morphd_service_conf_t *conf = l->service->conf;
    size_t want = conf->udp_receive_buffer;
    int v = want > INT_MAX / 2 ? INT_MAX / 2 : (int)want;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    int got = 0;
    socklen_t len = sizeof got;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
    got /= 2; /* Linux reports twice the size asked: its bookkeeping too */
    if ((size_t)got >= want)
        return;
    long max = -1;
    FILE *f = fopen("/proc/sys/net/core/rmem_max", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &max) != 1)
            max = -1;
        fclose(f);
    }
    morphd_log(MORPH_LOG_WARN, "service %s: %s: udp_receive_buffer = %zu, but "
               "the kernel gave %d bytes (net.core.rmem_max = %ld; only root "
               "may go past it: raise it with sysctl, or start morphd as root)",
               conf->name, l->endpoint.text, want, got, max);
}

static int udp_open(morphd_listener_t *l, uv_loop_t *loop, char *err,
                    size_t err_size)
{
    udp_listener_t *ul = calloc(1, sizeof *ul);
    if (ul != NULL) {
        ul->buf_size = UDP_SLOT * UDP_BATCH;
        ul->buf = malloc(ul->buf_size);
    }
    if (ul == NULL || ul->buf == NULL) {
        free(ul);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    ul->l = l;
    uv_udp_init_ex(loop, &ul->handle, AF_UNSPEC | UV_UDP_RECVMMSG);
    ul->handle.data = ul;
    const struct sockaddr *addr = (const struct sockaddr *)&l->endpoint.addr;
    unsigned flags = addr->sa_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
    int rc;
    if (l->adopted || l->share != NULL) { /* systemd's socket, or a copy */
        int fd = l->adopted ? l->fd : fcntl(l->share->fd, F_DUPFD_CLOEXEC, 0);
        l->share = NULL;
        rc = fd < 0 ? uv_translate_sys_error(errno)
                    : uv_udp_open(&ul->handle, fd);
        if (rc != 0 && fd >= 0)
            close(fd);
    } else if (l->reuseport) {
        int fd = morphd_listener_socket(l, SOCK_DGRAM);
        rc = fd < 0 ? fd : uv_udp_open(&ul->handle, fd);
    } else {
        rc = uv_udp_bind(&ul->handle, addr, flags);
    }
    if (rc == 0)
        rc = uv_udp_recv_start(&ul->handle, on_alloc, on_recv);
    if (rc != 0) {
        snprintf(err, err_size, "%s: cannot bind: %s", l->endpoint.text,
                 uv_strerror(rc));
        uv_close((uv_handle_t *)&ul->handle, free_unopened);
        return -1;
    }
    uv_fileno((uv_handle_t *)&ul->handle, &ul->fd);
    if (l->service->conf->udp_receive_buffer > 0)
        set_receive_buffer(l, ul->fd);
    int len = sizeof l->bound_addr;
    uv_udp_getsockname(&ul->handle, (struct sockaddr *)&l->bound_addr, &len);
    morphd_endpoint_format(MORPHD_UDP, (struct sockaddr *)&l->bound_addr,
                           l->bound, sizeof l->bound);
    l->impl = ul;
    return 0;
}

static void udp_close(morphd_listener_t *l)
{
    udp_listener_t *ul = l->impl;
    if (ul == NULL || ul->closing)
        return;
    ul->closing = true;
    uv_udp_recv_stop(&ul->handle);
    maybe_close_handle(ul);
}

static void udp_abort(morphd_listener_t *l)
{
    udp_listener_t *ul = l->impl;
    if (ul == NULL || ul->handle_closing)
        return;
    ul->closing = true;
    uv_udp_recv_stop(&ul->handle);
    while (ul->jobs != NULL) { /* their replies are not waited for */
        morphd_job_t *job = ul->jobs;
        morphd_service_t *svc = job->conn.owner;
        unlink_job(ul, job);
        morphd_job_abandon(job, NULL);
        morphd_service_unref(svc);
    }
    ul->handle_closing = true;
    /* pending sends are cancelled; on_send still runs for each */
    uv_close((uv_handle_t *)&ul->handle, on_handle_closed);
}

static void udp_rebind(morphd_listener_t *l)
{
    udp_listener_t *ul = l->impl;
    ul->l = l; /* datagrams from now on are answered by l's service */
}

const morphd_listener_ops_t morphd_listener_udp = {
    .name = "udp",
    .open = udp_open,
    .close = udp_close,
    .abort = udp_abort,
    .rebind = udp_rebind,
};
