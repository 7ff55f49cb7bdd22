/*
 * metrics_http.c -- the Prometheus endpoint (metrics_http.h), with
 * libmicrohttpd (loaded at the first start: mhd_symbols.h), on morphd's
 * main loop or on a thread of its own; GET and HEAD of /metrics only.
 * Silent clients must not starve a scrape (issue 21: 300 idle ones made
 * every scrape time out with 16 slots held for 10 s each): a slot is held
 * at most METRICS_IDLE_S without a byte, one source holds at most
 * METRICS_PER_SOURCE, and there are METRICS_SLOTS in all. A scrape formats into a
 * fresh buffer that libmicrohttpd frees after sending.
 */
#include "daemon/metrics_http.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/access_log.h"
#include "base/buf.h"
#include "conf/config.h"
#include "base/endpoint.h"
#include "base/log.h"
#include "daemon/mhd_symbols.h"
#include "daemon/status_page.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_SLOTS 256     /* connections at once (epoll: no FD_SETSIZE) */
#define METRICS_PER_SOURCE 16 /* from one address */
#define METRICS_IDLE_S 2      /* without a byte either way, then closed */

/* libmicrohttpd, once a start has loaded it */
static const morphd_mhd_t *mhd;

struct morphd_metrics_http {
    struct MHD_Daemon *daemon;
    morphd_stats_t **stats;
    const morphd_server_counters_t *counters;
    /* on a loop rather than a thread of its own (morphd_metrics_http_start) */
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    /* {"NAME":["ENDPOINT",...],...}: morphd_metrics_http_set_config */
    pthread_mutex_t lock;
    char *endpoints_json;
};

/* Appends `v` as a JSON string. */
static int put_json_string(morphd_buf_t *out, const char *v)
{
    int rc = morphd_buf_printf(out, "\"");
    for (; *v && rc == 0; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '"' || c == '\\')
            rc = morphd_buf_printf(out, "\\%c", c);
        else if (c < 0x20)
            rc = morphd_buf_printf(out, "\\u%04x", c);
        else
            rc = morphd_buf_printf(out, "%c", c);
    }
    return rc | morphd_buf_printf(out, "\"");
}

void morphd_metrics_http_set_config(morphd_metrics_http_t *m,
                                    const morphd_config_t *cfg)
{
    if (m == NULL)
        return;
    morphd_buf_t out = {0};
    int rc = morphd_buf_printf(&out, "{");
    for (size_t i = 0; i < cfg->n_services; i++) {
        const morphd_service_conf_t *svc = &cfg->services[i];
        rc |= morphd_buf_printf(&out, "%s", i ? "," : "");
        rc |= put_json_string(&out, svc->name);
        rc |= morphd_buf_printf(&out, ":[");
        for (size_t j = 0; j < svc->n_listen; j++) {
            rc |= morphd_buf_printf(&out, "%s", j ? "," : "");
            rc |= put_json_string(&out, svc->listen[j].text);
        }
        rc |= morphd_buf_printf(&out, "]");
    }
    rc |= morphd_buf_printf(&out, "}");
    rc |= morphd_buf_append(&out, "", 1);
    pthread_mutex_lock(&m->lock);
    free(m->endpoints_json);
    m->endpoints_json = rc == 0 ? (char *)out.data : NULL;
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        morphd_buf_free(&out);
}

static bool health_of(const morphd_server_counters_t *c, bool ready,
                      char *why, size_t why_size)
{
    why[0] = '\0';
    bool (*fn)(void *, char *, size_t) = ready ? c->ready : c->healthy;
    return fn == NULL || fn(c->health_arg, why, why_size);
}

/* /stats.json: what `morph stats --json` gives, and a "server" object of
 * what only the server knows (health, reloads, restarts, endpoints). */
