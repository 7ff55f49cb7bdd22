/*
 * admin.c -- the admin endpoint of admin.h. Requests are one line; each
 * connection gets one answer. The socket file is created with mode 0660 so
 * only its owner and group can read the counters.
 */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

struct morphd_admin {
    uv_pipe_t pipe;
    morphd_stats_t **stats;
    char *path;
};

typedef struct admin_conn {
    uv_pipe_t pipe;
    morphd_admin_t *admin;
    char request[64];
    size_t len;
    uv_write_t write;
    char *answer;
} admin_conn_t;

static void on_conn_closed(uv_handle_t *h)
{
    admin_conn_t *c = (admin_conn_t *)h;
    free(c->answer);
    free(c);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    uv_close((uv_handle_t *)req->handle, on_conn_closed);
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
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    c->answer = (char *)out.data;
    uv_buf_t b = uv_buf_init(c->answer, (unsigned)out.len);
    if (uv_write(&c->write, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0)
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
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
            uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    morphd_admin_t *a = server->data;
    if (status < 0)
        return;
    admin_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->admin = a;
    uv_pipe_init(server->loop, &c->pipe, 0);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) != 0)
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

morphd_admin_t *morphd_admin_open(uv_loop_t *loop, const char *path,
                                  morphd_stats_t **stats, char *err,
                                  size_t err_size)
{
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
    mode_t old = umask(0117); /* srw-rw---- */
    int rc = uv_pipe_bind(&a->pipe, path);
    umask(old);
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
    free(a->path);
    free(a);
}

void morphd_admin_close(morphd_admin_t *a)
{
    if (a == NULL)
        return;
    unlink(a->path);
    uv_close((uv_handle_t *)&a->pipe, on_admin_closed);
}
