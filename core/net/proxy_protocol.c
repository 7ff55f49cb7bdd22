/*
 * proxy_protocol.c -- the PROXY protocol header parser and proxy_from's
 * networks (proxy_protocol.h). The parser is strict: what HAProxy, nginx
 * and other balancers send is accepted, and anything looser is refused,
 * since a lenient parser in front of per-source limits is an address
 * spoofing tool.
 */
#include "net/proxy_protocol.h"

#include "base/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const unsigned char v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

#define WHY(...) (snprintf(why, why_size, __VA_ARGS__))

/* Whether the n bytes are a beginning of sig (of sig_len bytes) or start
 * with all of it. */
static bool starts_like(const unsigned char *p, size_t n, const void *sig,
                        size_t sig_len)
{
    return memcmp(p, sig, n < sig_len ? n : sig_len) == 0;
}

/* A decimal port: "0", or 1..5 digits without a leading zero, <= 65535. */
static bool parse_port(const char *s, size_t len, uint16_t *out)
{
    if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static void set_addr(struct sockaddr_storage *ss, int family, const void *addr,
                     uint16_t port_net)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        memcpy(&a->sin_addr, addr, 4);
        a->sin_port = port_net;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        memcpy(&a->sin6_addr, addr, 16);
        a->sin6_port = port_net;
    }
}

/* "PROXY TCP4 1.2.3.4 5.6.7.8 1234 80\r\n", or "PROXY UNKNOWN...\r\n". */
static morphd_proxy_status_t parse_v1(const unsigned char *p, size_t n,
                                      morphd_proxy_hdr_t *h, char *why,
                                      size_t why_size)
{
    size_t limit = n < MORPHD_PROXY_V1_MAX ? n : MORPHD_PROXY_V1_MAX;
    const unsigned char *nl = memchr(p, '\n', limit);
    if (nl == NULL) {
        if (n >= MORPHD_PROXY_V1_MAX) {
            WHY("a PROXY v1 header longer than %d bytes", MORPHD_PROXY_V1_MAX);
            return MORPHD_PROXY_TOO_LONG;
        }
        /* a header is printable ASCII: anything else will never become one */
        for (size_t i = 0; i < n; i++)
            if ((p[i] < 0x20 || p[i] > 0x7e) && p[i] != '\r') {
                WHY("a PROXY v1 header with a control or non-ASCII byte");
                return MORPHD_PROXY_BAD;
            }
        return MORPHD_PROXY_MORE;
    }
    size_t len = (size_t)(nl - p) + 1;
    if (len < 2 || p[len - 2] != '\r') {
        WHY("a PROXY v1 header not ended by CRLF");
        return MORPHD_PROXY_BAD;
    }
    char line[MORPHD_PROXY_V1_MAX + 1];
    memcpy(line, p, len - 2);
    line[len - 2] = '\0';
    for (size_t i = 0; i < len - 2; i++)
        if (line[i] < 0x20 || line[i] > 0x7e) {
            WHY("a PROXY v1 header with a control or non-ASCII byte");
            return MORPHD_PROXY_BAD;
        }
    memset(h, 0, sizeof *h);
    h->len = len;
    h->version = 1;
    const char *rest = line + sizeof v1_sig - 1;
    if (strncmp(rest, "UNKNOWN", 7) == 0 && (rest[7] == '\0' || rest[7] == ' ')) {
        h->local = true; /* the rest of the line is to be ignored */
        return MORPHD_PROXY_DONE;
    }
    int family;
    if (strncmp(rest, "TCP4 ", 5) == 0)
        family = AF_INET;
    else if (strncmp(rest, "TCP6 ", 5) == 0)
        family = AF_INET6;
    else {
        WHY("a PROXY v1 header whose protocol is not TCP4, TCP6 or UNKNOWN");
        return MORPHD_PROXY_BAD;
    }
    /* four fields separated by single spaces */
    const char *f[4];
    size_t flen[4];
    const char *s = rest + 5;
    for (int i = 0; i < 4; i++) {
        const char *e = strchr(s, ' ');
        if ((e == NULL) != (i == 3)) {
            WHY("a PROXY v1 header without exactly four fields after the "
                "protocol");
            return MORPHD_PROXY_BAD;
        }
        f[i] = s;
        flen[i] = e ? (size_t)(e - s) : strlen(s);
        s = e ? e + 1 : s;
    }
    unsigned char a[2][16];
    for (int i = 0; i < 2; i++) {
        char text[INET6_ADDRSTRLEN];
        if (flen[i] == 0 || flen[i] >= sizeof text) {
            WHY("a PROXY v1 header with a bad address");
            return MORPHD_PROXY_BAD;
        }
        memcpy(text, f[i], flen[i]);
        text[flen[i]] = '\0';
        if (inet_pton(family, text, a[i]) != 1) {
            int other = family == AF_INET ? AF_INET6 : AF_INET;
            if (inet_pton(other, text, a[i]) == 1) {
                WHY("a PROXY v1 %s header with the %s address %s",
                    family == AF_INET ? "TCP4" : "TCP6",
                    other == AF_INET ? "IPv4" : "IPv6", text);
                return MORPHD_PROXY_FAMILY;
            }
            WHY("a PROXY v1 header with a bad address");
            return MORPHD_PROXY_BAD;
        }
    }
    uint16_t port[2];
    for (int i = 0; i < 2; i++)
        if (!parse_port(f[2 + i], flen[2 + i], &port[i])) {
            WHY("a PROXY v1 header with a bad port");
            return MORPHD_PROXY_BAD;
        }
    set_addr(&h->src, family, a[0], htons(port[0]));
    set_addr(&h->dst, family, a[1], htons(port[1]));
    return MORPHD_PROXY_DONE;
}

