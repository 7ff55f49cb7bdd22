/*
 * endpoint.h -- parsing of listen endpoints: tcp://HOST:PORT,
 * udp://HOST:PORT, tls://HOST:PORT, http://HOST:PORT, with IPv6 hosts in
 * brackets
 * (udp://[::1]:12000), and unix:///absolute/path (a stream socket).
 */
#ifndef MORPHD_ENDPOINT_H
#define MORPHD_ENDPOINT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef enum morphd_transport {
    MORPHD_TCP,
    MORPHD_UDP,
    MORPHD_UNIX,
    MORPHD_TLS,
    MORPHD_HTTP,  /* TCP, each connection served by the http codec */
    MORPHD_HTTPS, /* the same over TLS (tls://'s keys; ALPN http/1.1) */
} morphd_transport_t;

/* Over TLS: tls:// and https://. */
static inline int morphd_transport_is_tls(morphd_transport_t t)
{
    return t == MORPHD_TLS || t == MORPHD_HTTPS;
}

/* Served by the http codec: http:// and https://. */
static inline int morphd_transport_is_http(morphd_transport_t t)
{
    return t == MORPHD_HTTP || t == MORPHD_HTTPS;
}

/* The longest text of an endpoint: "unix://" and a 107-byte path. */
#define MORPHD_ENDPOINT_TEXT 128

typedef struct morphd_endpoint {
    morphd_transport_t transport;
    /* AF_INET or AF_INET6 with the port set; AF_UNIX with the path */
    struct sockaddr_storage addr;
    char text[MORPHD_ENDPOINT_TEXT]; /* canonical form, for logs */
} morphd_endpoint_t;

/* Parses one endpoint. HOST must be a numeric IPv4 or IPv6 address, or
 * "localhost" (127.0.0.1) or "*" (0.0.0.0). PORT is 0..65535; 0 asks the
 * kernel for an ephemeral port. A unix:// path is absolute and fits in
 * sun_path (107 bytes). Returns 0, or -1 with a reason in err. */
int morphd_endpoint_parse(const char *text, morphd_endpoint_t *ep, char *err,
                          size_t err_size);

const char *morphd_transport_name(morphd_transport_t t);

/* Whether the transport is a byte stream (tcp, unix) rather than
 * datagrams. */
static inline int morphd_transport_is_stream(morphd_transport_t t)
{
    return t != MORPHD_UDP;
}

/* The length of a socket address of any family this server sees. */
static inline size_t morphd_sockaddr_len(const struct sockaddr *sa)
{
    switch (sa->sa_family) {
    case AF_INET6:
        return sizeof(struct sockaddr_in6);
    case AF_UNIX:
        return sizeof(struct sockaddr_un);
    default:
        return sizeof(struct sockaddr_in);
    }
}

/* The port in host byte order; 0 for unix://. */
int morphd_endpoint_port(const morphd_endpoint_t *ep);

/* Whether the open socket of endpoint `have`, serving service
 * `have_service`, can be handed over to endpoint `want` of service
 * `want_service` by a reload: the same transport and configured text; a
 * port-0 endpoint means "any free port", so only within one service. */
bool morphd_endpoint_hands_over(const morphd_endpoint_t *have,
                                const char *have_service,
                                const morphd_endpoint_t *want,
                                const char *want_service);

/* Formats "HOST:PORT" ("[HOST]:PORT" for IPv6) for an AF_INET or
 * AF_INET6 address into buf. */
void morphd_sockaddr_format(const struct sockaddr *addr, char *buf,
                            size_t size);

/* The 16-byte key of an AF_INET or AF_INET6 address, IPv4 as v4-mapped
 * IPv6, so that one comparison serves both families; zeros for others.
 * (Inline: the engine library, which has no endpoints, uses it too.) */
static inline void morphd_sockaddr_key(const struct sockaddr *addr,
                                       unsigned char key[16])
{
    memset(key, 0, 16);
    if (addr->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
    } else if (addr->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    }
}

/* Formats "tcp://HOST:PORT" for an address into buf ("unix:///path" for
 * AF_UNIX; "unix://" for an unnamed one, as clients are). */
void morphd_endpoint_format(morphd_transport_t t,
                            const struct sockaddr *addr, char *buf,
                            size_t size);

/* A network of proxy_from: an address and a prefix length. IPv4 is kept
 * as v4-mapped IPv6, so one comparison serves both families. */
typedef struct morphd_cidr {
    unsigned char addr[16];
    unsigned bits; /* 0..128 */
} morphd_cidr_t;

/* Parses "10.0.0.0/8", "fd00::/8", or a single address. Returns 0, or -1
 * with the reason in err. Host bits set under the mask are an error (a
 * typo more often than intended). */
int morphd_cidr_parse(const char *text, morphd_cidr_t *c, char *err,
                      size_t err_size);

/* Whether `sa` (AF_INET or AF_INET6; a v4-mapped IPv6 address counts as
 * IPv4) is in one of the n networks. */
bool morphd_cidr_match(const morphd_cidr_t *nets, size_t n,
                       const struct sockaddr *sa);

/* metrics_listen: parses "http://HOST:PORT" (HOST numeric, [v6] in brackets, or
 * localhost). Returns 0, or -1 with the reason in err. */
int morphd_metrics_parse_listen(const char *text, struct sockaddr_storage *ss,
                                char *err, size_t err_size);

/* unix_group: the group id of a name or number; -1 when there is none. */
long morphd_unix_group_id(const char *group);

#endif
