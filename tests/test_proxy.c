/* PROXY protocol: the header parser on what balancers send and on what
 * they must not (proxy_protocol and proxy_from in the configuration are in
 * test_config); and
 * morphd behind a balancer over real sockets -- TCP with v1 and v2, a v2
 * LOCAL health check, UDP with v2, and each refusal (a peer outside
 * proxy_from, no header, a malformed one, one split across reads, one too
 * long, one of the wrong family, one that never comes) closed or dropped,
 * counted, and never seen by a plugin; and per-source limits counting the
 * client the header names. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "net/proxy_protocol.h"

#define TIMEOUT_MS 5000

/* --- the parser -------------------------------------------------------------- */

static morphd_proxy_status_t parse(const char *text, size_t n,
                                   unsigned versions, int socktype,
                                   morphd_proxy_hdr_t *h, char *why)
{
    return morphd_proxy_parse((const unsigned char *)text, n, versions,
                              socktype, h, why, 160);
}

static void addr_text(const struct sockaddr_storage *ss, char *buf,
                      size_t size, unsigned *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, buf, (socklen_t)size);
        *port = ntohs(a->sin_port);
    } else {
        const struct sockaddr_in6 *a = (const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, buf, (socklen_t)size);
        *port = ntohs(a->sin6_port);
    }
}

START_TEST(v1_headers)
{
    morphd_proxy_hdr_t h;
    char why[160], a[64];
    unsigned port;
    const char *t = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET";
    ck_assert_int_eq(parse(t, strlen(t), MORPHD_PROXY_V1, SOCK_STREAM, &h, why),
                     MORPHD_PROXY_DONE);
    ck_assert_uint_eq(h.len, strlen(t) - 3);
    ck_assert_int_eq(h.version, 1);
    ck_assert(!h.local);
    addr_text(&h.src, a, sizeof a, &port);
    ck_assert_str_eq(a, "192.168.0.1");
    ck_assert_uint_eq(port, 56324);
    addr_text(&h.dst, a, sizeof a, &port);
    ck_assert_str_eq(a, "192.168.0.11");
    ck_assert_uint_eq(port, 443);

    t = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    ck_assert_int_eq(parse(t, strlen(t), MORPHD_PROXY_ANY, SOCK_STREAM, &h, why),
                     MORPHD_PROXY_DONE);
    addr_text(&h.src, a, sizeof a, &port);
    ck_assert_str_eq(a, "2001:db8::1");
    ck_assert_uint_eq(port, 65535);

    t = "PROXY UNKNOWN\r\n";
    ck_assert_int_eq(parse(t, strlen(t), MORPHD_PROXY_V1, SOCK_STREAM, &h, why),
                     MORPHD_PROXY_DONE);
    ck_assert(h.local);
    t = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    ck_assert_int_eq(parse(t, strlen(t), MORPHD_PROXY_V1, SOCK_STREAM, &h, why),
                     MORPHD_PROXY_DONE);
    ck_assert(h.local);

    /* each prefix of a header wants more */
    t = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    for (size_t k = 0; k < strlen(t); k++)
        ck_assert_int_eq(parse(t, k, MORPHD_PROXY_V1, SOCK_STREAM, &h, why),
                         MORPHD_PROXY_MORE);
}
END_TEST

