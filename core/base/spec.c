/*
 * spec.c -- the chain and plugin-option grammars of spec.h.
 */
#include "base/spec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t morphd_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

bool morphd_valid_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

void morphd_chain_spec_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int morphd_chain_spec_parse(const char *text, char ***names_out, size_t *n_out,
                            char *err, size_t err_size)
{
    char **names = NULL;
    size_t n = 0;
    const char *p = text;
    for (;;) {
        size_t len = strcspn(p, "|,");
        const char *s = p, *e = p + len;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (s == e) {
            snprintf(err, err_size, "'%s' is not a chain: write plugin names "
                     "separated by '|', e.g. uppercase | reverse", text);
            goto fail;
        }
        char *name = strndup(s, (size_t)(e - s));
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (name == NULL || grown == NULL) {
            free(name);
            if (grown != NULL)
                names = grown;
            snprintf(err, err_size, "out of memory");
            goto fail;
        }
        names = grown;
        names[n++] = name;
        if (!morphd_valid_name(name)) {
            snprintf(err, err_size,
                     "'%s' is not a plugin name (letters, digits, _ and -)",
                     name);
            goto fail;
        }
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *names_out = names;
    *n_out = n;
    return 0;
fail:
    morphd_chain_spec_free(names, n);
    return -1;
}

int morphd_plugin_opts_add(morphd_plugin_opts_t *opts, const char *name,
                           const char *value, int line, bool replace,
                           char *err, size_t err_size)
{
    const char *dot = strchr(name, '.');
    if (dot == NULL || dot == name || dot[1] == '\0') {
        snprintf(err, err_size,
                 "'%s' is not a plugin option: write PLUGIN.KEY = VALUE", name);
        return -1;
    }
    size_t plen = (size_t)(dot - name);
    for (size_t i = 0; i < opts->n; i++) {
        morphd_plugin_opt_t *o = &opts->v[i];
        if (strlen(o->plugin) != plen || strncmp(o->plugin, name, plen) != 0 ||
            strcmp(o->key, dot + 1) != 0)
            continue;
        if (!replace) {
            if (o->line > 0)
                snprintf(err, err_size, "'%s' is already set at line %d",
                         name, o->line);
            else
                snprintf(err, err_size, "'%s' is given twice", name);
            return -1;
        }
        char *v = strdup(value);
        if (v == NULL) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        free(o->value);
        o->value = v;
        o->line = line;
        return 0;
    }
    morphd_plugin_opt_t *grown = realloc(opts->v, (opts->n + 1) * sizeof *grown);
    if (grown == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    opts->v = grown;
    morphd_plugin_opt_t *o = &opts->v[opts->n];
    o->plugin = strndup(name, plen);
    o->key = strdup(dot + 1);
    o->value = strdup(value);
    o->line = line;
    if (o->plugin == NULL || o->key == NULL || o->value == NULL) {
        free(o->plugin);
        free(o->key);
        free(o->value);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    opts->n++;
    return 0;
}

int morphd_plugin_opts_add_assign(morphd_plugin_opts_t *opts,
                                  const char *assignment, bool replace,
                                  char *err, size_t err_size)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = strchr(assignment, '.');
    if (eq == NULL || dot == NULL || dot > eq) {
        snprintf(err, err_size,
                 "'%s' is not a plugin option: write PLUGIN.KEY=VALUE",
                 assignment);
        return -1;
    }
    char *name = strndup(assignment, (size_t)(eq - assignment));
    if (name == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    int rc = morphd_plugin_opts_add(opts, name, eq + 1, 0, replace, err,
                                    err_size);
    free(name);
    return rc;
}

void morphd_plugin_opts_free(morphd_plugin_opts_t *opts)
{
    for (size_t i = 0; i < opts->n; i++) {
        free(opts->v[i].plugin);
        free(opts->v[i].key);
        free(opts->v[i].value);
    }
    free(opts->v);
    opts->v = NULL;
    opts->n = 0;
}
