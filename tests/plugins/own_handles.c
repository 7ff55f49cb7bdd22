/* A plugin that uses the worker's loop the way libuv's own guide teaches:
 * handles of its own -- a TCP listener, the connections it accepts, a
 * pipe and a repeating timer -- each with `data` pointing at the plugin's
 * context, all closed in destroy() and freed in their close callbacks.
 * morphd must never take any of them for one of its own (issue 22: the
 * idle sweep and the drain walked the loop's handles and took every TCP
 * or pipe handle with `data` set for a connection).
 *
 * "port" (in any case) is answered with the port of the plugin's own listener, where
 * each client is greeted with "own\n" and kept open; "ticks" with
 * whether the timer has fired; anything else with itself.
 */
/* uv.h needs POSIX types (pthread_rwlock_t) under -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include <morph/plugin.h>

#define MAX_PEERS 8

typedef struct own {
    uv_tcp_t listener;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_tcp_t *peers[MAX_PEERS];
    int port;
    unsigned long ticks;
    unsigned open_handles; /* freed when the last close callback has run */
} own_t;

static void on_closed(uv_handle_t *h)
{
    own_t *o = h->data;
    if (h->type == UV_TCP && h != (uv_handle_t *)&o->listener)
        free(h); /* an accepted peer */
    if (--o->open_handles == 0)
        free(o);
}

static void on_tick(uv_timer_t *t)
{
    own_t *o = t->data;
    o->ticks++;
}

static void on_greeted(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void on_peer(uv_stream_t *server, int status)
{
    own_t *o = server->data;
    if (status < 0)
        return;
    size_t slot = 0;
    while (slot < MAX_PEERS && o->peers[slot] != NULL)
        slot++;
    uv_tcp_t *peer = malloc(sizeof *peer);
    if (peer == NULL)
        return;
    uv_tcp_init(server->loop, peer);
    peer->data = o; /* the habit morphd must survive */
    o->open_handles++;
    if (slot == MAX_PEERS || uv_accept(server, (uv_stream_t *)peer) != 0) {
        uv_close((uv_handle_t *)peer, on_closed);
        return;
    }
    o->peers[slot] = peer;
    uv_write_t *req = malloc(sizeof *req);
    static char greeting[] = "own\n";
    uv_buf_t b = uv_buf_init(greeting, 4);
    if (req != NULL && uv_write(req, (uv_stream_t *)peer, &b, 1, on_greeted) != 0)
        free(req);
}

static int create(const morph_host_t *host, const morph_option_t *opts,
                  size_t n, void **instance, char *err, size_t err_size)
{
    (void)opts;
    (void)n;
    uv_loop_t *loop = host->uv_loop(host);
    own_t *o = calloc(1, sizeof *o);
    if (o == NULL || loop == NULL) {
        free(o);
        snprintf(err, err_size, "no loop, or out of memory");
        return MORPH_ERROR;
    }
    struct sockaddr_in at;
    uv_ip4_addr("127.0.0.1", 0, &at);
    uv_tcp_init(loop, &o->listener);
    uv_pipe_init(loop, &o->pipe, 0);
    uv_timer_init(loop, &o->timer);
    o->listener.data = o->pipe.data = o->timer.data = o;
    o->open_handles = 3;
    int rc = uv_tcp_bind(&o->listener, (const struct sockaddr *)&at, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&o->listener, 8, on_peer);
    struct sockaddr_storage bound;
    int len = sizeof bound;
    if (rc == 0)
        rc = uv_tcp_getsockname(&o->listener, (struct sockaddr *)&bound, &len);
    if (rc == 0)
        rc = uv_timer_start(&o->timer, on_tick, 1, 1);
    if (rc != 0) {
        snprintf(err, err_size, "own listener: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&o->listener, on_closed);
        uv_close((uv_handle_t *)&o->pipe, on_closed);
        uv_close((uv_handle_t *)&o->timer, on_closed);
        return MORPH_ERROR;
    }
    /* Active and referenced, as a plugin author would leave them: they
     * must not hold a stop or a reload up either. */
    o->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *instance = o;
    return MORPH_OK;
}

static void destroy(void *instance)
{
    own_t *o = instance;
    for (size_t i = 0; i < MAX_PEERS; i++)
        if (o->peers[i] != NULL)
            uv_close((uv_handle_t *)o->peers[i], on_closed);
    uv_close((uv_handle_t *)&o->listener, on_closed);
    uv_close((uv_handle_t *)&o->pipe, on_closed);
    uv_close((uv_handle_t *)&o->timer, on_closed);
}

static int transform(void *instance, void *state, const morph_msg_t *m,
                     morph_out_t *out)
{
    (void)state;
    own_t *o = instance;
    char text[32];
    int n;
    if (m->len == 4 && strncasecmp((const char *)m->data, "port", 4) == 0)
        n = snprintf(text, sizeof text, "port %d", o->port);
    else if (m->len == 5 && strncasecmp((const char *)m->data, "ticks", 5) == 0)
        n = snprintf(text, sizeof text, "ticks %s", o->ticks > 0 ? "yes" : "no");
    else
        return morph_out_append(out, m->data, m->len);
    return morph_out_append(out, text, (size_t)n);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "own_handles",
    .description = "keeps libuv handles of its own on the worker's loop",
    .create = create,
    .destroy = destroy,
    .transform = transform,
};
