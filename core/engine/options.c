/*
 * options.c -- declared plugin options (options.h). The value grammar is
 * the same as for morphd's own keys: sizes take K/M/G suffixes, durations
 * units, booleans yes/no; NaN, infinities and negative sizes or durations
 * are refused.
 */
#include "engine/options.h"
#include "base/value.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/plugin_loader.h"

const char *morphd_option_type_name(uint32_t type)
{
    switch (type) {
    case MORPH_OPT_STRING: return "string";
    case MORPH_OPT_INT: return "integer";
    case MORPH_OPT_BOOL: return "boolean";
    case MORPH_OPT_SIZE: return "size";
    case MORPH_OPT_DURATION: return "duration";
    case MORPH_OPT_ENUM: return "one of";
    }
    return "unknown";
}

static bool bounded(const morph_option_decl_t *d)
{
    return d->min != 0 || d->max != 0;
}

static int check_range(const morph_option_decl_t *d, int64_t v,
                       const char *value, const char *unit, char *err,
                       size_t err_size)
{
    if (bounded(d) && (v < d->min || v > d->max)) {
        snprintf(err, err_size, "%s is out of range %" PRId64 "..%" PRId64 "%s",
                 value, d->min, d->max, unit);
        return -1;
    }
    return 0;
}

int morphd_option_normalize(const morph_option_decl_t *d, const char *value,
                            bool declared, char *out, size_t out_size,
                            char *err, size_t err_size)
{
    switch (d->type) {
    case MORPH_OPT_STRING:
        if (*value == '\0') {
            snprintf(err, err_size, "must not be empty");
            return -1;
        }
        snprintf(out, out_size, "%s", value);
        return 0;
    case MORPH_OPT_INT: {
        int64_t v;
        if (morphd_value_int(value, &v, err, err_size) != 0 ||
            check_range(d, v, value, "", err, err_size) != 0)
            return -1;
        snprintf(out, out_size, "%" PRId64, v);
        return 0;
    }
    case MORPH_OPT_BOOL: {
        bool v;
        if (morphd_value_bool(value, &v, err, err_size) != 0)
            return -1;
        snprintf(out, out_size, "%s", v ? "yes" : "no");
        return 0;
    }
    case MORPH_OPT_SIZE: {
        uint64_t v;
        if (morphd_value_size(value, &v, err, err_size) != 0 ||
            check_range(d, (int64_t)v, value, " bytes", err, err_size) != 0)
            return -1;
        snprintf(out, out_size, "%" PRIu64, v);
        return 0;
    }
    case MORPH_OPT_DURATION: {
        uint64_t v;
        /* at most 9.2e18 ms (value.c): an int64_t */
        if (morphd_value_duration_ms(value, declared, &v, err, err_size) != 0)
            return -1;
        if (check_range(d, (int64_t)v, value, " ms", err, err_size) != 0)
            return -1;
        snprintf(out, out_size, "%" PRIu64, v);
        return 0;
    }
    case MORPH_OPT_ENUM: {
        const char *p = d->values;
        size_t vlen = strlen(value);
        while (p != NULL && *p) {
            size_t len = strcspn(p, "|");
            if (len == vlen && strncasecmp(p, value, len) == 0) {
                snprintf(out, out_size, "%.*s", (int)len, p);
                return 0;
            }
            p += len + (p[len] == '|');
        }
        snprintf(err, err_size, "'%s' is not one of %s", value,
                 d->values ? d->values : "(none)");
        return -1;
    }
    }
    snprintf(err, err_size, "unknown option type %u", d->type);
    return -1;
}

static bool valid_option_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* The smallest declaration this host reads: up to `max`. */
#define DECL_MIN_SIZE (offsetof(morph_option_decl_t, max) + sizeof(int64_t))

int morphd_options_collect(const morph_option_decl_t *first,
                           const morph_option_decl_t ***decls_out,
                           size_t *n_out, char *err, size_t err_size)
{
    *decls_out = NULL;
    *n_out = 0;
    if (first == NULL)
        return 0;
    size_t stride = first->struct_size;
    if (stride < DECL_MIN_SIZE || stride % sizeof(void *) != 0) {
        snprintf(err, err_size, "its option declarations are %zu bytes each, "
                 "not a valid size (%zu or more); were they written with the "
                 "MORPH_OPTION_* macros?", stride, DECL_MIN_SIZE);
        return -1;
    }
    const morph_option_decl_t **decls = NULL;
    size_t n = 0;
    for (const char *p = (const char *)first;; p += stride) {
        const morph_option_decl_t *d = (const morph_option_decl_t *)p;
        if (d->type == 0)
            break;
        if (n == 256) {
            snprintf(err, err_size, "more than 256 options, or a list without "
                     "MORPH_OPTIONS_END");
            goto fail;
        }
        if (d->struct_size != stride) {
            snprintf(err, err_size, "option %zu has a different size (%u) from "
                     "the first (%zu)", n + 1, d->struct_size, stride);
            goto fail;
        }
        if (!valid_option_name(d->name)) {
            snprintf(err, err_size, "option %zu has the name '%s'; names are "
                     "lowercase letters, digits and _", n + 1,
                     d->name ? d->name : "(null)");
            goto fail;
        }
        if (d->type < MORPH_OPT_STRING || d->type > MORPH_OPT_ENUM) {
            snprintf(err, err_size, "option '%s' has the unknown type %u",
                     d->name, d->type);
            goto fail;
        }
        if (d->type == MORPH_OPT_ENUM && (d->values == NULL || !*d->values)) {
            snprintf(err, err_size, "option '%s' is an enum without values",
                     d->name);
            goto fail;
        }
        if (d->min > d->max) {
            snprintf(err, err_size, "option '%s' has min %" PRId64 " above max "
                     "%" PRId64, d->name, d->min, d->max);
            goto fail;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(decls[i]->name, d->name) == 0) {
                snprintf(err, err_size, "option '%s' is declared twice",
                         d->name);
                goto fail;
            }
        if (d->def != NULL) {
            char norm[256], why[256];
            if (morphd_option_normalize(d, d->def, true, norm, sizeof norm,
                                        why, sizeof why) != 0) {
                snprintf(err, err_size, "the default of option '%s' is wrong: "
                         "%s", d->name, why);
                goto fail;
            }
        }
        const morph_option_decl_t **grown =
            realloc(decls, (n + 1) * sizeof *grown);
        if (grown == NULL) {
            snprintf(err, err_size, "out of memory");
            goto fail;
        }
        decls = grown;
        decls[n++] = d;
    }
    *decls_out = decls;
    *n_out = n;
    return 0;
fail:
    free(decls);
    return -1;
}