/* TLVs: type, 16-bit length, value; they must tile the rest exactly. */
static bool tlvs_valid(const unsigned char *p, size_t n)
{
    while (n > 0) {
        if (n < 3)
            return false;
        size_t len = ((size_t)p[1] << 8) | p[2];
        if (len > n - 3)
            return false;
        p += 3 + len;
        n -= 3 + len;
    }
    return true;
}

static morphd_proxy_status_t parse_v2(const unsigned char *p, size_t n,
                                      int socktype, morphd_proxy_hdr_t *h,
                                      char *why, size_t why_size)
{
    if (n < 16)
        return MORPHD_PROXY_MORE;
    unsigned ver = p[12] >> 4, cmd = p[12] & 0xf;
    unsigned fam = p[13] >> 4, proto = p[13] & 0xf;
    size_t len = ((size_t)p[14] << 8) | p[15];
    if (ver != 2) {
        WHY("a PROXY v2 header of version %u", ver);
        return MORPHD_PROXY_BAD;
    }
    if (cmd > 1) {
        WHY("a PROXY v2 header with the unknown command %u", cmd);
        return MORPHD_PROXY_BAD;
    }
    if (16 + len > MORPHD_PROXY_V2_MAX) {
        WHY("a PROXY v2 header of %zu bytes (morphd takes at most %d)",
            16 + len, MORPHD_PROXY_V2_MAX);
        return MORPHD_PROXY_TOO_LONG;
    }
    if (fam > 3 || proto > 2) {
        WHY("a PROXY v2 header with the unknown family/protocol 0x%02x",
            p[13]);
        return MORPHD_PROXY_BAD;
    }
    if (n < 16 + len)
        return MORPHD_PROXY_MORE;
    memset(h, 0, sizeof *h);
    h->len = 16 + len;
    h->version = 2;
    const unsigned char *body = p + 16;
    if (cmd == 0 || fam == 0) { /* LOCAL, or addresses left unsaid */
        h->local = true;
        return MORPHD_PROXY_DONE;
    }
    if (fam == 3) {
        WHY("a PROXY v2 header with AF_UNIX addresses (an IP address is "
            "expected)");
        return MORPHD_PROXY_FAMILY;
    }
    int want = socktype == SOCK_DGRAM ? 2 : 1;
    if ((int)proto != want) {
        WHY("a PROXY v2 header for a %s on a %s endpoint",
            proto == 1 ? "stream" : proto == 2 ? "datagram" : "protocol left unsaid",
            want == 1 ? "stream" : "datagram");
        return MORPHD_PROXY_FAMILY;
    }
    size_t alen = fam == 1 ? 12 : 36;
    if (len < alen) {
        WHY("a PROXY v2 header with %zu bytes of addresses (%zu needed)", len,
            alen);
        return MORPHD_PROXY_BAD;
    }
    if (!tlvs_valid(body + alen, len - alen)) {
        WHY("a PROXY v2 header with malformed TLVs");
        return MORPHD_PROXY_BAD;
    }
    size_t asz = fam == 1 ? 4 : 16;
    uint16_t sport, dport;
    memcpy(&sport, body + 2 * asz, 2);
    memcpy(&dport, body + 2 * asz + 2, 2);
    int family = fam == 1 ? AF_INET : AF_INET6;
    set_addr(&h->src, family, body, sport);
    set_addr(&h->dst, family, body + asz, dport);
    return MORPHD_PROXY_DONE;
}

