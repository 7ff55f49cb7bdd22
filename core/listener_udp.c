/*
 * listener_udp.c -- the UDP front end: one datagram is one message, and its
 * reply goes back to the sender. Datagrams come in batches (recvmmsg) and
 * their replies go out in batches (sendmmsg). Replies are sent at once when the socket
 * takes them; otherwise they are queued up to max_pending_output bytes, and
 * beyond that dropped and counted, because UDP has no backpressure to apply.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "frontend.h"
#include "log.h"
#include "service.h"

/* libuv's recvmmsg slot size (UV__UDP_DGRAM_MAXSIZE), and how many
 * datagrams one system call may bring: fewer system calls under load, the
 * same behaviour otherwise. 1 MiB per UDP listener and worker, touched
 * only as datagrams arrive. */
#define UDP_SLOT 65536
#define UDP_BATCH 16

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
    morphd_listener_closed(l);
}

static void free_unopened(uv_handle_t *h)
{
    udp_listener_t *ul = h->data;
    free(ul->buf);
    free(ul);
}

static void maybe_close_handle(udp_listener_t *ul)
{
    if (ul->closing && ul->pending == 0 && !ul->handle_closing) {
        ul->handle_closing = true;
        uv_close((uv_handle_t *)&ul->handle, on_handle_closed);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    udp_listener_t *ul = h->data;
    *buf = uv_buf_init((char *)ul->buf, (unsigned)ul->buf_size);
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

static void send_reply(udp_listener_t *ul, const unsigned char *data,
                       size_t len, const struct sockaddr *to)
{
    morphd_service_t *svc = ul->l->service;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (ul->pending == 0) {
        int rc = uv_udp_try_send(&ul->handle, &b, 1, to);
        if (rc >= 0)
            return;
        if (rc != UV_EAGAIN) {
            morphd_log(MORPH_LOG_DEBUG, "service %s: reply of %zu bytes "
                       "failed: %s", svc->conf->name, len, uv_strerror(rc));
            MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
            return;
        }
    }
    send_req_t *s = NULL;
    if (ul->pending + len <= svc->conf->max_pending_output)
        s = malloc(sizeof *s + len);
    if (s == NULL) {
        MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
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
        MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
        return;
    }
    ul->pending += len;
}

/* Holds a reply until its batch ends; 0, or -1 when it must go the usual
 * way (replies already queued, or no memory). */
static int batch_reply(udp_listener_t *ul, const unsigned char *data,
                       size_t len, const struct sockaddr *to)
{
    reply_batch_t *b = &ul->batch;
    if (ul->pending > 0 || b->n == UDP_BATCH)
        return -1; /* keep the order of what is already queued */
    size_t off = b->bytes.len;
    if (morphd_buf_append(&b->bytes, data, len) != 0)
        return -1;
    b->offset[b->n] = off;
    b->len[b->n] = len;
    memcpy(&b->to[b->n], to, to->sa_family == AF_INET6
                                 ? sizeof(struct sockaddr_in6)
                                 : sizeof(struct sockaddr_in));
    b->n++;
    return 0;
}

/* Sends the batch with one system call; what the socket does not take
 * goes through the queue. */
static void flush_batch(udp_listener_t *ul)
{
    reply_batch_t *b = &ul->batch;
    if (b->n == 0)
        return;
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    for (size_t i = 0; i < b->n; i++) {
        iov[i].iov_base = b->bytes.data + b->offset[i];
        iov[i].iov_len = b->len[i];
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_name = &b->to[i];
        msgs[i].msg_hdr.msg_namelen = b->to[i].ss_family == AF_INET6
                                          ? sizeof(struct sockaddr_in6)
                                          : sizeof(struct sockaddr_in);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uv_os_fd_t fd;
    int sent = 0;
    if (uv_fileno((uv_handle_t *)&ul->handle, &fd) == 0) {
        sent = sendmmsg(fd, msgs, (unsigned)b->n, MSG_DONTWAIT);
        if (sent < 0)
            sent = 0;
    }
    for (size_t i = (size_t)sent; i < b->n; i++) /* the rest: queued */
        send_reply(ul, b->bytes.data + b->offset[i], b->len[i],
                   (const struct sockaddr *)&b->to[i]);
    b->n = 0;
    b->bytes.len = 0;
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
    if ((flags & UV_UDP_PARTIAL) || (size_t)nread > conf->max_message) {
        MORPHD_STAT_ADD(svc->stats, errors, 1);
        MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
        morphd_log(MORPH_LOG_DEBUG, "service %s: dropped a datagram over "
                   "max_message (%zu bytes)", conf->name, conf->max_message);
        return;
    }

    morphd_chain_t *chain = svc->chain;
    void *states[chain->has_conn_hooks ? chain->n : 1];
    if (chain->has_conn_hooks) {
        char err[256];
        if (morphd_chain_conn_open(chain, states, err, sizeof err) != 0) {
            morphd_log(MORPH_LOG_WARN, "service %s: %s", conf->name, err);
            return;
        }
    }
    svc->ctx->reply.len = 0;
    int rc = morphd_service_handle(svc, chain->has_conn_hooks ? states : NULL,
                                   (const unsigned char *)buf->base,
                                   (size_t)nread, 0, "");
    if (chain->has_conn_hooks)
        morphd_chain_conn_close(chain, states);
    if (rc != 0)
        return; /* a message a plugin failed is not answered */
    /* No amplification: a spoofed source must not get more than a small
     * multiple of what it sent. */
    if (svc->ctx->reply.len > conf->udp_max_reply_ratio * (size_t)nread) {
        MORPHD_STAT_ADD(svc->stats, datagrams_dropped, 1);
        if (morphd_log_enabled(MORPH_LOG_DEBUG))
            morphd_log(MORPH_LOG_DEBUG, "service %s: reply of %zu bytes to a "
                       "datagram of %zd dropped (udp_max_reply_ratio = %zu)",
                       conf->name, svc->ctx->reply.len, nread,
                       conf->udp_max_reply_ratio);
        return;
    }
    if (!(flags & UV_UDP_MMSG_CHUNK) ||
        batch_reply(ul, svc->ctx->reply.data, svc->ctx->reply.len, from) != 0)
        send_reply(ul, svc->ctx->reply.data, svc->ctx->reply.len, from);
}

static int udp_open(morphd_listener_t *l, char *err, size_t err_size)
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
    uv_udp_init_ex(l->service->ctx->loop, &ul->handle,
                   AF_UNSPEC | UV_UDP_RECVMMSG);
    ul->handle.data = ul;
    const struct sockaddr *addr = (const struct sockaddr *)&l->endpoint.addr;
    unsigned flags = addr->sa_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
    int rc;
    if (l->reuseport) {
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

static void udp_drain(morphd_listener_t *l)
{
    (void)l; /* no connections: close() already finishes queued replies */
}

static void udp_abort(morphd_listener_t *l)
{
    udp_listener_t *ul = l->impl;
    if (ul == NULL || ul->handle_closing)
        return;
    ul->closing = ul->handle_closing = true;
    /* pending sends are cancelled; on_send still runs for each */
    uv_close((uv_handle_t *)&ul->handle, on_handle_closed);
}

static void udp_rebind(morphd_listener_t *l)
{
    udp_listener_t *ul = l->impl;
    ul->l = l; /* datagrams from now on are answered by l's service */
}

const morphd_frontend_t morphd_frontend_udp = {
    .name = "udp",
    .open = udp_open,
    .close = udp_close,
    .drain = udp_drain,
    .abort = udp_abort,
    .rebind = udp_rebind,
};