START_TEST(v1_refused)
{
    static const struct {
        const char *text;
        morphd_proxy_status_t want;
    } cases[] = {
        {"hello\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", MORPHD_PROXY_BAD},   /* no CR */
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", MORPHD_PROXY_BAD},
        {"PROXY TCP4 ::1 ::1 1 2\r\n", MORPHD_PROXY_FAMILY},
        {"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", MORPHD_PROXY_FAMILY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        morphd_proxy_hdr_t h;
        char why[160];
        ck_assert_msg(parse(cases[i].text, strlen(cases[i].text),
                            MORPHD_PROXY_ANY, SOCK_STREAM, &h,
                            why) == cases[i].want,
                      "%s", cases[i].text);
        ck_assert_msg(why[0] != '\0', "no reason for %s", cases[i].text);
    }
    /* the specification's 107 bytes, CRLF included, and not one more */
    char longest[160];
    snprintf(longest, sizeof longest, "PROXY UNKNOWN %*s\r\n", 107 - 16, "x");
    ck_assert_uint_eq(strlen(longest), 107);
    morphd_proxy_hdr_t h;
    char why[160];
    ck_assert_int_eq(parse(longest, 107, MORPHD_PROXY_V1, SOCK_STREAM, &h, why),
                     MORPHD_PROXY_DONE);
    snprintf(longest, sizeof longest, "PROXY UNKNOWN %*s\r\n", 108 - 16, "x");
    ck_assert_int_eq(parse(longest, strlen(longest), MORPHD_PROXY_V1,
                           SOCK_STREAM, &h, why), MORPHD_PROXY_TOO_LONG);
    /* v1 is refused where only v2 is accepted, and on datagrams */
    const char *t = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    ck_assert_int_eq(parse(t, strlen(t), MORPHD_PROXY_V2, SOCK_STREAM, &h, why),
                     MORPHD_PROXY_BAD);
    ck_assert_int_eq(parse(t, strlen(t), MORPHD_PROXY_ANY, SOCK_DGRAM, &h, why),
                     MORPHD_PROXY_BAD);
}
END_TEST

/* A v2 header by hand: command, family/protocol byte, body. */
static size_t v2(unsigned char *out, unsigned cmd, unsigned fam_proto,
                 const void *body, size_t body_len, size_t declared)
{
    static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                          0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    memcpy(out, sig, 12);
    out[12] = (unsigned char)(0x20 | cmd);
    out[13] = (unsigned char)fam_proto;
    out[14] = (unsigned char)(declared >> 8);
    out[15] = (unsigned char)declared;
    memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

static struct sockaddr_in in4(const char *ip, unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static struct sockaddr_in6 in6(const char *ip, unsigned port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                             .sin6_port = htons(port)};
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

START_TEST(v2_headers)
{
    unsigned char buf[4096];
    morphd_proxy_hdr_t h;
    char why[160], a[64];
    unsigned port;
    struct sockaddr_in s4 = in4("203.0.113.7", 40000), d4 = in4("10.0.0.1", 12000);
    size_t n = morphd_proxy_write_v2(buf, sizeof buf, (struct sockaddr *)&s4,
                                     (struct sockaddr *)&d4, SOCK_STREAM);
    ck_assert_uint_eq(n, 28);
    ck_assert_int_eq(morphd_proxy_parse(buf, n, MORPHD_PROXY_V2, SOCK_STREAM,
                                        &h, why, sizeof why),
                     MORPHD_PROXY_DONE);
    addr_text(&h.src, a, sizeof a, &port);
    ck_assert_str_eq(a, "203.0.113.7");
    ck_assert_uint_eq(port, 40000);
    for (size_t k = 0; k < n; k++) /* split across reads */
        ck_assert_int_eq(morphd_proxy_parse(buf, k, MORPHD_PROXY_ANY,
                                            SOCK_STREAM, &h, why, sizeof why),
                         MORPHD_PROXY_MORE);

    struct sockaddr_in6 s6 = in6("2001:db8::9", 1), d6 = in6("::1", 2);
    n = morphd_proxy_write_v2(buf, sizeof buf, (struct sockaddr *)&s6,
                              (struct sockaddr *)&d6, SOCK_DGRAM);
    ck_assert_uint_eq(n, 52);
    ck_assert_int_eq(morphd_proxy_parse(buf, n, MORPHD_PROXY_ANY, SOCK_DGRAM,
                                        &h, why, sizeof why),
                     MORPHD_PROXY_DONE);
    addr_text(&h.src, a, sizeof a, &port);
    ck_assert_str_eq(a, "2001:db8::9");

    /* LOCAL: a health check, no addresses */
    n = morphd_proxy_write_v2(buf, sizeof buf, NULL, NULL, SOCK_STREAM);
    ck_assert_int_eq(morphd_proxy_parse(buf, n, MORPHD_PROXY_V2, SOCK_STREAM,
                                        &h, why, sizeof why),
                     MORPHD_PROXY_DONE);
    ck_assert(h.local);
    ck_assert_uint_eq(h.len, 16);

    /* TLVs after the addresses are skipped; broken ones are refused */
    unsigned char body[64];
    memcpy(body, buf, 0);
    memcpy(body, &s4.sin_addr, 4);
    memcpy(body + 4, &d4.sin_addr, 4);
    memcpy(body + 8, &s4.sin_port, 2);
    memcpy(body + 10, &d4.sin_port, 2);
    memcpy(body + 12, "\x05\x00\x03" "abc" "\x04\x00\x00", 9);
    n = v2(buf, 1, 0x11, body, 21, 21);
    ck_assert_int_eq(morphd_proxy_parse(buf, n, MORPHD_PROXY_V2, SOCK_STREAM,
                                        &h, why, sizeof why),
                     MORPHD_PROXY_DONE);
    ck_assert_uint_eq(h.len, 37);
    memcpy(body + 12, "\x05\x00\x09" "abc" "\x04\x00\x00", 9);
    n = v2(buf, 1, 0x11, body, 21, 21);
    ck_assert_int_eq(morphd_proxy_parse(buf, n, MORPHD_PROXY_V2, SOCK_STREAM,
                                        &h, why, sizeof why),
                     MORPHD_PROXY_BAD);
}
END_TEST

START_TEST(v2_refused)
{
    unsigned char buf[4096], body[256] = {0};
    morphd_proxy_hdr_t h;
    char why[160];
    size_t n;
#define V2_STATUS(socktype)                                                    \
    morphd_proxy_parse(buf, n, MORPHD_PROXY_ANY, socktype, &h, why, sizeof why)
    n = v2(buf, 1, 0x11, body, 12, 12);
    buf[12] = 0x11; /* version 1 in the binary form */
    ck_assert_int_eq(V2_STATUS(SOCK_STREAM), MORPHD_PROXY_BAD);
    n = v2(buf, 2, 0x11, body, 12, 12); /* command 2 */
    ck_assert_int_eq(V2_STATUS(SOCK_STREAM), MORPHD_PROXY_BAD);
    n = v2(buf, 1, 0x41, body, 12, 12); /* family 4 */
    ck_assert_int_eq(V2_STATUS(SOCK_STREAM), MORPHD_PROXY_BAD);
    n = v2(buf, 1, 0x11, body, 8, 8); /* IPv4 needs 12 bytes */
    ck_assert_int_eq(V2_STATUS(SOCK_STREAM), MORPHD_PROXY_BAD);
    n = v2(buf, 1, 0x21, body, 12, 12); /* IPv6 needs 36 */
    ck_assert_int_eq(V2_STATUS(SOCK_STREAM), MORPHD_PROXY_BAD);
    /* the wrong family or protocol */
    n = v2(buf, 1, 0x31, body, 216, 216); /* AF_UNIX */
    ck_assert_int_eq(V2_STATUS(SOCK_STREAM), MORPHD_PROXY_FAMILY);
    n = v2(buf, 1, 0x12, body, 12, 12); /* a datagram's on a stream */
    ck_assert_int_eq(V2_STATUS(SOCK_STREAM), MORPHD_PROXY_FAMILY);
    n = v2(buf, 1, 0x11, body, 12, 12); /* a stream's on a datagram */
    ck_assert_int_eq(V2_STATUS(SOCK_DGRAM), MORPHD_PROXY_FAMILY);
    /* longer than morphd takes: refused at once, before it all arrives */
    n = v2(buf, 1, 0x11, body, 12, MORPHD_PROXY_V2_MAX - 16 + 1);
    ck_assert_int_eq(V2_STATUS(SOCK_STREAM), MORPHD_PROXY_TOO_LONG);
    /* issue 21 (docs/scaling.md): the limit is 2,048 bytes of addresses
     * and TLVs together -- 12 of IPv4 addresses and one NOOP TLV of
     * 3 + 2,033 bytes is exactly at it, and taken */
    {
        static unsigned char big[16 + 2048], whole[16 + 2048];
        memset(big, 0, sizeof big);
        big[12] = 0x04; /* PP2_TYPE_NOOP */
        big[13] = (unsigned char)(2033 >> 8);
        big[14] = (unsigned char)(2033 & 0xff);
        size_t m = v2(whole, 1, 0x11, big, 2048, 2048);
        ck_assert_uint_eq(m, (size_t)MORPHD_PROXY_V2_MAX);
        ck_assert_int_eq(morphd_proxy_parse(whole, m, MORPHD_PROXY_ANY,
                                            SOCK_STREAM, &h, why, sizeof why),
                         MORPHD_PROXY_DONE);
    }
    /* a v2 header where only v1 is accepted */
    n = v2(buf, 1, 0x11, body, 12, 12);
    ck_assert_int_eq(morphd_proxy_parse(buf, n, MORPHD_PROXY_V1, SOCK_STREAM,
                                        &h, why, sizeof why),
                     MORPHD_PROXY_BAD);
#undef V2_STATUS
}
END_TEST

START_TEST(cidr)
{
    morphd_cidr_t nets[3];
    char err[256];
    ck_assert_int_eq(morphd_cidr_parse("10.0.0.0/8", &nets[0], err, sizeof err), 0);
    ck_assert_int_eq(morphd_cidr_parse("fd00::/8", &nets[1], err, sizeof err), 0);
    ck_assert_int_eq(morphd_cidr_parse("127.0.0.1", &nets[2], err, sizeof err), 0);
    struct sockaddr_in a = in4("10.200.3.4", 1);
    ck_assert(morphd_cidr_match(nets, 3, (struct sockaddr *)&a));
    a = in4("11.0.0.1", 1);
    ck_assert(!morphd_cidr_match(nets, 3, (struct sockaddr *)&a));
    a = in4("127.0.0.2", 1);
    ck_assert(!morphd_cidr_match(nets, 3, (struct sockaddr *)&a));
    struct sockaddr_in6 b = in6("::ffff:127.0.0.1", 1); /* v4-mapped */
    ck_assert(morphd_cidr_match(nets, 3, (struct sockaddr *)&b));
    b = in6("fdff::1", 1);
    ck_assert(morphd_cidr_match(nets, 3, (struct sockaddr *)&b));
    b = in6("fe00::1", 1);
    ck_assert(!morphd_cidr_match(nets, 3, (struct sockaddr *)&b));
    /* /0 of one family is not the other family */
    ck_assert_int_eq(morphd_cidr_parse("0.0.0.0/0", &nets[0], err, sizeof err), 0);
    b = in6("2001:db8::1", 1);
    ck_assert(!morphd_cidr_match(nets, 1, (struct sockaddr *)&b));
    static const char *bad[] = {"10.0.0.1/8", "10.0.0.0/33", "::/129",
                                "10.0.0.0/", "10.0.0.0/08", "example.com",
                                "10.0.0.0/8/8", "", "1.2.3.4/-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(morphd_cidr_parse(bad[i], &nets[0], err, sizeof err) == -1,
                      "%s", bad[i]);
}
END_TEST

/* --- over real sockets ------------------------------------------------------- */

static morphd_proc_t proc;
static char admin[128];

static void serve(const char *service_lines)
{
    char services[2048];
    snprintf(services, sizeof services,
             "[service s]\nlisten = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "framing = line\n%s",
             service_lines);
    morphd_proc_serve(&proc, PLUGIN_DIR, "", services, admin, sizeof admin);
}


/* Sends `header` and `line` and returns the reply line (static). */
static const char *ask(int fd, const void *header, size_t hlen,
                       const char *line)
{
    static char reply[512];
    if (hlen > 0)
        ck_assert_int_eq(send_all(fd, header, hlen), 0);
    ck_assert_int_eq(send_all(fd, line, strlen(line)), 0);
    size_t n = 0;
    while (n < sizeof reply - 1) {
        size_t got = recv_exact(fd, reply + n, 1, TIMEOUT_MS);
        if (got == 0 || reply[n] == '\n') {
            n += got;
            break;
        }
        n++;
    }
    reply[n] = '\0';
    return reply;
}

/* Whether morphd closes the connection without a byte of reply. */
static bool closed_silently(int fd)
{
    char buf[64];
    return recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS) == 0;
}

static size_t header_v2(unsigned char *buf, const char *ip, unsigned port,
                        int socktype)
{
    struct sockaddr_in s = in4(ip, port), d = in4("127.0.0.1", 12000);
    return morphd_proxy_write_v2(buf, 64, (struct sockaddr *)&s,
                                 (struct sockaddr *)&d, socktype);
}

START_TEST(tcp_v1_and_v2)
{
    serve("transform = whoami\nproxy_protocol = any\nproxy_from = 127.0.0.1\n");
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);

    int fd = tcp_connect_from("127.0.0.1", port);
    const char *h1 = "PROXY TCP4 198.51.100.7 127.0.0.1 45678 12000\r\n";
    ck_assert_str_eq(ask(fd, h1, strlen(h1), "x\n"),
                     "tcp 198.51.100.7 45678 s\n");
    ck_assert_str_eq(ask(fd, NULL, 0, "again\n"), "tcp 198.51.100.7 45678 s\n");
    close(fd);

    unsigned char h2[64];
    size_t n = header_v2(h2, "203.0.113.9", 50001, SOCK_STREAM);
    fd = tcp_connect_from("127.0.0.1", port);
    ck_assert_str_eq(ask(fd, h2, n, "x\n"), "tcp 203.0.113.9 50001 s\n");
    close(fd);

    /* IPv6 clients through an IPv4 balancer */
    fd = tcp_connect_from("127.0.0.1", port);
    const char *h6 = "PROXY TCP6 2001:db8::5 ::1 7 12000\r\n";
    ck_assert_str_eq(ask(fd, h6, strlen(h6), "x\n"), "tcp 2001:db8::5 7 s\n");
    close(fd);

    /* LOCAL (a balancer's health check): the connection's own address */
    n = morphd_proxy_write_v2(h2, sizeof h2, NULL, NULL, SOCK_STREAM);
    fd = tcp_connect_from("127.0.0.1", port);
    const char *r = ask(fd, h2, n, "x\n");
    ck_assert_msg(strncmp(r, "tcp 127.0.0.1 ", 14) == 0, "%s", r);
    close(fd);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "proxy_headers", 4), 4);
    morphd_proc_finish(&proc);
}
END_TEST

