/*
 * reader.c -- reading an INI file (with inih) and --set overrides into
 * morphd_config_t. Every key is one row of the table in keys.c: parsing,
 * defaults and "did you mean" suggestions are driven by it, so adding a
 * key is adding a row there.
 */
#include "conf/config.h"
#include "conf/keys.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/endpoint.h"
#include "base/log.h"
#include "base/roff.h"
#include "base/value.h"


/* --- parse state --------------------------------------------------------- */

typedef struct parse_state {
    morphd_config_t *cfg;
    morphd_errors_t *errs;
    const char *name; /* file name for messages */

    /* the reader */
    const char *text; /* for string input */
    FILE *file;
    int line; /* lines read so far: the line inih is handling */

    /* the current section, set by the reader when it sees a header */
    section_kind_t section;
    morphd_service_conf_t *service; /* when section == SEC_SERVICE */
} parse_state_t;

#define CONFIG_ERROR(st, line_no, ...)                                         \
    do {                                                                       \
        char msg_[512];                                                        \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                              \
        morphd_errors_add((st)->errs, "%s:%d: %s", (st)->name, (line_no),      \
                          msg_);                                               \
    } while (0)

/* The closest key of `section` to `name`, or NULL when none is close. */
static const char *suggest_key(section_kind_t section, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3; /* suggest only within two edits */
    for (size_t i = 0; i < morphd_n_keys; i++) {
        if (morphd_key_table[i].section != section)
            continue;
        size_t d = morphd_edit_distance(name, morphd_key_table[i].name);
        if (d < best_d) {
            best_d = d;
            best = morphd_key_table[i].name;
        }
    }
    return best;
}

static void apply_defaults(parse_state_t *st, section_kind_t section,
                           void *obj)
{
    for (size_t i = 0; i < morphd_n_keys; i++) {
        const key_row_t *row = &morphd_key_table[i];
        char err[256];
        if (row->section != section || row->def == NULL)
            continue;
        if (row->type->set(row, obj, row->def, err, sizeof err) != 0)
            morphd_errors_add(st->errs, "built-in default of %s: %s",
                              row->name, err); /* a bug in the table */
    }
}

/* Called by the reader for a line that opens a section. */
static void begin_section(parse_state_t *st, const char *header)
{
    morphd_config_t *cfg = st->cfg;
    st->service = NULL;
    if (strcmp(header, "morphd") == 0) {
        st->section = SEC_MORPHD;
        return;
    }
    if (strncmp(header, "service", 7) == 0 && isspace((unsigned char)header[7])) {
        const char *name = header + 8;
        while (isspace((unsigned char)*name))
            name++;
        st->section = SEC_UNKNOWN;
        if (!morphd_valid_name(name)) {
            CONFIG_ERROR(st, st->line,
                         "'%s' is not a service name (letters, digits, _ "
                         "and -)", name);
            return;
        }
        for (size_t i = 0; i < cfg->n_services; i++)
            if (strcmp(cfg->services[i].name, name) == 0) {
                CONFIG_ERROR(st, st->line,
                             "service '%s' is already defined at line %d",
                             name, cfg->services[i].line);
                return;
            }
        morphd_service_conf_t *grown =
            realloc(cfg->services, (cfg->n_services + 1) * sizeof *grown);
        char *dup = strdup(name);
        if (grown == NULL || dup == NULL) {
            free(dup);
            if (grown)
                cfg->services = grown;
            CONFIG_ERROR(st, st->line, "out of memory");
            return;
        }
        cfg->services = grown;
        morphd_service_conf_t *svc = &cfg->services[cfg->n_services++];
        memset(svc, 0, sizeof *svc);
        svc->name = dup;
        svc->line = st->line;
        apply_defaults(st, SEC_SERVICE, svc);
        st->section = SEC_SERVICE;
        st->service = svc;
        return;
    }
    st->section = SEC_UNKNOWN;
    if (strcmp(header, "service") == 0)
        CONFIG_ERROR(st, st->line,
                     "a service section needs a name: [service NAME]");
    else if (morphd_edit_distance(header, "morphd") <= 2)
        CONFIG_ERROR(st, st->line,
                     "unknown section [%s]; did you mean [morphd]?", header);
    else
        CONFIG_ERROR(st, st->line,
                     "unknown section [%s]; sections are [morphd] and "
                     "[service NAME]", header);
}

