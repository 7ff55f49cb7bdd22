/*
 * keys.c -- the key table and its setters (keys.h), and the reference of
 * every key that --help-config, docs/configuration.md and morphd.ini(5)
 * print from it. Adding a key is adding a row.
 */
#include "conf/keys.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/endpoint.h"
#include "base/log.h"
#include "base/roff.h"
#include "base/value.h"
#include "codec/http.h"

#define FIELD(obj, row, type) ((type *)((char *)(obj) + (row)->offset))

static int set_string(const key_row_t *row, void *obj, const char *value,
                      char *err, size_t err_size)
{
    char **field = FIELD(obj, row, char *);
    if (*value == '\0') {
        snprintf(err, err_size, "must not be empty");
        return -1;
    }
    char *copy = strdup(value);
    if (copy == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    free(*field);
    *field = copy;
    return 0;
}

static int set_log_level(const key_row_t *row, void *obj, const char *value,
                         char *err, size_t err_size)
{
    int level = morphd_log_level_parse(value);
    if (level < 0) {
        snprintf(err, err_size,
                 "'%s' is not a log level (error, warn, info, debug)", value);
        return -1;
    }
    *FIELD(obj, row, int) = level;
    return 0;
}

/* Sizes, counts, durations and booleans: the grammar of base/value.h,
 * which plugin options share. */
static int set_size(const key_row_t *row, void *obj, const char *value,
                    char *err, size_t err_size)
{
    uint64_t n;
    if (morphd_value_size(value, &n, err, err_size) != 0)
        return -1;
    if (n < row->min || n > row->max) {
        snprintf(err, err_size, "%s is out of range %zu..%zu bytes", value,
                 row->min, row->max);
        return -1;
    }
    *FIELD(obj, row, size_t) = (size_t)n;
    return 0;
}

static int set_isolation(const key_row_t *row, void *obj, const char *value,
                         char *err, size_t err_size)
{
    if (strcmp(value, "thread") != 0 && strcmp(value, "process") != 0) {
        snprintf(err, err_size, "'%s' is not thread or process", value);
        return -1;
    }
    *FIELD(obj, row, int) = strcmp(value, "process") == 0;
    return 0;
}

static int set_bool(const key_row_t *row, void *obj, const char *value,
                    char *err, size_t err_size)
{
    bool v;
    if (morphd_value_bool(value, &v, err, err_size) != 0)
        return -1;
    *FIELD(obj, row, int) = v;
    return 0;
}

static int set_log_target(const key_row_t *row, void *obj, const char *value,
                          char *err, size_t err_size)
{
    if (strcmp(value, "stderr") != 0 && strcmp(value, "syslog") != 0) {
        snprintf(err, err_size, "'%s' is not a log target (stderr or syslog)",
                 value);
        return -1;
    }
    *FIELD(obj, row, int) = strcmp(value, "syslog") == 0;
    return 0;
}

static int set_workers(const key_row_t *row, void *obj, const char *value,
                       char *err, size_t err_size)
{
    if (strcmp(value, "auto") == 0) {
        *FIELD(obj, row, unsigned) = 0;
        return 0;
    }
    int64_t n;
    char why[128];
    if (morphd_value_int(value, &n, why, sizeof why) != 0 ||
        n < (int64_t)row->min || n > (int64_t)row->max) {
        snprintf(err, err_size, "'%s' is not auto or a number %zu..%zu", value,
                 row->min, row->max);
        return -1;
    }
    *FIELD(obj, row, unsigned) = (unsigned)n;
    return 0;
}

/* Counts: a whole number within the row's bounds. */
static int set_count(const key_row_t *row, void *obj, const char *value,
                     char *err, size_t err_size)
{
    int64_t n;
    if (morphd_value_int(value, &n, err, err_size) != 0)
        return -1;
    if (n < 0 || (uint64_t)n < row->min || (uint64_t)n > row->max) {
        snprintf(err, err_size, "%s is out of range %zu..%zu", value, row->min,
                 row->max);
        return -1;
    }
    *FIELD(obj, row, size_t) = (size_t)n;
    return 0;
}

/* Durations: a number with its unit (ms, s, m, h); 0 needs none. */
static int set_duration_ms(const key_row_t *row, void *obj, const char *value,
                           char *err, size_t err_size)
{
    uint64_t ms;
    if (morphd_value_duration_ms(value, false, &ms, err, err_size) != 0)
        return -1;
    if (ms < row->min || ms > row->max) {
        snprintf(err, err_size, "%s is out of range %zums..%zums", value,
                 row->min, row->max);
        return -1;
    }
    *FIELD(obj, row, unsigned) = (unsigned)ms;
    return 0;
}

/* File permissions: octal, at most 0777. */
static int set_mode(const key_row_t *row, void *obj, const char *value,
                    char *err, size_t err_size)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(value, &end, 8);
    if (end == value || *end != '\0' || *value == '-' || *value == '+' ||
        errno != 0 || n > row->max) {
        snprintf(err, err_size, "'%s' is not a file mode (octal, e.g. 0660)",
                 value);
        return -1;
    }
    *FIELD(obj, row, unsigned) = (unsigned)n;
    return 0;
}

