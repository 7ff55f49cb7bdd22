/*
 * listener_stream.c -- the stream transports: tcp://, tls:// and unix://:
 * their listeners, accepting and admission. The connection's I/O is
 * stream_io.c, the PROXY opening stream_proxy.c (stream_conn.h).
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
#include "net/listener.h"
#include "net/listener_unix.h"
#include "base/log.h"
#include "net/proxy_protocol.h"
#include "net/service.h"

#include "net/stream_conn.h"

/* --- admission ---------------------------------------------------------------- */


/* The per-source key of a client: its address (a PROXY header's, when it
 * gave one), or for unix:// its user. */
void stream_source_key(const stream_conn_t *c, unsigned char key[16])
{
    struct ucred cred;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (is_unix(c)) {
        morphd_stats_source_key_uid(stream_peer_cred(c, &cred) ? cred.uid : (uid_t)-1,
                                    key);
        return;
    }
    if (proxied(c) != NULL)
        memcpy(&ss, &proxied(c)->src, sizeof ss);
    else
        getpeername(stream_conn_fd(c), (struct sockaddr *)&ss, &len);
    morphd_stats_source_key((struct sockaddr *)&ss, key);
}

/* rate_per_source: whether the client of source `key` may connect now
 * (counted when not). */
bool stream_within_rate(const stream_conn_t *c, const unsigned char key[16])
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
                   stream_peer_text(c, peer, sizeof peer));
    }
    return false;
}

/* The client's source `key` is known (its PROXY header has been read):
 * count it for max_connections_per_source, and the connection as accepted.
 * Returns false after closing. */
bool stream_admit_source(stream_conn_t *c, const unsigned char key[16])
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
                       stream_peer_text(c, peer, sizeof peer));
        }
        ended(c, "limit");
        stream_conn_close(c);
        return false;
    }
    s->has_source = true;
    MORPHD_STAT_ADD(svc->stats, connections_accepted, 1);
    return true;
}

/* --- accepting -------------------------------------------------------------- */

/* access_log: the connection's record, with its client as known now (a
 * PROXY header may tell better later). Returns false when out of memory. */
static bool start_log(stream_conn_t *c)
{
    stream_session_t *s = stream_session_of(c);
    if (s == NULL || (s->log = calloc(1, sizeof *s->log)) == NULL)
        return false;
    s->log->started_ms = uv_now(c->h.handle.loop);
    s->log->uid = s->log->pid = -1;
    struct ucred cred;
    if (is_unix(c)) {
        if (stream_peer_cred(c, &cred)) {
            s->log->uid = cred.uid;
            s->log->pid = cred.pid;
        }
    } else {
        socklen_t len = sizeof s->log->client;
        if (getpeername(stream_conn_fd(c), (struct sockaddr *)&s->log->client,
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
    uv_close(&c->h.handle, stream_free_conn);
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
    stream_conn_t *c = stream_reserve_listing(svc->io) ? calloc(1, conn_size(type))
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
        uv_close(&c->h.handle, stream_free_conn);
        return NULL;
    }
    c->last_active = NOW31(server->loop);
    c->h.handle.data = svc;
    if (stream_conn_fd(c) >= fd_ceiling) { /* the last descriptors are kept */
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
    if (getpeername(stream_conn_fd(c), (struct sockaddr *)&ss, &len) != 0) {
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
                       stream_peer_text(c, peer, sizeof peer));
        }
        drop_unopened(c);
        return false;
    }
    stream_session_t *s = stream_session_of(c);
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
    stream_source_key(c, key); /* a unix:// client is its user */
    if (!stream_within_rate(c, key)) {
        drop_unopened(c);
        return false;
    }
    if (!per_source)
        return true;
    stream_session_t *s = stream_session_of(c);
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
    morphd_transport_t t = l->endpoint.transport;
    if (morphd_transport_is_tls(t)) {
        stream_session_t *s = stream_session_of(c);
        if (s == NULL || svc->tls == NULL ||
            (s->tls = morphd_tls_new(svc->tls, &svc->io->tls, c,
                                     t == MORPHD_HTTPS)) == NULL)
            goto nomem;
        if (!proxy)
            s->accepted_at = NOW31(c->h.handle.loop);
    }
    if (morphd_transport_is_http(t)) { /* its codec, not framing's */
        stream_session_t *s = stream_session_of(c);
        if (s == NULL)
            goto nomem;
        s->codec = &svc->http_codec;
        if (svc->http_codec.http_stream &&
            (s->decoder.state = morphd_http_stream_new()) == NULL)
            goto nomem;
        uint32_t now = NOW31(c->h.handle.loop);
        s->request_at = now != 0 ? now : 1; /* nginx's client_header_timeout */
    }
    if (t == MORPHD_TCP && morphd_service_conf_detects(svc->conf)) {
        stream_session_t *s = stream_session_of(c); /* detect: told later */
        if (s == NULL)
            goto nomem;
        s->detecting = true;
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
                       stream_peer_text(c, peer, sizeof peer));
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
    stream_list_conn(c, svc->io);
    if (server->type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (!proxy && !stream_open_conn(c))
        return;
    stream_start_reading(c);
    if (!c->reading) {
        stream_conn_close(c);
        return;
    }
    if (!proxy && morphd_log_enabled(MORPH_LOG_DEBUG)) {
        char peer[80];
        morphd_log(MORPH_LOG_DEBUG, "service %s: %s connected", conf->name,
                   stream_peer_text(c, peer, sizeof peer));
    }
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
