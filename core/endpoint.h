/*
 * endpoint.h -- parsing of listen endpoints: tcp://HOST:PORT,
 * udp://HOST:PORT, with IPv6 hosts in brackets (udp://[::1]:12000).
 */
#ifndef MORPHD_ENDPOINT_H
#define MORPHD_ENDPOINT_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

typedef enum morphd_transport {
    MORPHD_TCP,
    MORPHD_UDP,
} morphd_transport_t;

typedef struct morphd_endpoint {
    morphd_transport_t transport;
    struct sockaddr_storage addr; /* AF_INET or AF_INET6, port set */
    char text[80];                /* canonical form, for logs */
} morphd_endpoint_t;

/* Parses one endpoint. HOST must be a numeric IPv4 or IPv6 address, or
 * "localhost" (127.0.0.1) or "*" (0.0.0.0). PORT is 0..65535; 0 asks the
 * kernel for an ephemeral port. Returns 0, or -1 with a reason in err. */
int morphd_endpoint_parse(const char *text, morphd_endpoint_t *ep, char *err,
                          size_t err_size);

const char *morphd_transport_name(morphd_transport_t t);

/* The port in host byte order. */
int morphd_endpoint_port(const morphd_endpoint_t *ep);

/* Formats "tcp://HOST:PORT" for an address into buf. */
void morphd_endpoint_format(morphd_transport_t t,
                            const struct sockaddr *addr, char *buf,
                            size_t size);

#endif
