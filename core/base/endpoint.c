/*
 * endpoint.c -- endpoint parsing and formatting for endpoint.h. Host names
 * other than "localhost" are refused on purpose: resolving names at start-up
 * would make binding depend on DNS.
 */
#include "base/endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

const char *morphd_transport_name(morphd_transport_t t)
{
    switch (t) {
    case MORPHD_TCP:
        return "tcp";
    case MORPHD_UDP:
        return "udp";
    case MORPHD_UNIX:
        return "unix";
    case MORPHD_TLS:
        return "tls";
    case MORPHD_HTTP:
        return "http";
    case MORPHD_HTTPS:
        return "https";
    }
    return "?";
}

int morphd_endpoint_port(const morphd_endpoint_t *ep)
{
    if (ep->addr.ss_family == AF_UNIX)
        return 0;
    if (ep->addr.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ep->addr)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&ep->addr)->sin_port);
}

bool morphd_endpoint_hands_over(const morphd_endpoint_t *have,
                                const char *have_service,
                                const morphd_endpoint_t *want,
                                const char *want_service)
{
    bool any_port = want->transport != MORPHD_UNIX &&
                    morphd_endpoint_port(want) == 0;
    return have->transport == want->transport &&
           strcmp(have->text, want->text) == 0 &&
           (!any_port || strcmp(have_service, want_service) == 0);
}

void morphd_sockaddr_format(const struct sockaddr *addr, char *buf,
                            size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(buf, size, "[%s]:%d", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(buf, size, "%s:%d", host, ntohs(a->sin_port));
    }
}

void morphd_endpoint_format(morphd_transport_t t,
                            const struct sockaddr *addr, char *buf,
                            size_t size)
{
    if (addr->sa_family == AF_UNIX) {
        const struct sockaddr_un *u = (const struct sockaddr_un *)addr;
        snprintf(buf, size, "unix://%.*s", (int)sizeof u->sun_path,
                 u->sun_path[0] == '/' ? u->sun_path : "");
        return;
    }
    char hostport[INET6_ADDRSTRLEN + 9];
    morphd_sockaddr_format(addr, hostport, sizeof hostport);
    snprintf(buf, size, "%s://%s", morphd_transport_name(t), hostport);
}

#define FAIL(...)                                                              \
    do {                                                                       \
        snprintf(err, err_size, __VA_ARGS__);                                  \
        return -1;                                                             \
    } while (0)

/* unix:///absolute/path: no relative paths (they would depend on the
 * folder morphd was started in) and no abstract names. */
static int parse_unix(const char *text, morphd_endpoint_t *ep, char *err,
                      size_t err_size)
{
    const char *path = text + 7;
    struct sockaddr_un *u = (struct sockaddr_un *)&ep->addr;
    if (path[0] != '/')
        FAIL("'%s': a unix:// endpoint takes an absolute path, e.g. "
             "unix:///run/morphd/NAME.sock", text);
    size_t len = strlen(path);
    if (len >= sizeof u->sun_path)
        FAIL("'%s': the path is %zu bytes; a socket path has at most %zu",
             text, len, sizeof u->sun_path - 1);
    if (path[len - 1] == '/')
        FAIL("'%s': the path names a folder; add the socket's file name",
             text);
    ep->transport = MORPHD_UNIX;
    u->sun_family = AF_UNIX;
    memcpy(u->sun_path, path, len + 1);
    snprintf(ep->text, sizeof ep->text, "%s", text);
    return 0;
}

int morphd_endpoint_parse(const char *text, morphd_endpoint_t *ep, char *err,
                          size_t err_size)
{
    memset(ep, 0, sizeof *ep);
    const char *rest;
    if (strncmp(text, "unix://", 7) == 0)
        return parse_unix(text, ep, err, err_size);
    if (strncmp(text, "tcp://", 6) == 0) {
        ep->transport = MORPHD_TCP;
        rest = text + 6;
    } else if (strncmp(text, "udp://", 6) == 0) {
        ep->transport = MORPHD_UDP;
        rest = text + 6;
    } else if (strncmp(text, "tls://", 6) == 0) {
        ep->transport = MORPHD_TLS;
        rest = text + 6;
    } else if (strncmp(text, "http://", 7) == 0) {
        ep->transport = MORPHD_HTTP;
        rest = text + 7;
    } else if (strncmp(text, "https://", 8) == 0) {
        ep->transport = MORPHD_HTTPS;
        rest = text + 8;
    } else {
        FAIL("'%s': an endpoint starts with tcp://, udp://, tls://, http://, "
             "https:// or unix:// (e.g. tcp://127.0.0.1:12000, "
             "unix:///run/morphd/NAME.sock)", text);
    }

    char host[INET6_ADDRSTRLEN + 1];
    const char *port_text;
    if (*rest == '[') {
        const char *close = strchr(rest, ']');
        if (close == NULL)
            FAIL("'%s': missing ']' after the IPv6 address", text);
        size_t n = (size_t)(close - rest - 1);
        if (n == 0 || n >= sizeof host)
            FAIL("'%s': bad IPv6 address", text);
        memcpy(host, rest + 1, n);
        host[n] = '\0';
        if (close[1] != ':')
            FAIL("'%s': expected ':PORT' after ']'", text);
        port_text = close + 2;
    } else {
        const char *colon = strrchr(rest, ':');
        if (colon == NULL)
            FAIL("'%s': missing ':PORT'", text);
        size_t n = (size_t)(colon - rest);
        if (n == 0)
            FAIL("'%s': missing host before ':PORT' (use * for all "
                 "addresses)", text);
        if (n >= sizeof host)
            FAIL("'%s': host too long", text);
        memcpy(host, rest, n);
        host[n] = '\0';
        if (strchr(host, ':') != NULL)
            FAIL("'%s': write IPv6 addresses in brackets, e.g. "
                 "%s://[::1]:12000", text, morphd_transport_name(ep->transport));
        port_text = colon + 1;
    }

    char *end;
    if (*port_text < '0' || *port_text > '9')
        FAIL("'%s': port must be a number 0..65535", text);
    long port = strtol(port_text, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        FAIL("'%s': port must be a number 0..65535", text);

    if (strcmp(host, "*") == 0)
        strcpy(host, "0.0.0.0");
    else if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");

    struct sockaddr_in *a4 = (struct sockaddr_in *)&ep->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ep->addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
    } else {
        FAIL("'%s': '%s' is not a numeric IPv4 or IPv6 address", text, host);
    }
    morphd_endpoint_format(ep->transport, (struct sockaddr *)&ep->addr,
                           ep->text, sizeof ep->text);
    return 0;
}

