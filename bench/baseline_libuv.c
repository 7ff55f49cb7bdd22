/*
 * baseline_libuv.c -- what a user would write instead of morphd: a
 * competent hand-written libuv uppercase server, TCP (stream: each read
 * uppercased and written back) and UDP (recvmmsg), on one port.
 *
 *   baseline_libuv PORT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t *loop;
static char read_buf[65536];                   /* one per loop: reads are sequential */
static char udp_buf[16 * 65536];               /* recvmmsg: 16 datagrams per call */

typedef struct {
    uv_write_t req;
    char data[];
} wreq_t;

static void upper(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 'a' && p[i] <= 'z')
            p[i] = (char)(p[i] - 32);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h; (void)s;
    *b = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) {
        uv_close((uv_handle_t *)s, (uv_close_cb)free);
        return;
    }
    upper(b->base, (size_t)n);
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    int w = uv_try_write(s, &out, 1);
    if (w == n)
        return;
    if (w < 0)
        w = 0;
    wreq_t *r = malloc(sizeof *r + (size_t)(n - w));
    memcpy(r->data, b->base + w, (size_t)(n - w));
    out = uv_buf_init(r->data, (unsigned)(n - w));
    uv_write(&r->req, s, &out, 1, on_written);
}

static void on_conn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) == 0) {
        uv_tcp_nodelay(c, 1);
        uv_read_start((uv_stream_t *)c, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)c, (uv_close_cb)free);
    }
}

static void on_udp_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h; (void)s;
    *b = uv_buf_init(udp_buf, sizeof udp_buf);
}

static void on_udp(uv_udp_t *h, ssize_t n, const uv_buf_t *b,
                   const struct sockaddr *from, unsigned flags)
{
    if (n <= 0 || from == NULL || (flags & UV_UDP_MMSG_FREE))
        return;
    upper(b->base, (size_t)n);
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    uv_udp_try_send(h, &out, 1, from);
}

static void on_signal(uv_signal_t *s, int sig)
{
    (void)s; (void)sig;
    uv_stop(loop);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 64;
    loop = uv_default_loop();
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &a);
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 511, on_conn) != 0) {
        perror("listen");
        return 1;
    }
    uv_udp_t udp;
    uv_udp_init_ex(loop, &udp, AF_INET | UV_UDP_RECVMMSG);
    if (uv_udp_bind(&udp, (struct sockaddr *)&a, 0) != 0 ||
        uv_udp_recv_start(&udp, on_udp_alloc, on_udp) != 0) {
        perror("udp");
        return 1;
    }
    uv_signal_t sig;
    uv_signal_init(loop, &sig);
    uv_signal_start(&sig, on_signal, SIGTERM);
    return uv_run(loop, UV_RUN_DEFAULT);
}
