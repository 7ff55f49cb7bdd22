/*
 * detect.h -- what a connection's first bytes are (detect = tls http on
 * tcp:// endpoints): a TLS ClientHello, an HTTP/1 request line, anything
 * else, or a prefix that may still be one of them. Pure computation on
 * bytes, as the codecs are; its fuzz target is tests/fuzz/fuzz_detect.c.
 */
#ifndef MORPHD_DETECT_H
#define MORPHD_DETECT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum morphd_detect {
    MORPHD_DETECT_PLAIN, /* the service's framing */
    MORPHD_DETECT_TLS,   /* a TLS record of a handshake: tls:// */
    MORPHD_DETECT_HTTP,  /* a request line's method and space: http:// */
    MORPHD_DETECT_WAIT,  /* a prefix of one of those: more bytes tell */
} morphd_detect_t;

/* The longest prefix that can be WAIT: "OPTIONS" and "CONNECT" without
 * their space. */
#define MORPHD_DETECT_MAX_WAIT 7

/* What p[0, n) (n >= 1) is, telling TLS and HTTP apart only when asked
 * (`tls`, `http`). A verdict other than WAIT is final: more bytes after
 * these never change it. */
morphd_detect_t morphd_detect(const unsigned char *p, size_t n, bool tls,
                              bool http);

#endif