/* A group that exists: a name or a number. */
static int set_group(const key_row_t *row, void *obj, const char *value,
                     char *err, size_t err_size)
{
    if (morphd_unix_group_id(value) < 0) {
        snprintf(err, err_size, "no group '%s' on this system", value);
        return -1;
    }
    char **field = FIELD(obj, row, char *);
    char *copy = strdup(value);
    if (copy == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    free(*field);
    *field = copy;
    return 0;
}

/* TLS protocol versions: TLSv1.2 and/or TLSv1.3 (older ones are not
 * offered: they are broken or deprecated, RFC 8996). */
static int set_tls_protocols(const key_row_t *row, void *obj,
                             const char *value, char *err, size_t err_size)
{
    unsigned mask = 0;
    char *copy = strdup(value), *save = NULL;
    if (copy == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (char *w = strtok_r(copy, " \t,", &save); w != NULL;
         w = strtok_r(NULL, " \t,", &save)) {
        if (strcmp(w, "TLSv1.2") == 0)
            mask |= MORPHD_TLS_V1_2;
        else if (strcmp(w, "TLSv1.3") == 0)
            mask |= MORPHD_TLS_V1_3;
        else {
            snprintf(err, err_size, "'%s' is not TLSv1.2 or TLSv1.3 (older "
                     "versions are not offered)", w);
            free(copy);
            return -1;
        }
    }
    free(copy);
    if (mask == 0) {
        snprintf(err, err_size, "needs TLSv1.2, TLSv1.3 or both");
        return -1;
    }
    *FIELD(obj, row, unsigned) = mask;
    return 0;
}

/* A built-in framing, or the name of a codec plugin (loaded with the
 * chain's plugins, server.c). */
static int set_framing(const key_row_t *row, void *obj, const char *value,
                       char *err, size_t err_size)
{
    (void)row;
    morphd_service_conf_t *svc = obj;
    const morphd_codec_ops_t *ops = morphd_codec_builtin(value);
    char *plugin = NULL;
    if (ops == NULL) {
        if (!morphd_valid_name(value)) {
            snprintf(err, err_size, "'%s' is not a framing (%s) nor a codec "
                     "plugin's name (letters, digits, _ and -)", value,
                     morphd_codec_builtin_names);
            return -1;
        }
        if ((plugin = strdup(value)) == NULL) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        ops = &morphd_codec_plugin;
    }
    free(svc->framing_plugin);
    svc->framing_plugin = plugin;
    svc->framing = ops;
    return 0;
}

static int set_length_field(const key_row_t *row, void *obj,
                            const char *value, char *err, size_t err_size)
{
    morphd_length_kind_t kind;
    if (morphd_length_kind_parse(value, &kind) != 0) {
        snprintf(err, err_size, "'%s' is not one of %s", value,
                 morphd_length_kind_names);
        return -1;
    }
    *FIELD(obj, row, morphd_length_kind_t) = kind;
    return 0;
}

/* A whole number that may be negative, within +-row->max. */
static int set_signed(const key_row_t *row, void *obj, const char *value,
                      char *err, size_t err_size)
{
    int64_t n;
    if (morphd_value_int(value, &n, err, err_size) != 0)
        return -1;
    if (n < -(int64_t)row->max || n > (int64_t)row->max) {
        snprintf(err, err_size, "%s is out of range -%zu..%zu", value,
                 row->max, row->max);
        return -1;
    }
    *FIELD(obj, row, int64_t) = n;
    return 0;
}

static int set_delimiter(const key_row_t *row, void *obj, const char *value,
                         char *err, size_t err_size)
{
    (void)row;
    morphd_service_conf_t *svc = obj;
    int n = morphd_delimiter_parse(value, svc->delimiter,
                                   sizeof svc->delimiter, err, err_size);
    if (n < 0)
        return -1;
    svc->delimiter_len = (size_t)n;
    return 0;
}

static int set_access_log(const key_row_t *row, void *obj, const char *value,
                          char *err, size_t err_size)
{
    char **field = FIELD(obj, row, char *);
    if (strcmp(value, "off") == 0) {
        free(*field);
        *field = NULL;
        return 0;
    }
    if (strcmp(value, "syslog") != 0 && value[0] != '/') {
        snprintf(err, err_size, "'%s' is not an absolute file name, syslog "
                 "or off", value);
        return -1;
    }
    return set_string(row, obj, value, err, err_size);
}

static int set_log_format(const key_row_t *row, void *obj, const char *value,
                          char *err, size_t err_size)
{
    if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0) {
        snprintf(err, err_size, "'%s' is not text or json", value);
        return -1;
    }
    *FIELD(obj, row, int) = strcmp(value, "json") == 0;
    return 0;
}

static int set_metrics_listen(const key_row_t *row, void *obj,
                              const char *value, char *err, size_t err_size)
{
    struct sockaddr_storage ss;
    if (morphd_metrics_parse_listen(value, &ss, err, err_size) != 0)
        return -1;
    return set_string(row, obj, value, err, err_size);
}

static int set_proxy_protocol(const key_row_t *row, void *obj,
                              const char *value, char *err, size_t err_size)
{
    static const struct { const char *name; unsigned mask; } modes[] = {
        {"off", 0}, {"v1", MORPHD_PROXY_V1}, {"v2", MORPHD_PROXY_V2},
        {"any", MORPHD_PROXY_ANY},
    };
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (strcmp(value, modes[i].name) == 0) {
            *FIELD(obj, row, unsigned) = modes[i].mask;
            return 0;
        }
    snprintf(err, err_size, "'%s' is not off, v1, v2 or any", value);
    return -1;
}

/* A rate: "N/s", N a positive number (fractions allowed: 0.5/s is one
 * every two seconds), or 0 for off. */
static int set_rate(const key_row_t *row, void *obj, const char *value,
                    char *err, size_t err_size)
{
    char *end;
    errno = 0;
    double n = strtod(value, &end);
    bool off = strcmp(value, "0") == 0 || strcmp(value, "off") == 0;
    /* decimals only, as every number of base/value.h: strtod would take
     * exponents, hex and leading spaces too */
    bool decimal = strspn(value, "0123456789.") == (size_t)(end - value);
    if (!off && (end == value || !decimal || errno != 0 ||
                 strcmp(end, "/s") != 0 ||
                 !(n > 0) || n > (double)row->max)) { /* !(>) catches NaN */
        snprintf(err, err_size, "'%s' is not a rate: N/s with N from 0.001 "
                 "to %zu (e.g. 100/s), or off", value, row->max);
        return -1;
    }
    if (!off && n < 0.001) {
        snprintf(err, err_size, "%s is below 0.001/s", value);
        return -1;
    }
    *FIELD(obj, row, double) = off ? 0 : n;
    return 0;
}

static int split_list(const char *value, char ***out, size_t *n_out,
                      char *err, size_t err_size);
static void free_words(char **words, size_t n);

/* proxy_from: networks separated by spaces or commas. */
static int set_proxy_from(const key_row_t *row, void *obj, const char *value,
                          char *err, size_t err_size)
{
    (void)row;
    morphd_service_conf_t *svc = obj;
    char **words;
    size_t n;
    if (split_list(value, &words, &n, err, err_size) != 0)
        return -1;
    morphd_cidr_t *nets = n ? calloc(n, sizeof *nets) : NULL;
    int rc = 0;
    if (n == 0) {
        snprintf(err, err_size, "needs at least one address or network, e.g. "
                 "10.0.0.0/8 or 127.0.0.1");
        rc = -1;
    } else if (nets == NULL) {
        snprintf(err, err_size, "out of memory");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = morphd_cidr_parse(words[i], &nets[i], err, err_size);
    free_words(words, n);
    if (rc != 0) {
        free(nets);
        return -1;
    }
    free(svc->proxy_from);
    svc->proxy_from = nets;
    svc->n_proxy_from = n;
    return 0;
}

/* Splits `value` on any of `seps` into a new array of new strings. */
static int split_words(const char *value, const char *seps, char ***out,
                       size_t *n_out)
{
    char *copy = strdup(value);
    char **words = NULL;
    size_t n = 0;
    if (copy == NULL)
        return -1;
    char *save = NULL;
    for (char *w = strtok_r(copy, seps, &save); w != NULL;
         w = strtok_r(NULL, seps, &save)) {
        char **grown = realloc(words, (n + 1) * sizeof *words);
        char *dup = strdup(w);
        if (grown == NULL || dup == NULL) {
            free(dup);
            words = grown ? grown : words;
            for (size_t i = 0; i < n; i++)
                free(words[i]);
            free(words);
            free(copy);
            return -1;
        }
        words = grown;
        words[n++] = dup;
    }
    free(copy);
    *out = words;
    *n_out = n;
    return 0;
}

static void free_words(char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

/* A list value: words separated by blanks or commas. */
static int split_list(const char *value, char ***out, size_t *n_out,
                      char *err, size_t err_size)
{
    if (split_words(value, " \t,", out, n_out) == 0)
        return 0;
    snprintf(err, err_size, "out of memory");
    return -1;
}

/* http_allow_origin: origins separated by blanks or commas, or "*". */
static int set_http_allow_origin(const key_row_t *row, void *obj,
                                 const char *value, char *err,
                                 size_t err_size)
{
    (void)row;
    morphd_service_conf_t *svc = obj;
    char **words;
    size_t n;
    if (split_list(value, &words, &n, err, err_size) != 0)
        return -1;
    int rc = 0;
    if (n == 0) {
        snprintf(err, err_size, "needs at least one origin, e.g. "
                 "https://app.example.com, or *");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!morphd_http_origin_valid(words[i], err, err_size))
            rc = -1;
        else if (strcmp(words[i], "*") == 0 && n > 1) {
            snprintf(err, err_size, "* allows every origin: give it alone, "
                     "or list the origins without it");
            rc = -1;
        }
    }
    if (rc != 0) {
        free_words(words, n);
        return -1;
    }
    free_words(svc->http_allow_origin, svc->n_http_allow_origin);
    svc->http_allow_origin = words;
    svc->n_http_allow_origin = n;
    return 0;
}

/* detect: tls and http, separated by blanks or commas (none: empty). */
static int set_detect(const key_row_t *row, void *obj, const char *value,
                      char *err, size_t err_size)
{
    (void)row;
    morphd_service_conf_t *svc = obj;
    char **words;
    size_t n;
    if (split_list(value, &words, &n, err, err_size) != 0)
        return -1;
    bool tls = false, http = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (strcmp(words[i], "tls") == 0)
            tls = true;
        else if (strcmp(words[i], "http") == 0)
            http = true;
        else {
            snprintf(err, err_size, "'%.40s' is not a protocol detect tells "
                     "apart: give tls, http or both", words[i]);
            rc = -1;
        }
    }
    free_words(words, n);
    if (rc == 0) {
        svc->detect_tls = tls;
        svc->detect_http = http;
    }
    return rc;
}

static int set_listen(const key_row_t *row, void *obj, const char *value,
                      char *err, size_t err_size)
{
    (void)row;
    morphd_service_conf_t *svc = obj;
    char **words;
    size_t n;
    if (split_list(value, &words, &n, err, err_size) != 0)
        return -1;
    if (n == 0) {
        snprintf(err, err_size, "needs at least one endpoint, e.g. "
                                "tcp://127.0.0.1:12000 udp://127.0.0.1:12000");
        free_words(words, n);
        return -1;
    }
    morphd_endpoint_t *eps = calloc(n, sizeof *eps);
    int rc = eps ? 0 : -1;
    if (eps == NULL)
        snprintf(err, err_size, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = morphd_endpoint_parse(words[i], &eps[i], err, err_size);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(eps[i].text, eps[j].text) == 0) {
                snprintf(err, err_size, "'%s' is listed twice", words[i]);
                rc = -1;
            }
    }
    free_words(words, n);
    if (rc != 0) {
        free(eps);
        return -1;
    }
    free(svc->listen);
    svc->listen = eps;
    svc->n_listen = n;
    return 0;
}