static int put_stats_json(morphd_metrics_http_t *m, morphd_buf_t *out)
{
    morphd_buf_t stats = {0};
    if (morphd_stats_format(*m->stats, true, &stats) != 0 || stats.len < 2) {
        morphd_buf_free(&stats);
        return -1;
    }
    /* the object without its closing brace and newline */
    size_t keep = stats.len;
    while (keep > 0 && stats.data[keep - 1] != '}')
        keep--;
    int rc = morphd_buf_append(out, stats.data, keep ? keep - 1 : 0);
    morphd_buf_free(&stats);
    const morphd_server_counters_t *c = m->counters;
    char hwhy[256], rwhy[256];
    bool healthy = health_of(c, false, hwhy, sizeof hwhy);
    bool ready = health_of(c, true, rwhy, sizeof rwhy);
    rc |= morphd_buf_printf(out, ",\"server\":{\"version\":\"%s\","
                            "\"isolation\":\"%s\",\"healthy\":%s,\"ready\":%s,"
                            "\"why\":", MORPH_VERSION,
                            c->isolation ? c->isolation : "thread",
                            healthy ? "true" : "false", ready ? "true" : "false");
    rc |= put_json_string(out, !healthy ? hwhy : !ready ? rwhy : "");
    rc |= morphd_buf_printf(
        out, ",\"workers\":%llu,\"reloads\":%llu,\"reload_failures\":%llu,"
             "\"worker_restarts\":%llu,\"endpoints\":",
        (unsigned long long)__atomic_load_n(&c->workers, __ATOMIC_RELAXED),
        (unsigned long long)__atomic_load_n(&c->reloads, __ATOMIC_RELAXED),
        (unsigned long long)__atomic_load_n(&c->reload_failures, __ATOMIC_RELAXED),
        (unsigned long long)__atomic_load_n(&c->worker_restarts, __ATOMIC_RELAXED));
    pthread_mutex_lock(&m->lock);
    rc |= morphd_buf_printf(out, "%s", m->endpoints_json ? m->endpoints_json : "{}");
    pthread_mutex_unlock(&m->lock);
    rc |= morphd_buf_printf(out, "}}\n");
    return rc;
}


static int put_server(morphd_buf_t *out, const morphd_server_counters_t *c)
{
    int rc = 0;
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } rows[] = {
        {"morph_reloads_total", "counter",
         "configurations reloaded (SIGHUP, systemctl reload)",
         offsetof(morphd_server_counters_t, reloads)},
        {"morph_reload_failures_total", "counter",
         "reloads refused: the configuration before them went on serving",
         offsetof(morphd_server_counters_t, reload_failures)},
        {"morph_worker_restarts_total", "counter",
         "workers replaced after dying (isolation = process; threads are "
         "never replaced)",
         offsetof(morphd_server_counters_t, worker_restarts)},
        {"morph_workers", "gauge", "workers serving",
         offsetof(morphd_server_counters_t, workers)},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        const uint64_t *v =
            (const uint64_t *)((const char *)c + rows[i].offset);
        rc |= morphd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n",
                          rows[i].name, rows[i].help, rows[i].name,
                          rows[i].type, rows[i].name,
                          (unsigned long long)__atomic_load_n(
                              v, __ATOMIC_RELAXED));
    }
    if (c->access_log != NULL)
        rc |= morphd_buf_printf(
            out, "# HELP morph_access_log_dropped_total access log lines lost "
                 "(the queue full, or the file not writable)\n"
                 "# TYPE morph_access_log_dropped_total counter\n"
                 "morph_access_log_dropped_total %llu\n",
            (unsigned long long)morphd_access_log_dropped(c->access_log));
    rc |= morphd_buf_printf(out, "# HELP morph_build_info morphd's version\n"
                            "# TYPE morph_build_info gauge\n"
                            "morph_build_info{version=\"%s\"} 1\n",
                            MORPH_VERSION);
    return rc;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             void *body, size_t len, enum MHD_ResponseMemoryMode mode,
                             const char *type)
{
    struct MHD_Response *r = mhd->create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    mhd->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        mhd->add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = mhd->queue_response(conn, status, r);
    mhd->destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    morphd_metrics_http_t *m = cls;
    if (*con_cls == NULL) { /* headers only so far: answer once all is in */
        *con_cls = m;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* a body nobody asked for: ignored */
        *upload_size = 0;
        return MHD_YES;
    }
    static char not_found[] = "morphd serves /metrics, /healthz, /readyz, "
                              "/stats.json and its status page at /\n";
    static char not_allowed[] = "GET or HEAD\n";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed,
                     sizeof not_allowed - 1, MHD_RESPMEM_PERSISTENT,
                     "text/plain");
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) {
        char why[256];
        bool ok = health_of(m->counters, url[1] == 'r', why, sizeof why);
        char *body = NULL;
        int n = asprintf(&body, "%s\n", ok ? "ok" : why);
        if (n < 0)
            return MHD_NO;
        return reply(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                     body, (size_t)n, MHD_RESPMEM_MUST_FREE, "text/plain");
    }
    if (strcmp(url, "/") == 0)
        return reply(conn, MHD_HTTP_OK, (void *)morphd_status_page,
                     morphd_status_page_len, MHD_RESPMEM_PERSISTENT,
                     "text/html; charset=utf-8");
    if (strcmp(url, "/stats.json") == 0) {
        morphd_buf_t json = {0};
        if (put_stats_json(m, &json) != 0) {
            morphd_buf_free(&json);
            static char oom[] = "out of memory\n";
            return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, oom,
                         sizeof oom - 1, MHD_RESPMEM_PERSISTENT, "text/plain");
        }
        return reply(conn, MHD_HTTP_OK, json.data, json.len,
                     MHD_RESPMEM_MUST_FREE, "application/json");
    }
    if (strcmp(url, "/metrics") != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, not_found,
                     sizeof not_found - 1, MHD_RESPMEM_PERSISTENT,
                     "text/plain");
    morphd_buf_t out = {0};
    if (morphd_stats_prometheus(m->stats, &out) != 0 ||
        put_server(&out, m->counters) != 0) {
        morphd_buf_free(&out);
        static char oom[] = "out of memory\n";
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, oom,
                     sizeof oom - 1, MHD_RESPMEM_PERSISTENT, "text/plain");
    }
    return reply(conn, MHD_HTTP_OK, out.data, out.len, MHD_RESPMEM_MUST_FREE,
                 CONTENT_TYPE);
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    morphd_log(MORPH_LOG_WARN, "metrics: %s", msg);
}