static int next_char(parse_state_t *st)
{
    if (st->text != NULL)
        return *st->text == '\0' ? EOF : (unsigned char)*st->text++;
    return fgetc(st->file);
}

/* An fgets-style reader that counts lines and spots section headers, so
 * errors carry line numbers although libinih's handler does not get them. */
static char *read_line(char *str, int num, void *stream)
{
    parse_state_t *st = stream;
    size_t n = 0;
    bool too_long = false, nul = false;
    int c = EOF;
    while ((c = next_char(st)) != EOF) {
        nul |= c == '\0';
        if (n + 1 < (size_t)num)
            str[n++] = (char)c;
        else
            too_long = true; /* consume the rest of the line */
        if (c == '\n')
            break;
    }
    if (n == 0 && c == EOF)
        return NULL;
    str[n] = '\0';
    st->line++;
    size_t content = n;
    if (content > 0 && str[content - 1] == '\n')
        content--;
    if (content > 0 && str[content - 1] == '\r')
        content--;
    too_long |= content > MORPHD_CONFIG_MAX_LINE;
    /* A UTF-8 byte order mark, as some Windows editors write, is not part
     * of the first line (inih would skip it too, but only after this
     * reader had failed to see a section header behind it). */
    if (st->line == 1 && n >= 3 && memcmp(str, "\xEF\xBB\xBF", 3) == 0)
        memmove(str, str + 3, n - 3 + 1);
    if (too_long) {
        CONFIG_ERROR(st, st->line, "line too long (over %d characters)",
                     MORPHD_CONFIG_MAX_LINE);
        str[0] = '\0'; /* inih skips it as an empty line */
        return str;
    }
    /* inih sees a line up to its first NUL: what follows would vanish
     * without a word (`listen = A\0 B` serving A alone) */
    if (nul) {
        CONFIG_ERROR(st, st->line, "a NUL byte in the line (is this a text "
                     "file?)");
        str[0] = '\0';
        return str;
    }

    /* A section header? inih parses it too; we track it here so empty and
     * repeated sections are seen, with their line. */
    const char *p = str;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (end != NULL) {
            char header[256];
            size_t len = (size_t)(end - p - 1);
            if (len >= sizeof header)
                len = sizeof header - 1;
            memcpy(header, p + 1, len);
            header[len] = '\0';
            begin_section(st, header);
        }
    }
    return str;
}

static const key_row_t *find_key(section_kind_t section, const char *name)
{
    for (size_t i = 0; i < morphd_n_keys; i++)
        if (morphd_key_table[i].section == section &&
            strcmp(morphd_key_table[i].name, name) == 0)
            return &morphd_key_table[i];
    return NULL;
}

static void add_plugin_option(parse_state_t *st, const char *name,
                              const char *value)
{
    char err[384];
    if (morphd_plugin_opts_add(&st->service->opts, name, value, st->line,
                               false, err, sizeof err) != 0)
        CONFIG_ERROR(st, st->line, "%s", err);
}

