/*
 * config.h -- morphd's configuration: the INI file parsed into plain
 * structs, checked against one table of known keys (keys.c, read by reader.c). Loading
 * collects every error as "FILE:LINE: message" so an operator fixes a file
 * in one pass. Plugins are not loaded here: server.c does that, so this
 * module stays testable without any .so files.
 *
 * Errors in this layer (conf/): every problem goes into a morphd_errors_t
 * as "FILE:LINE: message", and the call returns 0 or -1 once it has looked
 * at everything.
 */
#ifndef MORPHD_CONFIG_H
#define MORPHD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/endpoint.h"
#include "base/errors.h"
#include "base/roff.h"
#include "base/spec.h"
#include "codec/codec.h"

/* The longest config line, its ending not counted: room for a listen
 * line of a few thousand endpoints. Longer lines are errors, never cut. */
#define MORPHD_CONFIG_MAX_LINE 65536

#define MORPHD_TLS_V1_2 1u
#define MORPHD_TLS_V1_3 2u

/* proxy_protocol = off | v1 | v2 | any: the versions accepted, a mask */
#define MORPHD_PROXY_V1 1u
#define MORPHD_PROXY_V2 2u
#define MORPHD_PROXY_ANY (MORPHD_PROXY_V1 | MORPHD_PROXY_V2)

typedef struct morphd_service_conf {
    char *name;
    int line; /* of the [service NAME] header */

    morphd_endpoint_t *listen;
    size_t n_listen;
    int listen_line;

    char **chain; /* plugin names, applied left to right */
    size_t n_chain;
    int transform_line;

    /* framing = NAME and its keys; `codec` is made of them once the
     * section is read (and again after --set), for the stream endpoints
     * (udp:// keeps one message per datagram) */
    const morphd_codec_ops_t *framing;
    char *framing_plugin; /* framing = NAME of a codec plugin; else NULL */
    int framing_line;
    morphd_length_kind_t length_field;
    int length_field_line;
    size_t length_offset;
    int length_offset_line;
    int64_t length_adjust;
    int length_adjust_line;
    unsigned char delimiter[MORPHD_FRAME_TAIL_MAX];
    size_t delimiter_len;
    int delimiter_line;
    morphd_codec_t codec;
    size_t max_message;        /* bytes; longest line or datagram */
    size_t max_pending_output; /* bytes; TCP backpressure high-water mark */
    size_t http_max_header_size; /* http://: a request's header block, bytes */
    unsigned http_request_timeout_ms; /* http://: 408 past it; 0: none */
    char **http_allow_origin;  /* http://: CORS origins ("*": any) */
    size_t n_http_allow_origin;
    /* detect: what its tcp:// endpoints tell apart by a connection's
     * first bytes (a TLS ClientHello, an HTTP request line), and how long
     * they wait on a prefix that could still be either */
    bool detect_tls, detect_http;
    int detect_line;
    unsigned detect_timeout_ms;
    size_t max_connections;    /* open TCP connections; 0: no limit */
    size_t max_connections_per_source; /* per client address; 0: no limit */
    unsigned idle_timeout_ms;  /* close silent TCP connections; 0: never */
    size_t udp_max_reply_ratio; /* a UDP reply is at most this times its datagram */
    unsigned unix_mode;        /* unix://: the socket file's permissions */
    char *unix_group;          /* unix://: its group; NULL: morphd's */

    /* tls:// (tls.c): file paths as written, and the lines they are on */
    char *tls_certificate;
    int tls_certificate_line;
    char *tls_key;
    int tls_key_line;
    char *tls_client_ca;       /* NULL: clients are not asked for one */
    int tls_client_ca_line;
    unsigned tls_protocols;    /* MORPHD_TLS_V1_2 | MORPHD_TLS_V1_3 */
    int tls_protocols_line;
    unsigned tls_handshake_timeout_ms;
    char *tls_ciphers;         /* NULL: OpenSSL's defaults */
    int tls_ciphers_line;
    char *tls_groups;
    int tls_groups_line;

    /* PROXY protocol (proxy_protocol.h): the versions accepted (0: off;
     * MORPHD_PROXY_*), and the peers allowed to send a header */
    unsigned proxy_protocol;
    int proxy_protocol_line;
    struct morphd_cidr *proxy_from;
    size_t n_proxy_from;
    unsigned proxy_timeout_ms;

    double rate_per_source;    /* connections + datagrams a second; 0: off */
    size_t rate_burst;         /* 0: rate_per_source (at least 1) */
    size_t udp_receive_buffer; /* SO_RCVBUF of udp:// sockets; 0: the kernel's */

    morphd_plugin_opts_t opts; /* PLUGIN.KEY = VALUE lines */

    unsigned long seen; /* keys given, by table row; finds duplicates */
} morphd_service_conf_t;