static int set_chain(const key_row_t *row, void *obj, const char *value,
                     char *err, size_t err_size)
{
    (void)row;
    morphd_service_conf_t *svc = obj;
    char **names;
    size_t n;
    if (morphd_chain_spec_parse(value, &names, &n, err, err_size) != 0)
        return -1;
    morphd_chain_spec_free(svc->chain, svc->n_chain);
    svc->chain = names;
    svc->n_chain = n;
    return 0;
}

/* The types of the keys (key_row_t.type). */
static const key_type_t type_access_log = {set_access_log, RANGE_TEXT, "text"};
static const key_type_t type_bool = {set_bool, RANGE_TEXT, "yes, no"};
static const key_type_t type_chain = {set_chain, RANGE_TEXT, "plugin names"};
static const key_type_t type_count = {set_count, RANGE_COUNT, NULL};
static const key_type_t type_duration_ms = {set_duration_ms, RANGE_DURATION, NULL};
static const key_type_t type_framing = {set_framing, RANGE_TEXT, "stream, line, length, netstring, delimiter, or a codec plugin (resp)"};
static const key_type_t type_length_field = {set_length_field, RANGE_TEXT, morphd_length_kind_names};
static const key_type_t type_signed = {set_signed, RANGE_SIGNED, NULL};
static const key_type_t type_delimiter = {set_delimiter, RANGE_TEXT, "1 to 16 bytes; C escapes \\0 \\t \\r \\n \\\\ \\xHH"};
static const key_type_t type_group = {set_group, RANGE_TEXT, "text"};
static const key_type_t type_origins = {set_http_allow_origin, RANGE_TEXT, "origins, or *"};
static const key_type_t type_detect = {set_detect, RANGE_TEXT, "tls, http"};
static const key_type_t type_isolation = {set_isolation, RANGE_TEXT, "thread, process"};
static const key_type_t type_listen = {set_listen, RANGE_TEXT, "endpoints"};
static const key_type_t type_log_format = {set_log_format, RANGE_TEXT, "text"};
static const key_type_t type_log_level = {set_log_level, RANGE_TEXT, "error, warn, info, debug"};
static const key_type_t type_log_target = {set_log_target, RANGE_TEXT, "stderr, syslog"};
static const key_type_t type_metrics_listen = {set_metrics_listen, RANGE_TEXT, "text"};
static const key_type_t type_mode = {set_mode, RANGE_TEXT, "text"};
static const key_type_t type_proxy_from = {set_proxy_from, RANGE_TEXT, "text"};
static const key_type_t type_proxy_protocol = {set_proxy_protocol, RANGE_TEXT, "text"};
static const key_type_t type_rate = {set_rate, RANGE_TEXT, "text"};
static const key_type_t type_size = {set_size, RANGE_SIZE, NULL};
static const key_type_t type_string = {set_string, RANGE_TEXT, "text"};
static const key_type_t type_tls_protocols = {set_tls_protocols, RANGE_TEXT, "text"};
static const key_type_t type_workers = {set_workers, RANGE_WORKERS, NULL};

