/* The PROXY protocol header parser on arbitrary bytes. The first byte picks
 * the versions accepted and stream or datagram; the rest is what a peer
 * sent. Properties, beyond not crashing:
 * - a header found is no longer than the limits and than the input, and
 *   its addresses are of one family, IPv4 or IPv6;
 * - every shorter prefix of it asks for more (a header split across reads
 *   parses the same), and bytes after it change nothing;
 * - a result other than DONE or MORE always says why;
 * - a v2 header written for the addresses found parses back to them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/proxy_protocol.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_proxy: property failed: %s\n", #cond);       \
            abort();                                                           \
        }                                                                      \
    } while (0)

static bool same(const morphd_proxy_hdr_t *a, const morphd_proxy_hdr_t *b)
{
    return a->len == b->len && a->version == b->version &&
           a->local == b->local &&
           memcmp(&a->src, &b->src, sizeof a->src) == 0 &&
           memcmp(&a->dst, &b->dst, sizeof a->dst) == 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned versions = 1 + data[0] % 3;
    int socktype = (data[0] & 4) ? SOCK_DGRAM : SOCK_STREAM;
    const unsigned char *p = data + 1;
    size_t n = size - 1;

    morphd_proxy_hdr_t h;
    char why[160];
    morphd_proxy_status_t st =
        morphd_proxy_parse(p, n, versions, socktype, &h, why, sizeof why);
    CHECK(st >= MORPHD_PROXY_FAMILY && st <= MORPHD_PROXY_DONE);
    if (st != MORPHD_PROXY_DONE && st != MORPHD_PROXY_MORE)
        CHECK(why[0] != '\0');
    if (st == MORPHD_PROXY_MORE)
        CHECK(n < MORPHD_PROXY_MAX);
    if (st != MORPHD_PROXY_DONE)
        return 0;

    CHECK(h.len > 0 && h.len <= n);
    CHECK(h.version == 1 || h.version == 2);
    CHECK(h.len <= (h.version == 1 ? MORPHD_PROXY_V1_MAX : MORPHD_PROXY_V2_MAX));
    CHECK(h.version == 2 || socktype == SOCK_STREAM);
    if (!h.local) {
        CHECK(h.src.ss_family == AF_INET || h.src.ss_family == AF_INET6);
        CHECK(h.src.ss_family == h.dst.ss_family);
    }

    /* split across reads: every prefix wants more */
    for (size_t k = 0; k < h.len; k++) {
        morphd_proxy_hdr_t hk;
        CHECK(morphd_proxy_parse(p, k, versions, socktype, &hk, why,
                                 sizeof why) == MORPHD_PROXY_MORE);
    }
    /* what follows the header is the client's: it changes nothing */
    unsigned char *more = malloc(h.len + 64);
    if (more == NULL)
        return 0;
    memcpy(more, p, h.len);
    memset(more + h.len, data[0], 64);
    morphd_proxy_hdr_t h2;
    CHECK(morphd_proxy_parse(more, h.len + 64, versions, socktype, &h2, why,
                             sizeof why) == MORPHD_PROXY_DONE);
    CHECK(same(&h, &h2));
    free(more);

    /* round trip through a v2 header */
    unsigned char out[64];
    size_t len = morphd_proxy_write_v2(
        out, sizeof out, h.local ? NULL : (struct sockaddr *)&h.src,
        h.local ? NULL : (struct sockaddr *)&h.dst, socktype);
    CHECK(len > 0);
    morphd_proxy_hdr_t h3;
    CHECK(morphd_proxy_parse(out, len, MORPHD_PROXY_V2, socktype, &h3, why,
                             sizeof why) == MORPHD_PROXY_DONE);
    CHECK(h3.local == h.local && h3.len == len);
    if (!h.local) {
        CHECK(memcmp(&h3.src, &h.src, sizeof h.src) == 0);
        CHECK(memcmp(&h3.dst, &h.dst, sizeof h.dst) == 0);
    }
    return 0;
}