static int on_key(void *user, const char *section, const char *name,
                  const char *value)
{
    parse_state_t *st = user;
    (void)section; /* the reader already tracked it, with its line */
    void *obj;
    unsigned long *seen; /* a bit per row of the key table (keys.c) */

    switch (st->section) {
    case SEC_UNKNOWN:
        return 1; /* the section header was reported already */
    case SEC_NONE:
        CONFIG_ERROR(st, st->line,
                     "'%s' is outside any section; put it under [morphd] or "
                     "[service NAME]", name);
        return 1;
    case SEC_MORPHD:
        obj = st->cfg;
        seen = &st->cfg->seen;
        break;
    case SEC_SERVICE:
        obj = st->service;
        seen = &st->service->seen;
        if (strchr(name, '.') != NULL) {
            add_plugin_option(st, name, value);
            return 1;
        }
        break;
    default:
        return 1;
    }

    const key_row_t *row = find_key(st->section, name);
    if (row == NULL) {
        const char *hint = suggest_key(st->section, name);
        if (hint != NULL)
            CONFIG_ERROR(st, st->line, "unknown key '%s'; did you mean '%s'?",
                         name, hint);
        else
            CONFIG_ERROR(st, st->line, "unknown key '%s' in [%s]", name,
                         section);
        return 1;
    }
    unsigned long bit = 1ul << (row - morphd_key_table);
    if (*seen & bit) {
        CONFIG_ERROR(st, st->line, "'%s' is set twice in [%s]", name, section);
        return 1;
    }
    *seen |= bit;
    char err[384];
    if (row->type->set(row, obj, value, err, sizeof err) != 0) {
        CONFIG_ERROR(st, st->line, "%s: %s", name, err);
        return 1;
    }
    if (row->line_offset >= 0)
        *(int *)((char *)obj + row->line_offset) = st->line;
    return 1;
}

/* Whether `name` was given in the section (even with a bad value, which
 * was reported already). */
static bool key_given(unsigned long seen, section_kind_t section,
                      const char *name)
{
    const key_row_t *row = find_key(section, name);
    return row != NULL && (seen & (1ul << (row - morphd_key_table)));
}

bool morphd_service_conf_given(const morphd_service_conf_t *svc,
                               const char *name)
{
    return key_given(svc->seen, SEC_SERVICE, name);
}

/* proxy_protocol's needs, checked once every key is read (and again
 * after --set overrides). */
static void check_proxy(const char *file, const morphd_service_conf_t *svc,
                        morphd_errors_t *errs)
{
    if (svc->proxy_protocol == 0)
        return;
    int line = svc->proxy_protocol_line;
    bool udp = false, ip = false;
    for (size_t i = 0; i < svc->n_listen; i++) {
        udp |= svc->listen[i].transport == MORPHD_UDP;
        ip |= svc->listen[i].transport != MORPHD_UNIX;
    }
    if (svc->n_proxy_from == 0)
        morphd_errors_add(errs, "%s:%d: service '%s': proxy_protocol needs "
                          "proxy_from, the load balancers' addresses (e.g. "
                          "proxy_from = 10.0.0.0/8)", file, line, svc->name);
    if (udp && svc->proxy_protocol == MORPHD_PROXY_V1)
        morphd_errors_add(errs, "%s:%d: service '%s': udp:// endpoints take "
                          "only PROXY v2 headers: use proxy_protocol = v2 or "
                          "any", file, line, svc->name);
    if (!ip && svc->n_listen > 0)
        morphd_errors_add(errs, "%s:%d: service '%s': proxy_protocol is for "
                          "tcp://, tls:// and udp:// endpoints, and this "
                          "service has none", file, line, svc->name);
}

/* The framing keys go with their framing; then the codec is made of
 * them. Checked once every key is read (and again after --set). */
static void check_framing(const char *file, morphd_service_conf_t *svc,
                          morphd_errors_t *errs)
{
    const struct { const char *key; const char *framing; int line; } keys[] = {
        {"length_field", "length", svc->length_field_line},
        {"length_offset", "length", svc->length_offset_line},
        {"length_adjust", "length", svc->length_adjust_line},
        {"delimiter", "delimiter", svc->delimiter_line},
    };
    const char *framing = svc->framing->name;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (morphd_service_conf_given(svc, keys[i].key) &&
            strcmp(framing, keys[i].framing) != 0)
            morphd_errors_add(errs, "%s:%d: service '%s': %s is a key of "
                              "framing = %s, and this service's framing is "
                              "%s", file, keys[i].line ? keys[i].line
                              : svc->line, svc->name, keys[i].key,
                              keys[i].framing, framing);
    char why[160];
    if (morphd_codec_init(&svc->codec, svc->framing, svc->max_message,
                          svc->length_field, svc->length_offset,
                          svc->length_adjust, svc->delimiter,
                          svc->delimiter_len, why, sizeof why) != 0)
        morphd_errors_add(errs, "%s:%d: service '%s': %s", file,
                          svc->framing_line ? svc->framing_line : svc->line,
                          svc->name, why);
}