morphd_proxy_status_t morphd_proxy_parse(const unsigned char *p, size_t n,
                                         unsigned versions, int socktype,
                                         morphd_proxy_hdr_t *h, char *why,
                                         size_t why_size)
{
    if (why_size > 0)
        why[0] = '\0';
    bool v1 = (versions & MORPHD_PROXY_V1) && socktype == SOCK_STREAM &&
              starts_like(p, n, v1_sig, sizeof v1_sig - 1);
    bool v2 = (versions & MORPHD_PROXY_V2) &&
              starts_like(p, n, v2_sig, sizeof v2_sig);
    if (n == 0 || (v1 && n < sizeof v1_sig - 1) || (v2 && n < sizeof v2_sig))
        return v1 || v2 || n == 0 ? MORPHD_PROXY_MORE : MORPHD_PROXY_BAD;
    if (v1)
        return parse_v1(p, n, h, why, why_size);
    if (v2)
        return parse_v2(p, n, socktype, h, why, why_size);
    if (starts_like(p, n, v1_sig, sizeof v1_sig - 1))
        WHY("a PROXY v1 header where %s", socktype == SOCK_DGRAM
                                              ? "datagrams take only v2"
                                              : "proxy_protocol is v2");
    else if (starts_like(p, n, v2_sig, sizeof v2_sig))
        WHY("a PROXY v2 header where proxy_protocol is v1");
    else
        WHY("no PROXY header");
    return MORPHD_PROXY_BAD;
}

size_t morphd_proxy_write_v2(unsigned char *out, size_t size,
                             const struct sockaddr *src,
                             const struct sockaddr *dst, int socktype)
{
    size_t alen = src == NULL ? 0 : src->sa_family == AF_INET ? 12 : 36;
    if (size < 16 + alen ||
        (src != NULL && (dst == NULL || src->sa_family != dst->sa_family ||
                         (src->sa_family != AF_INET &&
                          src->sa_family != AF_INET6))))
        return 0;
    memcpy(out, v2_sig, sizeof v2_sig);
    out[12] = src == NULL ? 0x20 : 0x21;
    out[13] = src == NULL ? 0x00
                          : (unsigned char)((src->sa_family == AF_INET ? 0x10
                                                                       : 0x20) |
                                            (socktype == SOCK_DGRAM ? 2 : 1));
    out[14] = 0;
    out[15] = (unsigned char)alen;
    if (src == NULL)
        return 16;
    unsigned char *b = out + 16;
    if (src->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
        memcpy(b, &s->sin_addr, 4);
        memcpy(b + 4, &d->sin_addr, 4);
        memcpy(b + 8, &s->sin_port, 2);
        memcpy(b + 10, &d->sin_port, 2);
    } else {
        const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
        memcpy(b, &s->sin6_addr, 16);
        memcpy(b + 16, &d->sin6_addr, 16);
        memcpy(b + 32, &s->sin6_port, 2);
        memcpy(b + 34, &d->sin6_port, 2);
    }
    return 16 + alen;
}

/* --- proxy_from ------------------------------------------------------------ */

