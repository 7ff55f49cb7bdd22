/*
 * config.c -- INI parsing (with inih) into morphd_config_t. Every key is one
 * row of `key_table`: its section, name, setter, default and help. Parsing,
 * defaults, "did you mean" suggestions and `morphd --help-config` are all
 * driven by that table, so adding a key is adding a row.
 */
#include "conf/config.h"

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

typedef enum section_kind {
    SEC_NONE,    /* before any section header */
    SEC_MORPHD,  /* [morphd] */
    SEC_SERVICE, /* [service NAME] */
    SEC_UNKNOWN, /* an unknown header: its keys are not reported again */
} section_kind_t;

typedef struct key_row key_row_t;
/* Parses `value` into the field of `obj` the row names. Returns 0, or -1
 * with a short phrase in err (the caller adds file, line and key). */
typedef int (*setter_fn)(const key_row_t *row, void *obj, const char *value,
                         char *err, size_t err_size);

/* What kind of value a key takes: how it is parsed (in the grammar of
 * base/value.h, which plugin options share) and how its accepted values
 * are described in --help-config and morphd.ini(5). */
typedef enum range_kind {
    RANGE_TEXT,     /* `values` says what is accepted */
    RANGE_SIZE,     /* min..max bytes */
    RANGE_COUNT,    /* min..max */
    RANGE_DURATION, /* min..max ms */
    RANGE_WORKERS,  /* auto, min..max */
} range_kind_t;

typedef struct key_type {
    setter_fn set;
    range_kind_t range;
    const char *values; /* RANGE_TEXT */
} key_type_t;

struct key_row {
    section_kind_t section;
    const char *name;
    const key_type_t *type;
    size_t offset;      /* of the field in its section struct */
    long line_offset;   /* of an `int` that records the line, or -1 */
    size_t min, max;    /* bounds for numbers */
    const char *def;    /* default as INI text; NULL when required/none */
    const char *help;
    const char *example;
};

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