/* On a loop: MHD is run when its epoll descriptor is ready, and again at
 * its next timeout (a client's 10 s). */
static void arm_timer(morphd_metrics_http_t *m);

static void on_mhd_timer(uv_timer_t *t)
{
    morphd_metrics_http_t *m = t->data;
    mhd->run(m->daemon);
    arm_timer(m);
}

static void arm_timer(morphd_metrics_http_t *m)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (mhd->get_timeout(m->daemon, &ms) == MHD_YES)
        uv_timer_start(&m->timer, on_mhd_timer, ms, 0);
    else
        uv_timer_stop(&m->timer);
}

static void on_mhd_ready(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    morphd_metrics_http_t *m = p->data;
    mhd->run(m->daemon);
    arm_timer(m);
}

morphd_metrics_http_t *morphd_metrics_http_start(
    const char *text, morphd_stats_t **stats,
    const morphd_server_counters_t *counters, uv_loop_t *loop, char *bound,
    size_t bound_size, char *err, size_t err_size)
{
    struct sockaddr_storage ss;
    if (morphd_metrics_parse_listen(text, &ss, err, err_size) != 0)
        return NULL;
    if ((mhd = morphd_mhd_load(err, err_size)) == NULL)
        return NULL;
    morphd_metrics_http_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    m->stats = stats;
    m->counters = counters;
    pthread_mutex_init(&m->lock, NULL);
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (loop == NULL)
        flags |= MHD_USE_INTERNAL_POLLING_THREAD;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    m->daemon = mhd->start_daemon(
        flags, 0, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_error, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_SLOTS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_PER_SOURCE,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_IDLE_S,
        MHD_OPTION_END);
    if (m->daemon == NULL) {
        snprintf(err, err_size, "metrics_listen = %s: cannot listen (the "
                 "address in use, or not this host's?)", text);
        free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *info =
        mhd->get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
    struct sockaddr_storage b = ss;
    if (info != NULL) {
        if (b.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&b)->sin6_port = htons(info->port);
        else
            ((struct sockaddr_in *)&b)->sin_port = htons(info->port);
    }
    char hostport[MORPHD_ENDPOINT_TEXT];
    morphd_sockaddr_format((struct sockaddr *)&b, hostport, sizeof hostport);
    snprintf(bound, bound_size, "http://%s", hostport);
    if (loop != NULL) {
        const union MHD_DaemonInfo *e =
            mhd->get_daemon_info(m->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (e == NULL || uv_poll_init(loop, &m->poll, e->epoll_fd) != 0) {
            snprintf(err, err_size, "metrics_listen = %s: cannot watch the "
                     "server's descriptor", text);
            mhd->stop_daemon(m->daemon);
            free(m);
            return NULL;
        }
        uv_timer_init(loop, &m->timer);
        m->poll.data = m->timer.data = m;
        m->open_handles = 2;
        uv_poll_start(&m->poll, UV_READABLE, on_mhd_ready);
        arm_timer(m);
    }
    return m;
}

static void free_metrics(morphd_metrics_http_t *m)
{
    pthread_mutex_destroy(&m->lock);
    free(m->endpoints_json);
    free(m);
}

static void on_handle_closed(uv_handle_t *h)
{
    morphd_metrics_http_t *m = h->data;
    if (--m->open_handles == 0)
        free_metrics(m);
}

void morphd_metrics_http_stop(morphd_metrics_http_t *m)
{
    if (m == NULL)
        return;
    if (m->open_handles == 0) { /* its own thread */
        mhd->stop_daemon(m->daemon);
        free_metrics(m);
        return;
    }
    uv_poll_stop(&m->poll); /* before MHD closes the descriptor */
    mhd->stop_daemon(m->daemon);
    uv_close((uv_handle_t *)&m->poll, on_handle_closed);
    uv_close((uv_handle_t *)&m->timer, on_handle_closed);
}
