/*
 * admin.c -- the admin endpoint of admin.h. Requests are one line; each
 * connection gets one answer. The socket file is created with mode 0660 so
 * only its owner and group can read the counters. Clients are few and
 * quick (`morph stats`): at most ADMIN_MAX_CONNS at once, each given
 * ADMIN_TIMEOUT_MS for its request, so that clients that connect and say
 * nothing cannot hold the descriptors the services need. Past
 * ADMIN_MAX_CONNS a newcomer is still taken (up to ADMIN_HARD_CONNS), and
 * the oldest clients that have said nothing for ADMIN_GRACE_MS make room:
 * a request on its way is never refused for silent clients that
 * reconnect (issue 21: 12 of them failed 20 of 20 `morph stats`), and
 * the descriptors stay bounded.
 */
#include "daemon/admin.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "daemon/privileges.h"
#include "base/safe_path.h"

#define ADMIN_MAX_CONNS 8    /* kept for as long as ADMIN_TIMEOUT_MS */
#define ADMIN_HARD_CONNS 32  /* at once, briefly, while silent ones go */
#define ADMIN_TIMEOUT_MS 2000
#define ADMIN_GRACE_MS 100   /* a newcomer's time to send its request */

typedef struct admin_conn admin_conn_t;

struct morphd_admin {
    uv_pipe_t pipe;
    morphd_stats_t **stats;
    char *path;
    bool made;        /* the socket file is ours: removed at close */
    dev_t dev;
    ino_t ino;
    uv_timer_t sweep;    /* closes connections past ADMIN_TIMEOUT_MS */
    admin_conn_t *conns; /* open ones, newest first */
    size_t n_conns;      /* in the list, until their close completes */
    size_t n_open;       /* of those, not being closed: the slots taken */
    uint64_t evicted;    /* silent ones closed to make room */
    uint64_t refused;    /* over ADMIN_MAX_CONNS, since the last log */
    uint64_t last_refused_log;
    int closing;         /* handles still to close (pipe, timer) */
};

struct admin_conn {
    uv_pipe_t pipe;
    morphd_admin_t *admin;
    admin_conn_t *prev, *next;
    uint64_t started; /* uv_now */
    char request[64];
    size_t len;
    uv_write_t write;
    char *answer;
    int done; /* answered or closing: the sweep leaves it be */
    int closing;
    int spoke; /* its request had arrived when it was accepted */
};

static void on_conn_closed(uv_handle_t *h)
{
    admin_conn_t *c = (admin_conn_t *)h;
    morphd_admin_t *a = c->admin;
    if (a != NULL) {
        if (c->prev)
            c->prev->next = c->next;
        else
            a->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        a->n_conns--;
    }
    free(c->answer);
    free(c);
}

static void close_conn(admin_conn_t *c)
{
    c->done = 1;
    if (!c->closing && c->admin != NULL)
        c->admin->n_open--;
    c->closing = 1;
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    close_conn((admin_conn_t *)req->handle);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    admin_conn_t *c = (admin_conn_t *)h;
    *buf = uv_buf_init(c->request + c->len,
                       (unsigned)(sizeof c->request - 1 - c->len));
}