#define CONF_OFF(f) offsetof(morphd_config_t, f)
#define SVC_OFF(f) offsetof(morphd_service_conf_t, f)
#define SVC_LINE(f) ((long)offsetof(morphd_service_conf_t, f))

const key_row_t morphd_key_table[] = {
    {SEC_MORPHD, "plugin_dir", &type_string, CONF_OFF(plugin_dir), -1, 0, 0,
     NULL,
     "folders holding the plugins (NAME.so) and Lua scripts (NAME.lua), "
     "separated by spaces and searched in order: the first with NAME.so or "
     "NAME.lua provides plugin NAME (both in one folder is an error); a "
     "relative one is relative to the config file's folder; default: the "
     "build tree's plugins when morphd runs from the build tree, else the "
     "installed plugin folder (`morphd --version` shows it)",
     "/usr/local/lib/morph/plugins /usr/lib/x86_64-linux-gnu/morph/plugins"},
    {SEC_MORPHD, "log_level", &type_log_level, CONF_OFF(log_level), -1, 0, 0,
     "info", "error, warn, info or debug (per-connection events are debug)",
     "debug"},
    {SEC_MORPHD, "log", &type_log_target, CONF_OFF(log_syslog), -1, 0, 0,
     "stderr",
     "stderr (one line per event, with a UTC timestamp) or syslog (which "
     "journald collects)", "syslog"},
    {SEC_MORPHD, "user", &type_string, CONF_OFF(user), -1, 0, 0, NULL,
     "when started as root: the user to switch to once every socket is "
     "bound; ignored when not started as root", "nobody"},
    {SEC_MORPHD, "group", &type_string, CONF_OFF(group), -1, 0, 0, NULL,
     "the group to switch to with `user`; default: the user's own group",
     "nogroup"},
    {SEC_MORPHD, "allow_root", &type_bool, CONF_OFF(allow_root), -1, 0, 0, "no",
     "yes lets morphd keep running as root when no `user` is set; otherwise "
     "it refuses to", "yes"},
    {SEC_MORPHD, "admin_socket", &type_string, CONF_OFF(admin_socket), -1, 0, 0,
     NULL,
     "a UNIX socket where `morph stats` reads the counters (mode 0660); "
     "default: none. Read at start-up only", "/run/morphd/admin.sock"},
    {SEC_MORPHD, "metrics_listen", &type_metrics_listen, CONF_OFF(metrics_listen),
     -1, 0, 0, NULL,
     "http://HOST:PORT where Prometheus scrapes /metrics (text format "
     "0.0.4): every counter of `morph stats` with a service label, the "
     "plugins' calls, failures, latency histograms and own counters, "
     "reloads. Served on a thread of its own; no authentication, so bind it "
     "to loopback or a private network. Default: none. Read at start-up "
     "only", "http://127.0.0.1:9464"},
    {SEC_MORPHD, "access_log", &type_access_log, CONF_OFF(access_log), -1, 0, 0,
     "off",
     "an absolute file name (appended to; reopened on SIGHUP, for "
     "logrotate), syslog, or off: one line per tcp, tls or unix connection "
     "when it closes (transport, client, service, bytes_in, bytes_out, "
     "messages, duration_ms, end). Written by a thread of its own: a slow, "
     "full or unwritable disk loses lines (counted, and reported once a "
     "minute), never service. Read at start-up only",
     "/var/log/morph/access.log"},
    {SEC_MORPHD, "access_log_format", &type_log_format,
     CONF_OFF(access_log_json), -1, 0, 0, "text",
     "text (KEY=VALUE after a UTC timestamp) or json (one object per line)",
     "json"},
    {SEC_MORPHD, "access_log_udp", &type_bool, CONF_OFF(access_log_udp), -1, 0,
     0, "no", "yes: a line per UDP datagram too (busy services: many lines)",
     "yes"},
    {SEC_MORPHD, "workers", &type_workers, CONF_OFF(workers), -1, 1, 256, "1",
     "event loops -- threads, or processes with isolation = process -- "
     "each with every endpoint on a socket of its own (SO_REUSEPORT); auto: "
     "one per CPU. Read at start-up only", "auto"},
    {SEC_MORPHD, "shutdown_timeout", &type_duration_ms,
     CONF_OFF(shutdown_timeout_ms), -1, 0, 3600000, "5s",
     "on SIGINT/SIGTERM, how long to wait for pending replies to be "
     "written before closing the remaining connections", "30s"},

    {SEC_MORPHD, "plugin_timeout", &type_duration_ms,
     CONF_OFF(plugin_timeout_ms), -1, 0, 3600000, "10s",
     "a plugin call on a worker (a transform, or a codec's decode or "
     "encode) that has not returned in this time (an "
     "endless loop, a call that blocks) makes morphd log the plugin and "
     "service and abort, so that systemd starts a fresh one; a stuck worker "
     "gets its share of new clients (SO_REUSEPORT) until then; with worker "
     "processes, a worker whose loop has not turned for this and 1 s more "
     "(stopped, stuck) is killed and replaced. 0: not timed", "2s"},

    {SEC_MORPHD, "isolation", &type_isolation, CONF_OFF(isolation_process), -1,
     0, 0, "thread",
     "thread: the workers are threads of one process (a plugin that "
     "crashes ends morphd, for systemd to restart); process: a main process "
     "holds the sockets and runs each worker as a process of its own, "
     "replaced at once when it dies (crash loops back off up to 5 s), with "
     "the counters summed in shared memory; SIGHUP starts new workers, and "
     "the old ones take no new clients and finish their connections. Read "
     "at start-up only", "process"},
    {SEC_MORPHD, "sandbox", &type_bool, CONF_OFF(sandbox), -1, 0, 0, "off",
     "on: once started, plugins -- and morphd -- reach only the plugin "
     "folders, the config file's and TLS files' folders and the system "
     "libraries (read), and the folders of the access log, admin socket and "
     "unix:// endpoints (write) (Landlock); make no outbound TCP connection; "
     "and cannot exec, fork, ptrace or make other system calls outside an "
     "allow-list (seccomp): such calls fail with EACCES or EPERM, logged. A "
     "kernel without them gets a warning. Read at start-up only", "on"},

    {SEC_SERVICE, "listen", &type_listen, SVC_OFF(listen), SVC_LINE(listen_line),
     0, 0, NULL,
     "required; endpoints tcp://HOST:PORT, udp://HOST:PORT, tls://HOST:PORT, "
     "http://HOST:PORT (HTTP/1.1: each POST's body is a message, whatever "
     "`framing` says but a `framing = stream` set in the section, which "
     "streams bodies of any length in pieces; and WebSocket; docs/http.md), "
     "https://HOST:PORT (the same over TLS, "
     "with the tls_* keys; ALPN http/1.1) (IPv6 as [::1]:PORT) and "
     "unix:///absolute/path (a stream socket), separated by spaces",
     "tcp://0.0.0.0:12000 udp://[::]:12000"},
    {SEC_SERVICE, "transform", &type_chain, SVC_OFF(chain),
     SVC_LINE(transform_line), 0, 0, NULL,
     "required; a plugin name or a chain such as `uppercase | reverse`, "
     "applied left to right", "uppercase | reverse"},
    {SEC_SERVICE, "framing", &type_framing, SVC_OFF(framing),
     SVC_LINE(framing_line), 0, 0, "stream",
     "how stream endpoints (tcp, tls, unix) cut their bytes into messages "
     "(udp:// keeps a message per datagram): `stream` transforms each chunk "
     "as it arrives (every plugin must be chunk-safe); `line` answers each "
     "\\n-terminated line; `length` each frame of a length field "
     "(length_field, length_offset, length_adjust); `netstring` each "
     "netstring (5:hello,); `delimiter` each run of bytes ended by "
     "`delimiter`; another name is a codec plugin's (NAME.so or NAME.lua "
     "on the plugin path: `resp` speaks Redis' protocol). Replies are "
     "framed the same way (docs/framing.md)",
     "line"},
    {SEC_SERVICE, "length_field", &type_length_field, SVC_OFF(length_field),
     SVC_LINE(length_field_line), 0, 0, "u32be",
     "framing = length: the length field's size and byte order (varint: "
     "protobuf's base-128, 1 to 10 bytes); it holds the payload's length, "
     "minus length_adjust", "u16le"},
    {SEC_SERVICE, "length_offset", &type_count, SVC_OFF(length_offset),
     SVC_LINE(length_offset_line),
     0, MORPHD_FRAME_HEAD_MAX, "0",
     "framing = length: header bytes before the length field (a reply "
     "gets its request's)", "2"},
    {SEC_SERVICE, "length_adjust", &type_signed, SVC_OFF(length_adjust),
     SVC_LINE(length_adjust_line),
     0, 64 * 1024 * 1024, "0",
     "framing = length: added to the field's value to give the payload's "
     "length; a field that counts itself and the bytes before it has "
     "-(length_offset + its size)", "-4"},
    {SEC_SERVICE, "delimiter", &type_delimiter, SVC_OFF(delimiter),
     SVC_LINE(delimiter_line), 0, 0, "\\0",
     "framing = delimiter: the bytes that end each message, and that each "
     "reply gets appended", "\\r\\n\\r\\n"},
    {SEC_SERVICE, "max_message", &type_size, SVC_OFF(max_message), -1, 1,
     64 * 1024 * 1024, "64K",
     "longest message accepted: a line, a frame's payload, a netstring, a "
     "delimited message (stream endpoints) or a datagram (UDP); a longer "
     "one closes its connection (a length a header announces is refused "
     "as soon as the header is read), a longer datagram is dropped", "4K"},
    {SEC_SERVICE, "http_max_header_size", &type_size,
     SVC_OFF(http_max_header_size), -1, 1024, 1024 * 1024, "16K",
     "http:// and https:// endpoints: the longest header block of a request (its fields, "
     "after the request line, which may be 8K); a longer one is answered "
     "431 and its connection closed", "32K"},
    {SEC_SERVICE, "http_request_timeout", &type_duration_ms,
     SVC_OFF(http_request_timeout_ms), -1, 0, 3600000, "10s",
     "http:// and https:// endpoints: a request whose line and header fields have not "
     "all arrived this long after the connection opened, or after its "
     "first byte, is answered 408 and its connection closed (slowloris); "
     "0: no limit (idle_timeout still applies)", "5s"},
    {SEC_SERVICE, "http_allow_origin", &type_origins,
     SVC_OFF(http_allow_origin), -1, 0, 0, NULL,
     "http:// and https:// endpoints: the origins (scheme://host[:port]) whose pages may "
     "call the service (CORS): a preflight (OPTIONS) from one is answered "
     "204 allowing POST, and a response to one carries "
     "Access-Control-Allow-Origin and Vary: Origin; * allows any page. "
     "Unset: none (a browser then lets only the service's own origin "
     "read the replies)", "https://app.example.com http://localhost:8080"},
    {SEC_SERVICE, "detect", &type_detect, SVC_OFF(detect_tls),
     SVC_LINE(detect_line), 0, 0,
     NULL,
     "tcp:// endpoints: tell protocols apart by a connection's first bytes "
     "and serve each: with `tls`, a TLS ClientHello is served as tls:// "
     "(the tls_* keys); with `http`, an HTTP/1 request line as http://; "
     "anything else with the service's framing. A first byte that rules "
     "them out (a plain client's `hello`) waits for nothing. Unset: none",
     "tls http"},
    {SEC_SERVICE, "detect_timeout", &type_duration_ms,
     SVC_OFF(detect_timeout_ms), -1, 1, 60000, "200ms",
     "detect: how long a connection whose first bytes could still be TLS "
     "or HTTP (`G`, `POS`...) waits for more before they go to the "
     "service's framing", "500ms"},
    {SEC_SERVICE, "max_pending_output", &type_size,
     SVC_OFF(max_pending_output), -1, 4096, 1024 * 1024 * 1024, "1M",
     "per stream connection (tcp, tls, unix): above this many unsent reply "
     "bytes morphd stops reading from the client until it drains to half",
     "256K"},
    {SEC_SERVICE, "max_connections", &type_count, SVC_OFF(max_connections), -1,
     0, 10000000, "10000",
     "open stream connections (tcp, tls, unix) of this service; beyond it "
     "a new connection is closed at once and counted as rejected; 0: no "
     "limit", "50000"},
    {SEC_SERVICE, "max_connections_per_source", &type_count,
     SVC_OFF(max_connections_per_source), -1, 0, 10000000, "0",
     "open stream connections from one client address (unix://: from one "
     "user); 0: no limit (the default, since many clients may share one "
     "address behind NAT)", "64"},
    {SEC_SERVICE, "udp_max_reply_ratio", &type_count,
     SVC_OFF(udp_max_reply_ratio), -1, 1, 1000, "4",
     "a UDP reply larger than this many times its datagram, in bytes on the "
     "wire (IP and UDP headers counted on both sides), is dropped (and "
     "counted), so morphd cannot amplify a spoofed request", "2"},
    {SEC_SERVICE, "unix_mode", &type_mode, SVC_OFF(unix_mode), -1, 0, 0777,
     "0660",
     "unix:// endpoints: the socket file's permissions (octal); connecting "
     "needs write permission", "0666"},
    {SEC_SERVICE, "unix_group", &type_group, SVC_OFF(unix_group), -1, 0, 0, NULL,
     "unix:// endpoints: the socket file's group, a name or number; "
     "default: morphd's own group", "morph-clients"},
    {SEC_SERVICE, "tls_certificate", &type_string, SVC_OFF(tls_certificate),
     SVC_LINE(tls_certificate_line), 0, 0, NULL,
     "tls:// and https:// endpoints (required by them): the PEM certificate chain, the "
     "server's certificate first; relative to the config file's folder",
     "/etc/morph/tls/cert.pem"},
    {SEC_SERVICE, "tls_key", &type_string, SVC_OFF(tls_key),
     SVC_LINE(tls_key_line), 0, 0, NULL,
     "tls:// and https://: the PEM private key of tls_certificate (default: in the same "
     "file)", "/etc/morph/tls/key.pem"},
    {SEC_SERVICE, "tls_client_ca", &type_string, SVC_OFF(tls_client_ca),
     SVC_LINE(tls_client_ca_line), 0, 0, NULL,
     "tls:// and https://: when set, clients must present a certificate signed by one of "
     "these PEM CA certificates (mutual TLS)", "/etc/morph/tls/clients-ca.pem"},
    {SEC_SERVICE, "tls_protocols", &type_tls_protocols, SVC_OFF(tls_protocols),
     SVC_LINE(tls_protocols_line), 0, 0, "TLSv1.2 TLSv1.3",
     "tls:// and https://: the protocol versions offered", "TLSv1.3"},
    {SEC_SERVICE, "tls_handshake_timeout", &type_duration_ms,
     SVC_OFF(tls_handshake_timeout_ms), -1, 1, 3600000, "10s",
     "tls:// and https://: a client that has not completed its handshake in this time is "
     "closed (and counted)", "5s"},
    {SEC_SERVICE, "tls_ciphers", &type_string, SVC_OFF(tls_ciphers),
     SVC_LINE(tls_ciphers_line), 0, 0, NULL,
     "tls:// and https://: OpenSSL cipher list for TLSv1.2 (TLSv1.3's suites are "
     "OpenSSL's defaults); default: OpenSSL's", "ECDHE+AESGCM:ECDHE+CHACHA20"},
    {SEC_SERVICE, "tls_groups", &type_string, SVC_OFF(tls_groups),
     SVC_LINE(tls_groups_line), 0, 0, NULL,
     "tls:// and https://: key exchange groups, in order of preference; default: "
     "OpenSSL's", "X25519:P-256"},
    {SEC_SERVICE, "proxy_protocol", &type_proxy_protocol,
     SVC_OFF(proxy_protocol), SVC_LINE(proxy_protocol_line), 0, 0, "off",
     "tcp://, tls:// and udp:// endpoints behind a load balancer: every "
     "connection (and every datagram) starts with a PROXY protocol header "
     "of this version (v1, v2, or any; datagrams take v2 only) saying who "
     "the client is, and that address is what limits, rates, logs, stats "
     "and plugins see. Needs proxy_from; a connection from elsewhere, or "
     "without a valid header, is refused and counted. unix:// endpoints "
     "take no header", "v2"},
    {SEC_SERVICE, "proxy_from", &type_proxy_from, SVC_OFF(proxy_from), -1, 0, 0,
     NULL,
     "with proxy_protocol: the balancers' addresses or networks (CIDR), "
     "separated by spaces; no one else may connect", "10.0.0.0/8 fd00::/8"},
    {SEC_SERVICE, "proxy_timeout", &type_duration_ms, SVC_OFF(proxy_timeout_ms),
     -1, 1, 3600000, "5s",
     "with proxy_protocol: a connection whose header has not arrived in this "
     "time is closed (and counted)", "2s"},
    {SEC_SERVICE, "rate_per_source", &type_rate, SVC_OFF(rate_per_source), -1,
     0, 1000000, "off",
     "new stream connections plus datagrams accepted from one client address "
     "(after PROXY; unix://: one user) a second, as a token bucket of "
     "rate_burst; beyond it a connection is closed at once and a datagram "
     "dropped, and both counted (rate_limited). Up to 65,536 sources are "
     "tracked at once (1.5 MiB)", "20/s"},
    {SEC_SERVICE, "rate_burst", &type_count, SVC_OFF(rate_burst), -1, 1,
     10000000, NULL,
     "with rate_per_source: how many may come at once after a quiet spell; "
     "default: the rate's N", "100"},
    {SEC_SERVICE, "udp_receive_buffer", &type_size, SVC_OFF(udp_receive_buffer),
     -1, 0, 1024 * 1024 * 1024, "0",
     "udp:// endpoints: the socket's receive buffer (SO_RCVBUF), which holds "
     "datagrams while morphd is busy: a larger one loses fewer in a burst. "
     "0: the kernel's default. Above net.core.rmem_max only when started as "
     "root (SO_RCVBUFFORCE); morphd logs what it got when the kernel gives "
     "less", "8M"},
    {SEC_SERVICE, "idle_timeout", &type_duration_ms, SVC_OFF(idle_timeout_ms),
     -1, 0, 86400000, "300s",
     "a stream connection (tcp, tls, unix) that sends nothing for this "
     "long is closed (its "
     "pending replies are written first); 0: never", "60s"},
};