typedef struct morphd_config {
    char *path; /* file name used in messages */
    char *plugin_dir; /* NULL: the default (see server.c) */
    char *admin_socket; /* NULL: no admin endpoint */
    char *metrics_listen; /* http://HOST:PORT for Prometheus; NULL: none */
    char *access_log;     /* an absolute file name, "syslog", NULL: off */
    int access_log_json;  /* access_log_format = json */
    int access_log_udp;   /* a line per datagram too */
    char *user;         /* drop root to this user after binding */
    char *group;        /* and this group (default: the user's) */
    int allow_root;     /* keep running as root when no user is set */
    int log_syslog;     /* log = syslog */
    unsigned workers;   /* event-loop threads; 0: one per CPU ("auto") */
    int log_level;
    unsigned shutdown_timeout_ms;
    unsigned plugin_timeout_ms; /* the watchdog's; 0: calls are not timed */
    int sandbox;        /* Landlock and seccomp around plugins (sandbox.h) */
    int isolation_process; /* isolation = process (supervisor.h) */
    unsigned long seen;

    morphd_service_conf_t *services;
    size_t n_services;
} morphd_config_t;

/* Whether the file (or --set) gave `svc` the service key `name`, rather
 * than leaving it at its default. */
bool morphd_service_conf_given(const morphd_service_conf_t *svc,
                               const char *name);

/* Parses the INI file at `path`. Returns 0, or -1 with every problem added
 * to `errs`. On error `cfg` is still safe to free. */
int morphd_config_load_file(const char *path, morphd_config_t *cfg,
                            morphd_errors_t *errs);

/* Parses INI text; `name` is used as the file name in messages. */
int morphd_config_load_string(const char *text, const char *name,
                              morphd_config_t *cfg, morphd_errors_t *errs);

/* Applies one command-line override "SECTION.KEY=VALUE" to a loaded
 * configuration: SECTION is `morphd` or a service's name, KEY any key of
 * that section, or PLUGIN.KEY for a plugin option. Returns 0, or -1 with
 * the reason in errs. */
int morphd_config_override(morphd_config_t *cfg, const char *spec,
                           morphd_errors_t *errs);

/* What morphd runs on: the file at `path` (NULL: the built-in default),
 * then each "SECTION.KEY=VALUE" override in order. Returns 0, or -1 with
 * the errors (and nothing left to free in cfg). */
int morphd_config_read(const char *path, const char *const *overrides,
                       size_t n_overrides, morphd_config_t *cfg,
                       morphd_errors_t *errs);

void morphd_config_free(morphd_config_t *cfg);

/* The plugin folder `cfg` names (a relative one resolved against the
 * config file's folder), or `fallback` when it names none. Allocated;
 * NULL when out of memory. */
char *morphd_config_plugin_dir(const morphd_config_t *cfg,
                               const char *fallback);

/* Whether the service listens on a stream endpoint (tcp, tls, unix);
 * on a tls:// one. */
bool morphd_service_conf_has_stream(const morphd_service_conf_t *conf);
/* Whether it listens on an http:// endpoint. */
bool morphd_service_conf_has_http(const morphd_service_conf_t *conf);
/* Whether an endpoint of it uses its framing: tcp, tls or unix (http://
 * has its own). */
bool morphd_service_conf_has_framed(const morphd_service_conf_t *conf);
/* Whether its http:// and https:// endpoints stream bodies in pieces: it
 * says framing = stream (set, not the default: a service that says
 * nothing gets whole bodies with Content-Length there). */
bool morphd_service_conf_streams_http(const morphd_service_conf_t *conf);
/* Whether its tcp:// endpoints tell protocols apart (detect). */
bool morphd_service_conf_detects(const morphd_service_conf_t *conf);
bool morphd_service_conf_has_tls(const morphd_service_conf_t *conf);

/* The service named `name`, or NULL. */
const morphd_service_conf_t *morphd_config_find_service(
    const morphd_config_t *cfg, const char *name);

/* Prints the reference of all keys (section, name, default, values,
 * example, help). */
void morphd_config_print_reference(FILE *out, morphd_ref_format_t format);

/* The built-in configuration used when morphd runs without -c: the same
 * text as the packaged config/morphd.ini. */
extern const char morphd_default_config[];

#endif
