/*
 * chain.c -- running transform chains (chain.h), and the host side of
 * morph_out_t: growing a plugin's output within the service's limit, and
 * recording why a plugin failed a message.
 */
#include "chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void host_log(const morph_host_t *host, int level, const char *message)
{
    morphd_log(level, "plugin %s: %s", (const char *)host->host_private,
               message ? message : "");
}

int morphd_chain_create(morphd_plugin_t *const *plugins, size_t n,
                        const morphd_service_conf_t *svc, size_t out_limit,
                        morphd_chain_t **chainp, char *err, size_t err_size)
{
    morphd_chain_t *chain = calloc(1, sizeof *chain + n * sizeof chain->stages[0]);
    morph_option_t *opts = calloc(svc->n_opts + 1, sizeof *opts);
    if (chain == NULL || opts == NULL) {
        free(chain);
        free(opts);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    chain->chunk_safe = true;
    chain->out_limit = out_limit;

    for (size_t i = 0; i < n; i++) {
        const morph_plugin_t *d = plugins[i]->desc;
        morphd_stage_t *st = &chain->stages[i];
        st->plugin = plugins[i];
        st->host.abi_version = MORPH_PLUGIN_ABI_VERSION;
        st->host.struct_size = sizeof st->host;
        st->host.log = host_log;
        st->host.host_private = plugins[i]->name;

        size_t n_opts = 0;
        for (size_t j = 0; j < svc->n_opts; j++)
            if (strcmp(svc->opts[j].plugin, plugins[i]->name) == 0) {
                opts[n_opts].key = svc->opts[j].key;
                opts[n_opts].value = svc->opts[j].value;
                n_opts++;
            }
        if (d->create != NULL) {
            char why[256] = "";
            if (d->create(&st->host, opts, n_opts, &st->instance, why,
                          sizeof why) != MORPH_OK) {
                snprintf(err, err_size, "plugin '%s' (%s): %s",
                         plugins[i]->name, plugins[i]->path,
                         why[0] ? why : "create failed without a reason");
                chain->n = i;
                morphd_chain_destroy(chain);
                free(opts);
                return -1;
            }
        } else if (n_opts > 0) {
            snprintf(err, err_size, "plugin '%s' takes no options, but '%s.%s' "
                     "is set", plugins[i]->name, plugins[i]->name, opts[0].key);
            chain->n = i;
            morphd_chain_destroy(chain);
            free(opts);
            return -1;
        }
        chain->n = i + 1;
        if (!(d->flags & MORPH_PLUGIN_CHUNK_SAFE))
            chain->chunk_safe = false;
        if (d->conn_open != NULL || d->conn_close != NULL)
            chain->has_conn_hooks = true;
    }
    free(opts);
    *chainp = chain;
    return 0;
}

void morphd_chain_destroy(morphd_chain_t *chain)
{
    if (chain == NULL)
        return;
    for (size_t i = chain->n; i-- > 0;) {
        const morph_plugin_t *d = chain->stages[i].plugin->desc;
        if (d->destroy != NULL)
            d->destroy(chain->stages[i].instance);
    }
    free(chain);
}

int morphd_chain_conn_open(const morphd_chain_t *chain, void **states,
                           char *err, size_t err_size)
{
    for (size_t i = 0; i < chain->n; i++) {
        const morphd_stage_t *st = &chain->stages[i];
        states[i] = NULL;
        if (st->plugin->desc->conn_open == NULL)
            continue;
        if (st->plugin->desc->conn_open(st->instance, &states[i]) != MORPH_OK) {
            snprintf(err, err_size, "plugin %s: refused the connection",
                     st->plugin->name);
            /* close the stages already opened, newest first */
            while (i-- > 0)
                if (chain->stages[i].plugin->desc->conn_close != NULL)
                    chain->stages[i].plugin->desc->conn_close(
                        chain->stages[i].instance, states[i]);
            return -1;
        }
    }
    return 0;
}

void morphd_chain_conn_close(const morphd_chain_t *chain, void **states)
{
    for (size_t i = chain->n; i-- > 0;)
        if (chain->stages[i].plugin->desc->conn_close != NULL)
            chain->stages[i].plugin->desc->conn_close(chain->stages[i].instance,
                                                      states[i]);
}

/* What morph_out_t.host_private points to during one transform call. */
typedef struct out_ctx {
    morphd_buf_t *buf;
    size_t limit;
    const char *failure; /* set by fail() */
    char reason[256];
} out_ctx_t;

static int out_reserve(morph_out_t *out, size_t min_cap)
{
    out_ctx_t *ctx = out->host_private;
    if (min_cap <= out->cap)
        return MORPH_OK;
    if (min_cap > ctx->limit) {
        snprintf(ctx->reason, sizeof ctx->reason,
                 "output of %zu bytes exceeds the limit of %zu", min_cap,
                 ctx->limit);
        ctx->failure = ctx->reason;
        return MORPH_ERROR;
    }
    ctx->buf->len = out->len;
    if (morphd_buf_reserve(ctx->buf, min_cap) != 0) {
        snprintf(ctx->reason, sizeof ctx->reason, "out of memory");
        ctx->failure = ctx->reason;
        return MORPH_ERROR;
    }
    out->data = ctx->buf->data;
    out->cap = ctx->buf->cap;
    return MORPH_OK;
}

static int out_fail(morph_out_t *out, const char *reason)
{
    out_ctx_t *ctx = out->host_private;
    if (ctx->failure == NULL) {
        snprintf(ctx->reason, sizeof ctx->reason, "%s",
                 reason ? reason : "failed");
        ctx->failure = ctx->reason;
    }
    return MORPH_ERROR;
}

int morphd_chain_apply(const morphd_chain_t *chain, void **states,
                       const unsigned char *in, size_t len, uint32_t flags,
                       morphd_scratch_t *scratch, const unsigned char **out,
                       size_t *out_len, char *err, size_t err_size)
{
    const morph_msg_t first = {in, len, flags};
    morph_msg_t msg = first;
    for (size_t i = 0; i < chain->n; i++) {
        const morphd_stage_t *st = &chain->stages[i];
        morphd_buf_t *dst = &scratch->buf[i & 1];
        out_ctx_t ctx; /* reason[] is written only on failure */
        ctx.buf = dst;
        ctx.limit = chain->out_limit;
        ctx.failure = NULL;
        size_t want = msg.len < 64 ? 64 : msg.len;
        if (morphd_buf_reserve(dst, want) != 0) {
            snprintf(err, err_size, "plugin %s: out of memory",
                     st->plugin->name);
            return -1;
        }
        morph_out_t o = {dst->data, 0, dst->cap, out_reserve, out_fail, &ctx};
        int rc = st->plugin->desc->transform(st->instance,
                                             states ? states[i] : NULL, &msg,
                                             &o);
        if (rc != MORPH_OK || ctx.failure != NULL || o.len > o.cap) {
            snprintf(err, err_size, "plugin %s: %s", st->plugin->name,
                     ctx.failure ? ctx.failure
                     : o.len > o.cap ? "wrote past its output buffer"
                                     : "failed the message without a reason");
            return -1;
        }
        dst->len = o.len;
        msg.data = dst->data;
        msg.len = o.len;
    }
    *out = msg.data;
    *out_len = msg.len;
    return 0;
}

void morphd_scratch_free(morphd_scratch_t *scratch)
{
    morphd_buf_free(&scratch->buf[0]);
    morphd_buf_free(&scratch->buf[1]);
}