const size_t morphd_n_keys = sizeof morphd_key_table / sizeof *morphd_key_table;
/* reader.c records which keys were given as a bit per row in an unsigned
 * long (`seen`) */
_Static_assert(sizeof morphd_key_table / sizeof *morphd_key_table <= 64,
               "more keys than bits in seen");

/* The accepted values of a row, for the reference. */
static void describe_range(const key_row_t *row, char *buf, size_t size)
{
    switch (row->type->range) {
    case RANGE_SIZE:
        snprintf(buf, size, "%zu..%zu bytes (B, K, M, G suffixes)", row->min,
                 row->max);
        break;
    case RANGE_COUNT:
        snprintf(buf, size, "%zu..%zu", row->min, row->max);
        break;
    case RANGE_DURATION:
        snprintf(buf, size, "%zums..%zums (ms, s, m, h)", row->min, row->max);
        break;
    case RANGE_SIGNED:
        snprintf(buf, size, "-%zu..%zu", row->max, row->max);
        break;
    case RANGE_WORKERS:
        snprintf(buf, size, "auto, %zu..%zu", row->min, row->max);
        break;
    case RANGE_TEXT:
        snprintf(buf, size, "%s", row->type->values);
        break;
    }
}

void morphd_config_print_reference(FILE *out, morphd_ref_format_t format)
{
    const char *sections[] = {"", "[morphd]", "[service NAME]"};
    char range[128];
    bool markdown = format == MORPHD_REF_MARKDOWN;
    if (format == MORPHD_REF_MAN) {
        section_kind_t at = SEC_NONE;
        for (size_t i = 0; i < morphd_n_keys; i++) {
            const key_row_t *row = &morphd_key_table[i];
            describe_range(row, range, sizeof range);
            if (row->section != at) {
                fprintf(out, ".SH %s KEYS\n", sections[row->section]);
                at = row->section;
            }
            fprintf(out, ".TP\n.B %s\n", row->name);
            morphd_roff_puts(out, row->help);
            fputs(".\nDefault: ", out);
            morphd_roff_puts(out, row->def ? row->def : "none");
            fputs("; values: ", out);
            morphd_roff_puts(out, range);
            fputs("; e.g.\n.BR \"", out);
            morphd_roff_puts(out, row->name);
            fputs(" = ", out);
            morphd_roff_puts(out, row->example);
            fputs("\" .\n", out);
        }
        fputs(".TP\n.IB plugin . key\nAn option for a plugin of the service's "
              "transform, e.g.\n.BR \"reverse.unit = codepoint\" ;\nthe "
              "options of the plugins in the plugin folder follow.\n", out);
        return;
    }
    if (markdown)
        fprintf(out, "| section | key | default | values | example | meaning |\n"
                     "|---|---|---|---|---|---|\n");
    section_kind_t last = SEC_NONE;
    for (size_t i = 0; i < morphd_n_keys; i++) {
        const key_row_t *row = &morphd_key_table[i];
        describe_range(row, range, sizeof range);
        if (markdown) {
            fprintf(out, "| `%s` | `%s` | %s%s%s | %s | `%s = %s` | ",
                    sections[row->section], row->name, row->def ? "`" : "",
                    row->def ? row->def : "none", row->def ? "`" : "", range,
                    row->name, row->example);
            for (const char *h = row->help; *h; h++) /* keep the table whole */
                fputs(*h == '|' ? "\\|" : (char[]){*h, 0}, out);
            fputs(" |\n", out);
            continue;
        }
        if (row->section != last) {
            fprintf(out, "%s%s\n", last == SEC_NONE ? "" : "\n",
                    sections[row->section]);
            last = row->section;
        }
        fprintf(out, "  %-26s default: %s; values: %s\n  %-26s %s\n  %-26s "
                "e.g. %s = %s\n",
                row->name, row->def ? row->def : "(none)", range, "", row->help,
                "", row->name, row->example);
    }
    if (markdown)
        fprintf(out, "| `[service NAME]` | `PLUGIN.KEY` | none | per plugin | "
                     "`reverse.unit = codepoint` | an option for a plugin of "
                     "this service's transform |\n");
    else
        fprintf(out, "  %-26s %s\n", "PLUGIN.KEY",
                "an option for a plugin of this service's transform, e.g. "
                "reverse.unit = codepoint");
}