static void answer(admin_conn_t *c)
{
    c->done = 1; /* the answer goes at the client's pace: it asked */
    uv_read_stop((uv_stream_t *)&c->pipe);
    char *nl = strchr(c->request, '\n');
    if (nl)
        *nl = '\0';
    morphd_buf_t out = MORPHD_BUF_INIT;
    int rc;
    if (strcmp(c->request, "stats") == 0 || strcmp(c->request, "stats json") == 0)
        rc = morphd_stats_format(*c->admin->stats,
                                 strcmp(c->request, "stats json") == 0, &out);
    else
        rc = morphd_buf_printf(&out, "error: unknown request '%.40s'; try "
                               "'stats' or 'stats json'\n", c->request);
    if (rc != 0 || out.len == 0) {
        morphd_buf_free(&out);
        close_conn(c);
        return;
    }
    c->answer = (char *)out.data;
    uv_buf_t b = uv_buf_init(c->answer, (unsigned)out.len);
    if (uv_write(&c->write, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0)
        close_conn(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    admin_conn_t *c = (admin_conn_t *)s;
    if (nread > 0) {
        c->len += (size_t)nread;
        c->request[c->len] = '\0';
        if (strchr(c->request, '\n') || c->len == sizeof c->request - 1)
            answer(c);
    } else if (nread < 0) {
        if (c->len > 0)
            answer(c); /* a request without newline, then EOF */
        else
            close_conn(c);
    }
}

/* The oldest client that has sent nothing and been accepted at least
 * `min_age` ms ago (NULL: none). */
static admin_conn_t *oldest_silent(morphd_admin_t *a, uint64_t now,
                                   uint64_t min_age)
{
    admin_conn_t *silent = NULL;
    for (admin_conn_t *o = a->conns; o != NULL; o = o->next)
        if (!o->done && o->len == 0 && !o->spoke && now - o->started >= min_age)
            silent = o; /* the list is newest first */
    return silent;
}

static void log_crowd(morphd_admin_t *a, uint64_t now)
{
    if (a->last_refused_log != 0 && now - a->last_refused_log < 60000)
        return;
    morphd_log(MORPH_LOG_WARN, "admin %s: %d clients at once already; %llu "
               "silent one%s closed to make room, %llu refused (each has %d "
               "ms to ask; logged at most once a minute)", a->path,
               ADMIN_MAX_CONNS, (unsigned long long)a->evicted,
               a->evicted == 1 ? "" : "s", (unsigned long long)a->refused,
               ADMIN_TIMEOUT_MS);
    a->last_refused_log = now;
    a->refused = a->evicted = 0;
}

/* Back to ADMIN_MAX_CONNS: closes the oldest silent clients past their
 * grace, as long as there are more. */
static void trim(morphd_admin_t *a, uint64_t now)
{
    bool trimmed = false;
    admin_conn_t *c;
    while (a->n_open > ADMIN_MAX_CONNS &&
           (c = oldest_silent(a, now, ADMIN_GRACE_MS)) != NULL) {
        close_conn(c);
        a->evicted++;
        trimmed = true;
    }
    if (trimmed)
        log_crowd(a, now);
}

/* Closes the clients that have not asked within ADMIN_TIMEOUT_MS, and
 * those past ADMIN_MAX_CONNS that have not asked within their grace. */
static void on_sweep(uv_timer_t *t)
{
    morphd_admin_t *a = t->data;
    uint64_t now = uv_now(t->loop);
    for (admin_conn_t *c = a->conns; c != NULL; c = c->next)
        if (!c->done && now - c->started >= ADMIN_TIMEOUT_MS)
            close_conn(c);
    trim(a, now);
    if (a->n_conns == 0)
        uv_timer_stop(t);
}

static void on_connection(uv_stream_t *server, int status)
{
    morphd_admin_t *a = server->data;
    if (status < 0)
        return;
    admin_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        morphd_log(MORPH_LOG_ERROR, "admin: out of memory accepting a client");
        return;
    }
    uv_pipe_init(server->loop, &c->pipe, 0);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed); /* admin NULL */
        return;
    }
    /* whether its request is there already: then it is never taken for
     * silent */
    uv_os_fd_t fd;
    int avail = 0;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
        ioctl(fd, FIONREAD, &avail) == 0 && avail > 0)
        c->spoke = 1;
    uint64_t now = uv_now(server->loop);
    if (a->n_open >= ADMIN_HARD_CONNS) {
        admin_conn_t *silent = oldest_silent(a, now, 0);
        if (silent != NULL) {
            close_conn(silent);
            a->evicted++;
        } else {
            /* every one holds a request under way: accepted and closed at
             * once, so that the queue drains */
            uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
            a->refused++;
            log_crowd(a, now);
            return;
        }
        log_crowd(a, now);
    }
    c->admin = a;
    c->started = now;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->n_open++;
    if (a->n_conns++ == 0)
        uv_timer_start(&a->sweep, on_sweep, ADMIN_GRACE_MS, ADMIN_GRACE_MS);
    trim(a, now); /* older silent ones go first; this one has its grace */
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) != 0)
        close_conn(c);
}

morphd_admin_t *morphd_admin_open(uv_loop_t *loop, const char *path,
                                  morphd_stats_t **stats, char *err,
                                  size_t err_size)
{
    char why[512];
    if (morphd_path_check_folder(path, why, sizeof why) != 0) {
        snprintf(err, err_size, "%s", why);
        return NULL;
    }
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            snprintf(err, err_size, "%s exists and is not a socket", path);
            return NULL;
        }
        unlink(path); /* left by a morphd that did not exit cleanly */
    }
    morphd_admin_t *a = calloc(1, sizeof *a);
    if (a == NULL || (a->path = strdup(path)) == NULL) {
        free(a);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    a->stats = stats;
    uv_pipe_init(loop, &a->pipe, 0);
    a->pipe.data = a;
    uv_timer_init(loop, &a->sweep);
    a->sweep.data = a;
    uv_unref((uv_handle_t *)&a->sweep);
    /* srw-rw----, and the user's and its group's when root switches to a
     * user (`morph stats` works for the service's group), made so that no
     * step follows a name someone else could have replaced */
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    morphd_privileges_target(&uid, &gid);
    struct stat made;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? uv_translate_sys_error(errno) : 0;
    if (rc == 0 && morphd_socket_file_bind(fd, path, 0660, uid, gid, &made,
                                           why, sizeof why) != 0) {
        snprintf(err, err_size, "%s: %s", path, why);
        close(fd);
        morphd_admin_close(a);
        return NULL;
    }
    if (rc == 0) {
        a->made = true;
        a->dev = made.st_dev;
        a->ino = made.st_ino;
    }
    if (rc == 0 && (rc = uv_pipe_open(&a->pipe, fd)) != 0)
        close(fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->pipe, 16, on_connection);
    if (rc != 0) {
        snprintf(err, err_size, "%s: %s", path, uv_strerror(rc));
        morphd_admin_close(a);
        return NULL;
    }
    return a;
}

static void on_admin_closed(uv_handle_t *h)
{
    morphd_admin_t *a = h->data;
    if (--a->closing > 0)
        return;
    free(a->path);
    free(a);
}

void morphd_admin_close(morphd_admin_t *a)
{
    if (a == NULL)
        return;
    struct stat sb;
    if (!a->made || lstat(a->path, &sb) != 0 || sb.st_dev != a->dev ||
        sb.st_ino != a->ino)
        ; /* not ours, or gone: another file there is left alone */
    else if (unlink(a->path) != 0 && errno != ENOENT)
        morphd_log(MORPH_LOG_INFO, "admin socket %s not removed: %s (its "
                   "folder is not writable by the user morphd runs as; the "
                   "next morphd replaces it)", a->path, strerror(errno));
    for (admin_conn_t *c = a->conns; c != NULL; c = c->next) {
        c->admin = NULL; /* the list goes with a */
        close_conn(c);
    }
    a->conns = NULL;
    a->closing = 2;
    uv_close((uv_handle_t *)&a->sweep, on_admin_closed);
    uv_close((uv_handle_t *)&a->pipe, on_admin_closed);
}