/* A header sent one byte at a time, its last byte together with the
 * client's first line. */
START_TEST(tcp_header_split)
{
    serve("transform = whoami\nproxy_protocol = v2\nproxy_from = 127.0.0.0/8\n");
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    unsigned char h[64];
    size_t n = header_v2(h, "192.0.2.44", 4444, SOCK_STREAM);
    int fd = tcp_connect_from("127.0.0.1", port);
    for (size_t i = 0; i + 1 < n; i++) {
        ck_assert_int_eq(send_all(fd, h + i, 1), 0);
        usleep(2000);
    }
    char last[8] = {(char)h[n - 1], 'x', '\n'};
    ck_assert_int_eq(send_all(fd, last, 3), 0);
    ck_assert_str_eq(ask(fd, NULL, 0, ""), "tcp 192.0.2.44 4444 s\n");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* Every refusal: closed without a reply, counted, never given to the
 * chain (messages_in stays 0). */
START_TEST(tcp_refused)
{
    serve("transform = uppercase\nproxy_protocol = any\n"
          "proxy_from = 127.0.0.1\nproxy_timeout = 300ms\n");
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);

    /* from a peer outside proxy_from, even with a well-formed header */
    int fd = tcp_connect_from("127.0.0.2", port);
    const char *h1 = "PROXY TCP4 1.2.3.4 127.0.0.1 1 2\r\nhello\n";
    send_all(fd, h1, strlen(h1));
    ck_assert(closed_silently(fd));
    close(fd);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "proxy_untrusted", 1), 1);

    static const char *const bad[] = {
        "hello\n",                                   /* missing */
        "PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\nhello\n", /* malformed */
        "PROXY TCP4 ::1 ::1 1 2\r\nhello\n",         /* wrong family */
        "PROXY UNKNOWN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        "hello\n", /* too long */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fd = tcp_connect_from("127.0.0.1", port);
        send_all(fd, bad[i], strlen(bad[i]));
        ck_assert_msg(closed_silently(fd), "%s", bad[i]);
        close(fd);
    }
    /* binary: a datagram's header on a stream, AF_UNIX, over-long */
    unsigned char h[4096];
    size_t n = header_v2(h, "1.2.3.4", 1, SOCK_DGRAM);
    unsigned char body[216] = {0};
    size_t n_unix = v2(h + 64, 1, 0x31, body, sizeof body, sizeof body);
    size_t n_long = v2(h + 512, 1, 0x11, body, 12, 3000);
    const unsigned char *bins[] = {h, h + 64, h + 512};
    size_t lens[] = {n, n_unix, n_long};
    for (size_t i = 0; i < 3; i++) {
        fd = tcp_connect_from("127.0.0.1", port);
        send_all(fd, bins[i], lens[i]);
        send_all(fd, "hello\n", 6);
        ck_assert_msg(closed_silently(fd), "binary case %zu", i);
        close(fd);
    }
    ck_assert_int_eq(morph_stat_wait(admin, "s", "proxy_invalid", 7), 7);

    /* a header cut short, then the client goes */
    fd = tcp_connect_from("127.0.0.1", port);
    send_all(fd, "PROXY TCP4 1.2", 14);
    usleep(50000);
    shutdown(fd, SHUT_WR);
    ck_assert(closed_silently(fd));
    close(fd);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "proxy_invalid", 8), 8);

    /* a header that never comes: closed after proxy_timeout */
    fd = tcp_connect_from("127.0.0.1", port);
    send_all(fd, "PROXY ", 6);
    ck_assert(closed_silently(fd));
    close(fd);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "proxy_timeouts", 1), 1);

    ck_assert_int_eq(morph_stat(admin, "s", "messages_in"), 0);
    ck_assert_int_eq(morph_stat(admin, "s", "proxy_headers"), 0);
    /* and a good one is still served */
    fd = tcp_connect_from("127.0.0.1", port);
    const char *good = "PROXY TCP4 1.2.3.4 127.0.0.1 1 2\r\n";
    ck_assert_str_eq(ask(fd, good, strlen(good), "hello\n"), "HELLO\n");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* max_connections_per_source counts the client the header names, not the
 * balancer every connection comes from. */