/* --- proxy_from: networks ------------------------------------------------- */

int morphd_cidr_parse(const char *text, morphd_cidr_t *c, char *err,
                      size_t err_size)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof addr) {
        snprintf(err, err_size, "'%s' is not an address or network", text);
        return -1;
    }
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    struct sockaddr_storage ss = {.ss_family = AF_INET};
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    unsigned max;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        morphd_sockaddr_key((const struct sockaddr *)&ss, c->addr);
        max = 32;
    } else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
        max = 128;
    } else {
        snprintf(err, err_size, "'%s' is not an IPv4 or IPv6 address or "
                 "network (e.g. 10.0.0.0/8 or fd00::/8; names are not "
                 "resolved)", text);
        return -1;
    }
    unsigned bits = max;
    if (slash != NULL) {
        const char *s = slash + 1;
        size_t slen = strlen(s);
        unsigned v = 0;
        if (slen == 0 || slen > 3 || (slen > 1 && s[0] == '0'))
            goto bad_len;
        for (size_t i = 0; i < slen; i++) {
            if (s[i] < '0' || s[i] > '9')
                goto bad_len;
            v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v > max)
            goto bad_len;
        bits = v;
    }
    c->bits = bits + (max == 32 ? 96 : 0);
    for (unsigned i = c->bits; i < 128; i++)
        if (c->addr[i / 8] & (0x80u >> (i % 8))) {
            snprintf(err, err_size, "'%s' has host bits set under its "
                     "/%u mask", text, bits);
            return -1;
        }
    return 0;
bad_len:
    snprintf(err, err_size, "'%s': the prefix length must be 0..%u", text, max);
    return -1;
}

bool morphd_cidr_match(const morphd_cidr_t *nets, size_t n,
                       const struct sockaddr *sa)
{
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return false;
    unsigned char key[16];
    morphd_sockaddr_key(sa, key);
    for (size_t i = 0; i < n; i++) {
        unsigned bits = nets[i].bits, full = bits / 8, rest = bits % 8;
        if (memcmp(key, nets[i].addr, full) != 0)
            continue;
        if (rest != 0) {
            unsigned char mask = (unsigned char)(0xff00u >> rest);
            if ((key[full] & mask) != (nets[i].addr[full] & mask))
                continue;
        }
        return true;
    }
    return false;
}

/* --- metrics_listen -------------------------------------------------------- */

int morphd_metrics_parse_listen(const char *text, struct sockaddr_storage *ss,
                                char *err, size_t err_size)
{
    static const char scheme[] = "http://";
    if (strncmp(text, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, err_size, "'%s' is not http://HOST:PORT (e.g. "
                 "http://127.0.0.1:9464)", text);
        return -1;
    }
    const char *rest = text + sizeof scheme - 1;
    size_t len = strlen(rest);
    if (len > 0 && rest[len - 1] == '/')
        len--; /* http://HOST:PORT/ is the same place */
    char tcp[MORPHD_ENDPOINT_TEXT];
    if (len + 7 >= sizeof tcp) {
        snprintf(err, err_size, "'%s' is too long", text);
        return -1;
    }
    snprintf(tcp, sizeof tcp, "tcp://%.*s", (int)len, rest);
    morphd_endpoint_t ep;
    char why[256];
    if (morphd_endpoint_parse(tcp, &ep, why, sizeof why) != 0) {
        snprintf(err, err_size, "'%s' is not http://HOST:PORT: %s", text,
                 why);
        return -1;
    }
    memcpy(ss, &ep.addr, sizeof *ss);
    return 0;
}

/* --- unix_group ------------------------------------------------------------ */

long morphd_unix_group_id(const char *group)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(group, &end, 10);
    if (*group >= '0' && *group <= '9' && *end == '\0' && errno == 0 &&
        n < (unsigned long)(gid_t)-1)
        return (long)n;
    struct group gr, *found = NULL;
    char buf[4096];
    if (getgrnam_r(group, &gr, buf, sizeof buf, &found) != 0 || found == NULL)
        return -1;
    return (long)found->gr_gid;
}