/* Checks what only the whole file can tell. */
static void check_config(parse_state_t *st)
{
    morphd_config_t *cfg = st->cfg;
    if (cfg->n_services == 0)
        morphd_errors_add(st->errs,
                          "%s: no [service NAME] section: nothing to serve",
                          st->name);
    for (size_t i = 0; i < cfg->n_services; i++) {
        morphd_service_conf_t *svc = &cfg->services[i];
        if (!key_given(svc->seen, SEC_SERVICE, "listen"))
            CONFIG_ERROR(st, svc->line, "service '%s' has no 'listen' key",
                         svc->name);
        if (!key_given(svc->seen, SEC_SERVICE, "transform"))
            CONFIG_ERROR(st, svc->line, "service '%s' has no 'transform' key",
                         svc->name);
        check_proxy(st->name, svc, st->errs);
        if ((svc->detect_tls || svc->detect_http) &&
            !morphd_service_conf_detects(svc))
            CONFIG_ERROR(st, svc->detect_line, "service '%s': detect tells "
                         "protocols apart on tcp:// endpoints, and this "
                         "service has none", svc->name);
        check_framing(st->name, svc, st->errs);
        if (key_given(svc->seen, SEC_SERVICE, "rate_burst") &&
            svc->rate_per_source == 0)
            CONFIG_ERROR(st, svc->line, "service '%s': rate_burst needs "
                         "rate_per_source", svc->name);
        for (size_t j = 0; j < svc->opts.n; j++) {
            const morphd_plugin_opt_t *o = &svc->opts.v[j];
            bool used = svc->framing_plugin != NULL &&
                        strcmp(svc->framing_plugin, o->plugin) == 0;
            for (size_t k = 0; k < svc->n_chain; k++)
                used |= strcmp(svc->chain[k], o->plugin) == 0;
            if (!used && svc->n_chain > 0)
                CONFIG_ERROR(st, o->line,
                             "option '%s.%s' is for plugin '%s', which is not "
                             "in this service's transform",
                             o->plugin, o->key, o->plugin);
        }
    }
}

static int load(parse_state_t *st)
{
    morphd_config_t *cfg = st->cfg;
    memset(cfg, 0, sizeof *cfg);
    cfg->path = strdup(st->name);
    size_t errors_before = st->errs->n;
    apply_defaults(st, SEC_MORPHD, cfg);

    /* Debian's libinih exposes its compile-time options as globals; its
     * default keeps lines to 200 characters, too few for a listen line of
     * many endpoints. One heap buffer holds MORPHD_CONFIG_MAX_LINE
     * characters and the line's ending. Without ini_use_stack, inih reads
     * into ini_initial_alloc bytes (and only grows them with
     * ini_allow_realloc, which would hide an overlong line from
     * read_line), so both sizes are set. Continuation lines would hide
     * duplicate keys, so they are off. */
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_max_line = MORPHD_CONFIG_MAX_LINE + 3;
    ini_initial_alloc = ini_max_line;
    ini_allow_multiline = false;

    /* inih's convention, not morphd's: the first bad line's number, -1
     * when the file cannot be opened, -2 when memory runs out */
    enum { INIH_OUT_OF_MEMORY = -2 };
    int rc = ini_parse_stream(read_line, st, on_key, st);
    if (rc > 0)
        morphd_errors_add(st->errs,
                          "%s:%d: syntax error: expected [section] or "
                          "KEY = VALUE", st->name, rc);
    else if (rc == INIH_OUT_OF_MEMORY)
        morphd_errors_add(st->errs, "%s: out of memory", st->name);
    /* inih reports only the first syntax error; other lines were handled */
    if (rc == 0 || rc > 0)
        check_config(st);
    return st->errs->n == errors_before ? 0 : -1;
}

