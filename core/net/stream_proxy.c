/*
 * stream_proxy.c -- the PROXY protocol opening of a stream connection
 * (stream_conn.h): on a proxy_protocol service the first bytes are the
 * balancer's header (proxy_protocol.c parses it), which may come in
 * pieces; until it is whole the connection is nobody's client.
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
#include "net/listener.h"
#include "net/listener_unix.h"
#include "base/log.h"
#include "net/proxy_protocol.h"
#include "net/service.h"

#include "net/stream_conn.h"


/* A connection on a proxy_protocol service: its first bytes are the PROXY
 * header, which may come in pieces. Once whole, the client's address is
 * the connection's, the chain opens for it, and what followed the header
 * is read as the client's first bytes. A connection whose first bytes are
 * not a valid header is closed and counted; none of it reaches a plugin. */
void stream_proxy_on_read(stream_conn_t *c, ssize_t nread, const uv_buf_t *buf)
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
                           stream_peer_text(c, peer, sizeof peer));
        }
        stream_conn_close(c);
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
                stream_conn_close(c);
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
                       "%s", svc->conf->name, stream_peer_text(c, peer, sizeof peer),
                       why);
        stream_conn_close(c);
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
        stream_source_key(c, key);
    if (!h.local && !stream_within_rate(c, key)) { /* LOCAL: the balancer's check */
        ended(c, "rate_limited");
        stream_conn_close(c);
        return;
    }
    if (!stream_admit_source(c, key) || !stream_open_conn(c))
        return;
    if (morphd_log_enabled(MORPH_LOG_DEBUG))
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s connected (PROXY v%d%s)",
                   svc->conf->name, stream_peer_text(c, peer, sizeof peer), h.version,
                   h.local ? ", LOCAL" : "");
    if ((size_t)nread > used) {
        uv_buf_t rest = buf_of(buf->base + used, (size_t)nread - used);
        stream_dispatch_read(c, (ssize_t)rest.len, &rest);
    }
}