START_TEST(tcp_per_source)
{
    serve("transform = uppercase\nproxy_protocol = any\n"
          "proxy_from = 127.0.0.1\nmax_connections_per_source = 1\n");
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    const char *a = "PROXY TCP4 10.0.0.1 127.0.0.1 1000 2\r\n";
    const char *b = "PROXY TCP4 10.0.0.2 127.0.0.1 1000 2\r\n";
    int fa = tcp_connect_from("127.0.0.1", port);
    ck_assert_str_eq(ask(fa, a, strlen(a), "one\n"), "ONE\n");
    int fa2 = tcp_connect_from("127.0.0.1", port);
    send_all(fa2, a, strlen(a));
    send_all(fa2, "two\n", 4);
    ck_assert(closed_silently(fa2));
    close(fa2);
    int fb = tcp_connect_from("127.0.0.1", port);
    ck_assert_str_eq(ask(fb, b, strlen(b), "three\n"), "THREE\n");
    ck_assert_int_eq(morph_stat_wait(admin, "s", "connections_rejected", 1), 1);
    close(fa);
    /* once a's connection is gone, a may connect again */
    ck_assert_int_eq(morph_stat_wait(admin, "s", "connections_open", 1), 1);
    fa = tcp_connect_from("127.0.0.1", port);
    ck_assert_str_eq(ask(fa, a, strlen(a), "four\n"), "FOUR\n");
    /* issue 14, hole 9: each connection counts once: 3 accepted (once
     * their header was read), 1 rejected */
    ck_assert_int_eq(morph_stat(admin, "s", "connections_accepted"), 3);
    ck_assert_int_eq(morph_stat(admin, "s", "connections_rejected"), 1);
    close(fa);
    close(fb);
    morphd_proc_finish(&proc);
}
END_TEST