static const morph_option_decl_t *find_decl(const morphd_plugin_t *p,
                                            const char *key)
{
    for (size_t i = 0; i < p->n_options; i++)
        if (strcmp(p->options[i]->name, key) == 0)
            return p->options[i];
    return NULL;
}

size_t morphd_options_check(const morphd_plugin_t *p,
                            const morphd_plugin_opts_t *opts,
                            const char *file, const char *unfiled,
                            morphd_errors_t *errs)
{
    size_t bad = 0;
    if (!p->declares_options || opts == NULL)
        return 0;
    for (size_t i = 0; i < opts->n; i++) {
        const morphd_plugin_opt_t *o = &opts->v[i];
        if (strcmp(o->plugin, p->name) != 0)
            continue;
        char loc[512];
        if (o->line > 0)
            snprintf(loc, sizeof loc, "%s:%d", file, o->line);
        else
            snprintf(loc, sizeof loc, "%s", unfiled);
        const morph_option_decl_t *d = find_decl(p, o->key);
        if (d == NULL && p->n_options == 0) {
            morphd_errors_add(errs, "%s: plugin '%s' takes no options, but "
                              "'%s.%s' is set", loc, p->name, p->name, o->key);
            bad++;
            continue;
        }
        if (d == NULL) {
            const char *best = NULL;
            size_t best_d = 3;
            for (size_t j = 0; j < p->n_options; j++) {
                size_t dist = morphd_edit_distance(o->key, p->options[j]->name);
                if (dist < best_d) {
                    best_d = dist;
                    best = p->options[j]->name;
                }
            }
            if (best != NULL)
                morphd_errors_add(errs, "%s: unknown option '%s.%s' of plugin "
                                  "'%s'; did you mean '%s.%s'?", loc, p->name,
                                  o->key, p->name, p->name, best);
            else
                morphd_errors_add(errs, "%s: unknown option '%s.%s': plugin "
                                  "'%s' has no option '%s' (see `morph plugin "
                                  "info %s`)", loc, p->name, o->key, p->name,
                                  o->key, p->name);
            bad++;
            continue;
        }
        char norm[256], why[384];
        if (morphd_option_normalize(d, o->value, false, norm, sizeof norm, why,
                                    sizeof why) != 0) {
            morphd_errors_add(errs, "%s: %s.%s: %s", loc, p->name, o->key, why);
            bad++;
        }
    }
    return bad;
}

static int keep(morphd_option_list_t *l, const char *s, const char **out)
{
    char *copy = strdup(s);
    if (copy == NULL)
        return -1;
    l->strings[l->n_strings++] = copy;
    *out = copy;
    return 0;
}

int morphd_options_for(const morphd_plugin_t *p,
                       const morphd_plugin_opts_t *opts,
                       morphd_option_list_t *l, char *err, size_t err_size)
{
    memset(l, 0, sizeof *l);
    size_t given = opts ? opts->n : 0;
    size_t cap = (p->declares_options ? p->n_options : given) + 1;
    l->v = calloc(cap, sizeof *l->v);
    l->strings = calloc(2 * cap, sizeof *l->strings);
    if (l->v == NULL || l->strings == NULL)
        goto nomem;
    if (!p->declares_options) { /* as written */
        for (size_t i = 0; i < given; i++)
            if (strcmp(opts->v[i].plugin, p->name) == 0) {
                l->v[l->n].key = opts->v[i].key;
                l->v[l->n].value = opts->v[i].value;
                l->n++;
            }
        return 0;
    }
    for (size_t i = 0; i < p->n_options; i++) {
        const morph_option_decl_t *d = p->options[i];
        const char *value = d->def;
        for (size_t j = 0; j < given; j++)
            if (strcmp(opts->v[j].plugin, p->name) == 0 &&
                strcmp(opts->v[j].key, d->name) == 0)
                value = opts->v[j].value;
        l->v[l->n].key = d->name;
        l->v[l->n].value = NULL;
        if (value != NULL) {
            char norm[256], why[256];
            if (morphd_option_normalize(d, value, value == d->def, norm,
                                        sizeof norm, why, sizeof why) != 0) {
                snprintf(err, err_size, "%s.%s: %s", p->name, d->name, why);
                morphd_option_list_free(l);
                return -1;
            }
            if (keep(l, norm, &l->v[l->n].value) != 0)
                goto nomem;
        }
        l->n++;
    }
    return 0;
nomem:
    morphd_option_list_free(l);
    snprintf(err, err_size, "out of memory");
    return -1;
}

void morphd_option_list_free(morphd_option_list_t *l)
{
    for (size_t i = 0; i < l->n_strings; i++)
        free(l->strings[i]);
    free(l->strings);
    free(l->v);
    memset(l, 0, sizeof *l);
}
