/*
 * proxy_protocol.h -- the PROXY protocol header a load balancer puts before
 * a client's bytes to say who the client is (HAProxy's specification,
 * versions 1 and 2: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt).
 * A pure parser, with no I/O, so that the stream transports, UDP and the
 * fuzzer share it; and the network masks of `proxy_from`.
 */
#ifndef MORPHD_PROXY_PROTOCOL_H
#define MORPHD_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/endpoint.h"
#include <sys/socket.h>

/* MORPHD_PROXY_V1, _V2, _ANY: the versions accepted (config.h) */
#include "conf/config.h"

/* The longest header accepted: version 1's limit is the specification's
 * (107 bytes with its CRLF); version 2 allows 16 + 65535, which no
 * balancer sends -- morphd takes the 16-byte preamble and up to 2,048
 * bytes of addresses and TLVs together (HAProxy's unique-id, SSL and ALPN
 * TLVs fit easily). */
#define MORPHD_PROXY_V1_MAX 107
#define MORPHD_PROXY_V2_MAX (16 + 2048)
#define MORPHD_PROXY_MAX MORPHD_PROXY_V2_MAX

typedef enum morphd_proxy_status {
    MORPHD_PROXY_DONE = 1,      /* a whole header: see morphd_proxy_hdr_t */
    MORPHD_PROXY_MORE = 0,      /* a valid beginning: more bytes needed */
    MORPHD_PROXY_BAD = -1,      /* not a header, or a malformed one */
    MORPHD_PROXY_TOO_LONG = -2, /* longer than MORPHD_PROXY_*_MAX */
    MORPHD_PROXY_FAMILY = -3,   /* an address family or protocol that does
                                   not fit (TCP4 with an IPv6 address, a
                                   datagram header on a stream, AF_UNIX) */
} morphd_proxy_status_t;

typedef struct morphd_proxy_hdr {
    size_t len;   /* bytes of the header: the client's data follows */
    int version;  /* 1 or 2 */
    /* No addresses: a v2 LOCAL command (the balancer's own health
     * check), v1 UNKNOWN, or v2 AF_UNSPEC. The connection's own addresses
     * stand. */
    bool local;
    struct sockaddr_storage src, dst; /* the client's, and what it reached */
} morphd_proxy_hdr_t;

/* Parses the header at the start of `p` (n bytes so far), of a version in
 * the mask `versions`, for a connection of `socktype` (SOCK_STREAM or
 * SOCK_DGRAM: a v2 header must say the same). Returns a status; on
 * anything but DONE and MORE, `why` says what was wrong. */
morphd_proxy_status_t morphd_proxy_parse(const unsigned char *p, size_t n,
                                         unsigned versions, int socktype,
                                         morphd_proxy_hdr_t *h, char *why,
                                         size_t why_size);

/* Writes a version 2 PROXY header (no TLVs) for `src` and `dst` (both of
 * one family, AF_INET or AF_INET6), or a LOCAL one when src is NULL.
 * Returns its length, or 0 when it does not fit in `size`. For clients
 * (morph --proxy), tests and the fuzzer's round trip. */
size_t morphd_proxy_write_v2(unsigned char *out, size_t size,
                             const struct sockaddr *src,
                             const struct sockaddr *dst, int socktype);


#endif