int morphd_config_load_file(const char *path, morphd_config_t *cfg,
                            morphd_errors_t *errs)
{
    parse_state_t st = {.cfg = cfg, .errs = errs, .name = path};
    st.file = fopen(path, "r");
    if (st.file == NULL) {
        memset(cfg, 0, sizeof *cfg);
        morphd_errors_add(errs, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = load(&st);
    fclose(st.file);
    return rc;
}

int morphd_config_load_string(const char *text, const char *name,
                              morphd_config_t *cfg, morphd_errors_t *errs)
{
    parse_state_t st = {.cfg = cfg, .errs = errs, .name = name, .text = text};
    return load(&st);
}

int morphd_config_override(morphd_config_t *cfg, const char *spec,
                           morphd_errors_t *errs)
{
    const char *eq = strchr(spec, '=');
    const char *dot = strchr(spec, '.');
    if (eq == NULL || dot == NULL || dot > eq || dot == spec) {
        morphd_errors_add(errs, "--set '%s': write SECTION.KEY=VALUE, e.g. "
                          "uppercase.listen=tcp://127.0.0.1:0", spec);
        return -1;
    }
    char section[128], key[128];
    size_t slen = (size_t)(dot - spec), klen = (size_t)(eq - dot - 1);
    if (slen >= sizeof section || klen >= sizeof key || klen == 0) {
        morphd_errors_add(errs, "--set '%s': bad key", spec);
        return -1;
    }
    memcpy(section, spec, slen);
    section[slen] = '\0';
    memcpy(key, dot + 1, klen);
    key[klen] = '\0';
    const char *value = eq + 1;

    void *obj = cfg;
    section_kind_t kind = SEC_MORPHD;
    morphd_service_conf_t *svc = NULL;
    if (strcmp(section, "morphd") != 0) {
        for (size_t i = 0; i < cfg->n_services; i++)
            if (strcmp(cfg->services[i].name, section) == 0)
                svc = &cfg->services[i];
        if (svc == NULL) {
            morphd_errors_add(errs, "--set '%s': no service '%s' in %s", spec,
                              section, cfg->path);
            return -1;
        }
        obj = svc;
        kind = SEC_SERVICE;
    }
    if (kind == SEC_SERVICE && strchr(key, '.') != NULL) {
        /* a plugin option: replace it, or add it */
        char err[384];
        if (morphd_plugin_opts_add(&svc->opts, key, value, 0, true, err,
                                   sizeof err) != 0) {
            morphd_errors_add(errs, "--set '%s': %s", spec, err);
            return -1;
        }
        return 0;
    }
    const key_row_t *row = find_key(kind, key);
    if (row == NULL) {
        const char *hint = suggest_key(kind, key);
        morphd_errors_add(errs, "--set '%s': unknown key '%s'%s%s%s", spec, key,
                          hint ? "; did you mean '" : "", hint ? hint : "",
                          hint ? "'?" : "");
        return -1;
    }
    char err[384];
    if (row->type->set(row, obj, value, err, sizeof err) != 0) {
        morphd_errors_add(errs, "--set '%s': %s", spec, err);
        return -1;
    }
    return 0;
}

int morphd_config_read(const char *path, const char *const *overrides,
                       size_t n_overrides, morphd_config_t *cfg,
                       morphd_errors_t *errs)
{
    int rc = path ? morphd_config_load_file(path, cfg, errs)
                  : morphd_config_load_string(morphd_default_config,
                                              "(built-in default)", cfg, errs);
    for (size_t i = 0; rc == 0 && i < n_overrides; i++)
        rc = morphd_config_override(cfg, overrides[i], errs);
    if (rc == 0 && n_overrides > 0) {
        size_t before = errs->n;
        for (size_t i = 0; i < cfg->n_services; i++)
            check_proxy(cfg->path, &cfg->services[i], errs);
        for (size_t i = 0; i < cfg->n_services; i++)
            check_framing(cfg->path, &cfg->services[i], errs);
        rc = errs->n == before ? 0 : -1;
    }
    if (rc != 0)
        morphd_config_free(cfg);
    return rc;
}

void morphd_config_free(morphd_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_services; i++) {
        morphd_service_conf_t *svc = &cfg->services[i];
        free(svc->name);
        free(svc->listen);
        free(svc->unix_group);
        free(svc->framing_plugin);
        free(svc->tls_certificate);
        free(svc->tls_key);
        free(svc->tls_client_ca);
        free(svc->tls_ciphers);
        free(svc->tls_groups);
        free(svc->proxy_from);
        for (size_t k = 0; k < svc->n_http_allow_origin; k++)
            free(svc->http_allow_origin[k]);
        free(svc->http_allow_origin);
        morphd_chain_spec_free(svc->chain, svc->n_chain);
        morphd_plugin_opts_free(&svc->opts);
    }
    free(cfg->services);
    free(cfg->plugin_dir);
    free(cfg->admin_socket);
    free(cfg->metrics_listen);
    free(cfg->access_log);
    free(cfg->user);
    free(cfg->group);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}

/* Each folder of plugin_dir, relative ones made relative to the config
 * file's folder, joined by single spaces. */
char *morphd_config_plugin_dir(const morphd_config_t *cfg, const char *fallback)
{
    if (cfg->plugin_dir == NULL)
        return strdup(fallback);
    const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;
    int base = slash != NULL ? (int)(slash - cfg->path) : 0;
    size_t size = strlen(cfg->plugin_dir) + 1; /* + the base of each */
    for (const char *p = cfg->plugin_dir; *p; p++)
        if (*p != ' ' && *p != '\t' && (p == cfg->plugin_dir || p[-1] == ' ' ||
                                        p[-1] == '\t'))
            size += (size_t)base + 1;
    char *out = malloc(size);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    const char *p = cfg->plugin_dir;
    for (p += strspn(p, " \t"); *p; p += strspn(p, " \t")) {
        size_t len = strcspn(p, " \t");
        n += (size_t)snprintf(out + n, size - n, "%s%.*s%s%.*s",
                              n ? " " : "", p[0] == '/' || slash == NULL
                                                ? 0 : base, cfg->path,
                              p[0] == '/' || slash == NULL ? "" : "/",
                              (int)len, p);
        p += len;
    }
    out[n] = '\0';
    return out;
}

bool morphd_service_conf_has_framed(const morphd_service_conf_t *conf)
{
    for (size_t i = 0; i < conf->n_listen; i++)
        if (conf->listen[i].transport == MORPHD_TCP ||
            conf->listen[i].transport == MORPHD_TLS ||
            conf->listen[i].transport == MORPHD_UNIX)
            return true;
    return false;
}

bool morphd_service_conf_streams_http(const morphd_service_conf_t *conf)
{
    return conf->codec.chunks && conf->framing_line > 0 &&
           morphd_service_conf_has_http(conf);
}

bool morphd_service_conf_detects(const morphd_service_conf_t *conf)
{
    bool tcp = false;
    for (size_t i = 0; i < conf->n_listen; i++)
        tcp |= conf->listen[i].transport == MORPHD_TCP;
    return tcp && (conf->detect_tls || conf->detect_http);
}

bool morphd_service_conf_has_http(const morphd_service_conf_t *conf)
{
    for (size_t i = 0; i < conf->n_listen; i++)
        if (morphd_transport_is_http(conf->listen[i].transport))
            return true;
    return false;
}

bool morphd_service_conf_has_stream(const morphd_service_conf_t *conf)
{
    for (size_t i = 0; i < conf->n_listen; i++)
        if (morphd_transport_is_stream(conf->listen[i].transport))
            return true;
    return false;
}

bool morphd_service_conf_has_tls(const morphd_service_conf_t *conf)
{
    for (size_t i = 0; i < conf->n_listen; i++)
        if (morphd_transport_is_tls(conf->listen[i].transport))
            return true;
    return conf->detect_tls && morphd_service_conf_detects(conf);
}

const morphd_service_conf_t *morphd_config_find_service(
    const morphd_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_services; i++)
        if (strcmp(cfg->services[i].name, name) == 0)
            return &cfg->services[i];
    return NULL;
}