static int set_framing(const key_row_t *row, void *obj, const char *value,
                       char *err, size_t err_size)
{
    morphd_framing_t *field = FIELD(obj, row, morphd_framing_t);
    if (strcmp(value, "stream") == 0)
        *field = MORPHD_FRAMING_STREAM;
    else if (strcmp(value, "line") == 0)
        *field = MORPHD_FRAMING_LINE;
    else {
        snprintf(err, err_size, "'%s' is not a framing (stream or line)",
                 value);
        return -1;
    }
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
    if (!off && (end == value || errno != 0 || strcmp(end, "/s") != 0 ||
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
static const key_type_t type_framing = {set_framing, RANGE_TEXT, "stream, line"};
static const key_type_t type_group = {set_group, RANGE_TEXT, "text"};
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

static const key_row_t key_table[] = {
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
     "a plugin call on a worker that has not returned in this time (an "
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
     "required; endpoints tcp://HOST:PORT, udp://HOST:PORT, tls://HOST:PORT "
     "(IPv6 as [::1]:PORT) and unix:///absolute/path (a stream socket), "
     "separated by spaces",
     "tcp://0.0.0.0:12000 udp://[::]:12000"},
    {SEC_SERVICE, "transform", &type_chain, SVC_OFF(chain),
     SVC_LINE(transform_line), 0, 0, NULL,
     "required; a plugin name or a chain such as `uppercase | reverse`, "
     "applied left to right", "uppercase | reverse"},
    {SEC_SERVICE, "framing", &type_framing, SVC_OFF(framing),
     SVC_LINE(framing_line), 0, 0, "stream",
     "stream endpoints (tcp, tls, unix) only: `stream` transforms each "
     "chunk as it arrives (every plugin must be chunk-safe); `line` "
     "answers each \\n-terminated line", "line"},
    {SEC_SERVICE, "max_message", &type_size, SVC_OFF(max_message), -1, 1,
     64 * 1024 * 1024, "64K",
     "longest line (line framing) or datagram (UDP) accepted; longer TCP "
     "lines close the connection, longer datagrams are dropped", "4K"},
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
     "tls:// endpoints (required by them): the PEM certificate chain, the "
     "server's certificate first; relative to the config file's folder",
     "/etc/morph/tls/cert.pem"},
    {SEC_SERVICE, "tls_key", &type_string, SVC_OFF(tls_key),
     SVC_LINE(tls_key_line), 0, 0, NULL,
     "tls://: the PEM private key of tls_certificate (default: in the same "
     "file)", "/etc/morph/tls/key.pem"},
    {SEC_SERVICE, "tls_client_ca", &type_string, SVC_OFF(tls_client_ca),
     SVC_LINE(tls_client_ca_line), 0, 0, NULL,
     "tls://: when set, clients must present a certificate signed by one of "
     "these PEM CA certificates (mutual TLS)", "/etc/morph/tls/clients-ca.pem"},
    {SEC_SERVICE, "tls_protocols", &type_tls_protocols, SVC_OFF(tls_protocols),
     SVC_LINE(tls_protocols_line), 0, 0, "TLSv1.2 TLSv1.3",
     "tls://: the protocol versions offered", "TLSv1.3"},
    {SEC_SERVICE, "tls_handshake_timeout", &type_duration_ms,
     SVC_OFF(tls_handshake_timeout_ms), -1, 1, 3600000, "10s",
     "tls://: a client that has not completed its handshake in this time is "
     "closed (and counted)", "5s"},
    {SEC_SERVICE, "tls_ciphers", &type_string, SVC_OFF(tls_ciphers),
     SVC_LINE(tls_ciphers_line), 0, 0, NULL,
     "tls://: OpenSSL cipher list for TLSv1.2 (TLSv1.3's suites are "
     "OpenSSL's defaults); default: OpenSSL's", "ECDHE+AESGCM:ECDHE+CHACHA20"},
    {SEC_SERVICE, "tls_groups", &type_string, SVC_OFF(tls_groups),
     SVC_LINE(tls_groups_line), 0, 0, NULL,
     "tls://: key exchange groups, in order of preference; default: "
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

#define N_KEYS (sizeof key_table / sizeof *key_table)
/* which keys were given is a bit per row in an unsigned long (`seen`) */
_Static_assert(N_KEYS <= 64, "more keys than bits in seen");

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
    for (size_t i = 0; i < N_KEYS; i++) {
        if (key_table[i].section != section)
            continue;
        size_t d = morphd_edit_distance(name, key_table[i].name);
        if (d < best_d) {
            best_d = d;
            best = key_table[i].name;
        }
    }
    return best;
}

static void apply_defaults(parse_state_t *st, section_kind_t section,
                           void *obj)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_row_t *row = &key_table[i];
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
    for (size_t i = 0; i < N_KEYS; i++)
        if (key_table[i].section == section &&
            strcmp(key_table[i].name, name) == 0)
            return &key_table[i];
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
    unsigned long *seen;

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
    unsigned long bit = 1ul << (row - key_table);
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
    return row != NULL && (seen & (1ul << (row - key_table)));
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
        if (key_given(svc->seen, SEC_SERVICE, "rate_burst") &&
            svc->rate_per_source == 0)
            CONFIG_ERROR(st, svc->line, "service '%s': rate_burst needs "
                         "rate_per_source", svc->name);
        for (size_t j = 0; j < svc->opts.n; j++) {
            const morphd_plugin_opt_t *o = &svc->opts.v[j];
            bool used = false;
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

    int rc = ini_parse_stream(read_line, st, on_key, st);
    if (rc > 0)
        morphd_errors_add(st->errs,
                          "%s:%d: syntax error: expected [section] or "
                          "KEY = VALUE", st->name, rc);
    else if (rc == -2)
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
        free(svc->tls_certificate);
        free(svc->tls_key);
        free(svc->tls_client_ca);
        free(svc->tls_ciphers);
        free(svc->tls_groups);
        free(svc->proxy_from);
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
        if (conf->listen[i].transport == MORPHD_TLS)
            return true;
    return false;
}

const morphd_service_conf_t *morphd_config_find_service(
    const morphd_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_services; i++)
        if (strcmp(cfg->services[i].name, name) == 0)
            return &cfg->services[i];
    return NULL;
}

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
        for (size_t i = 0; i < N_KEYS; i++) {
            const key_row_t *row = &key_table[i];
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
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_row_t *row = &key_table[i];
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
