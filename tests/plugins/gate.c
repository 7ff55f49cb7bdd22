/* conn_open2 (ABI 3): refuses connections from 127.0.0.2 by their peer
 * address, from morph_host_t.conn_info on the connection conn_open2 is
 * given, and greets the others with their own address and transport. */
#include <stdlib.h>
#include <string.h>

#include <morph/plugin.h>

typedef struct {
    const morph_host_t *host;
} gate_t;

typedef struct {
    char who[96];
} gate_conn_t;

static int create(const morph_host_t *host, const morph_option_t *opts,
                  size_t n, void **instance, char *err, size_t err_size)
{
    (void)opts; (void)n; (void)err; (void)err_size;
    gate_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return MORPH_ERROR;
    g->host = host;
    *instance = g;
    return MORPH_OK;
}

static void destroy(void *instance) { free(instance); }

static int open2(void *instance, const morph_conn_t *conn, void **state)
{
    gate_t *g = instance;
    morph_conn_info_t info = {.struct_size = sizeof info};
    if (g->host->conn_info(g->host, conn, &info) != MORPH_OK)
        return MORPH_ERROR;
    if (strcmp(info.peer_address, "127.0.0.2") == 0)
        return MORPH_ERROR; /* refused by its peer */
    gate_conn_t *c = malloc(sizeof *c);
    if (c == NULL)
        return MORPH_ERROR;
    size_t a = strlen(info.peer_address), t = strlen(info.transport);
    memcpy(c->who, info.transport, t);
    c->who[t] = ' ';
    memcpy(c->who + t + 1, info.peer_address, a + 1);
    *state = c;
    return MORPH_OK;
}

static void close_(void *instance, void *state)
{
    (void)instance;
    free(state);
}

static int t(void *i, void *state, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)m;
    const gate_conn_t *c = state;
    return morph_out_append(out, c->who, strlen(c->who));
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "gate",
    .create = create,
    .destroy = destroy,
    .conn_close = close_,
    .transform = t,
    .abi_min = 3,
    .conn_open2 = open2,
};
