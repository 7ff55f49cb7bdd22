/*
 * abi1_upper -- written exactly as a plugin author of morph 0.1 wrote it:
 * options in create(), state per connection, chunk-safe. Built twice: as
 * abi1_upper against the frozen ABI 1 header (tests/abi1), where it must
 * keep loading and serving unchanged, and as abi1_rebuilt against today's
 * header, which its source must still compile with (only the name
 * differs, for the file name).
 *
 * ASCII uppercase; `abi1_upper.tag = X` prefixes each reply with "X:" and
 * the connection's message number; an empty message gets an empty reply
 * (ABI 1 sent it as a 0-byte datagram).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/plugin.h>

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "abi1_upper"
#endif

typedef struct inst {
    char tag[16];
} inst_t;

static int create(const morph_host_t *host, const morph_option_t *opts,
                  size_t n, void **instance, char *err, size_t err_size)
{
    inst_t *in = calloc(1, sizeof *in);
    if (in == NULL)
        return MORPH_ERROR;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(opts[i].key, "tag") != 0) {
            snprintf(err, err_size, "unknown option '%s' (known: tag)",
                     opts[i].key);
            free(in);
            return MORPH_ERROR;
        }
        snprintf(in->tag, sizeof in->tag, "%s", opts[i].value);
    }
    if (host->abi_version < 1 || host->log == NULL) {
        free(in);
        return MORPH_ERROR;
    }
    host->log(host, MORPH_LOG_DEBUG, "abi1_upper created");
    *instance = in;
    return MORPH_OK;
}

static void destroy(void *instance) { free(instance); }

static int conn_open(void *instance, void **conn)
{
    (void)instance;
    *conn = calloc(1, sizeof(unsigned long));
    return *conn ? MORPH_OK : MORPH_ERROR;
}

static void conn_close(void *instance, void *conn)
{
    (void)instance;
    free(conn);
}

static int transform(void *instance, void *conn, const morph_msg_t *msg,
                     morph_out_t *out)
{
    inst_t *in = instance;
    unsigned long *count = conn;
    if (msg->len == 0)
        return MORPH_OK;
    if (in->tag[0]) {
        char prefix[48];
        int n = snprintf(prefix, sizeof prefix, "%s%lu:", in->tag, ++*count);
        if (morph_out_append(out, prefix, (size_t)n) != MORPH_OK)
            return morph_out_fail(out, "too long");
    }
    if (morph_out_reserve(out, out->len + msg->len) != MORPH_OK)
        return morph_out_fail(out, "too long");
    for (size_t i = 0; i < msg->len; i++) {
        unsigned char c = msg->data[i];
        out->data[out->len + i] = c >= 'a' && c <= 'z' ? c - 32 : c;
    }
    out->len += msg->len;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = PLUGIN_NAME,
    .version = "0.1",
    .description = "an ABI 1 plugin, built with the ABI 1 header",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .create = create,
    .destroy = destroy,
    .conn_open = conn_open,
    .conn_close = conn_close,
    .transform = transform,
};
