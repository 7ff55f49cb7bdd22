/*
 * standalone.c -- chains outside the daemon (standalone.h). Reuses the
 * daemon's loader and chain code, so a plugin behaves in `morph pipe` and
 * in its unit tests exactly as it does in morphd.
 */
#include "standalone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_options(morphd_standalone_t *s, const char *const *options,
                       size_t n_options, char *err, size_t err_size)
{
    s->conf.opts = calloc(n_options + 1, sizeof *s->conf.opts);
    if (s->conf.opts == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n_options; i++) {
        const char *opt = options[i];
        const char *dot = strchr(opt, '.');
        const char *eq = strchr(opt, '=');
        if (dot == NULL || eq == NULL || dot > eq || dot == opt ||
            eq == dot + 1) {
            snprintf(err, err_size,
                     "'%s' is not a plugin option: write PLUGIN.KEY=VALUE", opt);
            return -1;
        }
        morphd_plugin_opt_t *o = &s->conf.opts[s->conf.n_opts++];
        o->plugin = strndup(opt, (size_t)(dot - opt));
        o->key = strndup(dot + 1, (size_t)(eq - dot - 1));
        o->value = strdup(eq + 1);
        if (!o->plugin || !o->key || !o->value) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        bool used = false;
        for (size_t j = 0; j < s->n; j++)
            used |= strcmp(s->plugins[j].name, o->plugin) == 0;
        if (!used) {
            snprintf(err, err_size, "option '%s' is for plugin '%s', which is "
                     "not in the chain", opt, o->plugin);
            return -1;
        }
    }
    return 0;
}

int morphd_standalone_open(morphd_standalone_t *s, const char *dir,
                           const char *const *names, size_t n,
                           const char *const *options, size_t n_options,
                           size_t max_message, char *err, size_t err_size)
{
    memset(s, 0, sizeof *s);
    s->conf.name = "standalone";
    s->conf.max_message = max_message;
    s->plugins = calloc(n, sizeof *s->plugins);
    morphd_plugin_t **ptrs = calloc(n, sizeof *ptrs);
    s->states = calloc(n, sizeof *s->states);
    int rc = -1;
    if (!s->plugins || !ptrs || !s->states) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        /* a plugin named twice is loaded once: dlopen shares it anyway */
        if (morphd_plugin_load(dir, names[i], &s->plugins[i], err, err_size) != 0)
            goto out;
        s->n = i + 1;
        ptrs[i] = &s->plugins[i];
    }
    if (add_options(s, options, n_options, err, err_size) != 0)
        goto out;
    size_t limit = (max_message > 65536 ? max_message : 65536) * 4;
    if (morphd_chain_create(ptrs, n, &s->conf, limit, &s->chain, err,
                            err_size) != 0)
        goto out;
    rc = morphd_standalone_reconnect(s, err, err_size);
out:
    free(ptrs);
    if (rc != 0)
        morphd_standalone_close(s); /* nothing half-made stays behind */
    return rc;
}

int morphd_standalone_reconnect(morphd_standalone_t *s, char *err,
                                size_t err_size)
{
    if (s->open)
        morphd_chain_conn_close(s->chain, s->states);
    s->open = false;
    if (!s->chain->has_conn_hooks)
        return 0;
    if (morphd_chain_conn_open(s->chain, s->states, err, err_size) != 0)
        return -1;
    s->open = true;
    return 0;
}

int morphd_standalone_apply(morphd_standalone_t *s, const void *in,
                            size_t len, uint32_t flags,
                            const unsigned char **out, size_t *out_len,
                            char *err, size_t err_size)
{
    return morphd_chain_apply(s->chain, s->open ? s->states : NULL, in, len,
                              flags, &s->scratch, out, out_len, err, err_size);
}

void morphd_standalone_close(morphd_standalone_t *s)
{
    if (s->open && s->chain != NULL)
        morphd_chain_conn_close(s->chain, s->states);
    morphd_chain_destroy(s->chain);
    for (size_t i = 0; i < s->n; i++)
        morphd_plugin_unload(&s->plugins[i]);
    for (size_t i = 0; i < s->conf.n_opts; i++) {
        free(s->conf.opts[i].plugin);
        free(s->conf.opts[i].key);
        free(s->conf.opts[i].value);
    }
    free(s->conf.opts);
    free(s->plugins);
    free(s->states);
    morphd_scratch_free(&s->scratch);
    memset(s, 0, sizeof *s);
}