/* UDP from 127.0.0.1 to the port, from source address `src`; returns the
 * reply's length, or -1 when none comes within `ms`. */
static ssize_t udp_ask(const char *src, int port, const void *msg, size_t n,
                       char *reply, size_t cap, int ms)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = in4(src, 0), to = in4("127.0.0.1", (unsigned)port);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(sendto(fd, msg, n, 0, (struct sockaddr *)&to, sizeof to),
                     (ssize_t)n);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t got = -1;
    if (poll(&p, 1, ms) == 1)
        got = recv(fd, reply, cap - 1, 0);
    if (got >= 0)
        reply[got] = '\0';
    close(fd);
    return got;
}

START_TEST(udp_v2)
{
    serve("transform = whoami\nproxy_protocol = any\nproxy_from = 127.0.0.1\n");
    int port = morphd_proc_need_port(&proc, "s", "udp", false);
    unsigned char d[256];
    char reply[256];
    size_t n = header_v2(d, "198.51.100.20", 5353, SOCK_DGRAM);
    memcpy(d + n, "who am I, then?", 15); /* long enough for the reply:
                                              udp_max_reply_ratio */
    /* the reply goes back to the balancer, without a header */
    ck_assert_int_gt(udp_ask("127.0.0.1", port, d, n + 15, reply, sizeof reply,
                             TIMEOUT_MS), 0);
    ck_assert_str_eq(reply, "udp 198.51.100.20 5353 s\n");

    /* refused, each dropped and counted: no reply within 300 ms */
    ck_assert_int_eq(udp_ask("127.0.0.2", port, d, n + 15, reply,
                             sizeof reply, 300), -1); /* not from proxy_from */
    ck_assert_int_eq(morph_stat_wait(admin, "s", "proxy_untrusted", 1), 1);
    ck_assert_int_eq(udp_ask("127.0.0.1", port, "hi", 2, reply, sizeof reply,
                             300), -1); /* no header */
    const char *v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nhi";
    ck_assert_int_eq(udp_ask("127.0.0.1", port, v1, strlen(v1), reply,
                             sizeof reply, 300), -1); /* v1 over UDP */
    ck_assert_int_eq(udp_ask("127.0.0.1", port, d, n - 1, reply, sizeof reply,
                             300), -1); /* cut short */
    n = header_v2(d, "1.2.3.4", 1, SOCK_STREAM);
    ck_assert_int_eq(udp_ask("127.0.0.1", port, d, n, reply, sizeof reply,
                             300), -1); /* a stream's header */
    ck_assert_int_eq(morph_stat_wait(admin, "s", "proxy_invalid", 4), 4);
    ck_assert_int_eq(morph_stat(admin, "s", "messages_in"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *parser = tcase_create("parser");
    tcase_add_test(parser, v1_headers);
    tcase_add_test(parser, v1_refused);
    tcase_add_test(parser, v2_headers);
    tcase_add_test(parser, v2_refused);
    tcase_add_test(parser, cidr);
    suite_add_tcase(s, parser);
    TCase *net = tcase_create("sockets");
    tcase_set_timeout(net, 60);
    tcase_add_test(net, tcp_v1_and_v2);
    tcase_add_test(net, tcp_header_split);
    tcase_add_test(net, tcp_refused);
    tcase_add_test(net, tcp_per_source);
    tcase_add_test(net, udp_v2);
    suite_add_tcase(s, net);
    return s;
}

MORPH_TEST_MAIN(suite)
