/* Endpoint parsing: tcp://HOST:PORT and udp://[V6]:PORT, and its errors. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/un.h>

#include "base/endpoint.h"
#include "harness.h"

START_TEST(parses_ipv4_tcp)
{
    morphd_endpoint_t ep;
    char err[256];
    ck_assert_int_eq(morphd_endpoint_parse("tcp://127.0.0.1:12000", &ep, err,
                                           sizeof err), 0);
    ck_assert_int_eq(ep.transport, MORPHD_TCP);
    ck_assert_int_eq(ep.addr.ss_family, AF_INET);
    ck_assert_int_eq(morphd_endpoint_port(&ep), 12000);
    ck_assert_str_eq(ep.text, "tcp://127.0.0.1:12000");
}
END_TEST

/* Issue 24: http:// is TCP served by the http codec. */
START_TEST(parses_http)
{
    morphd_endpoint_t ep;
    char err[256];
    ck_assert_int_eq(morphd_endpoint_parse("http://[::1]:8080", &ep, err,
                                           sizeof err), 0);
    ck_assert_int_eq(ep.transport, MORPHD_HTTP);
    ck_assert_str_eq(morphd_transport_name(ep.transport), "http");
    ck_assert(morphd_transport_is_stream(ep.transport));
    ck_assert_int_eq(morphd_endpoint_port(&ep), 8080);
    ck_assert_int_eq(ep.addr.ss_family, AF_INET6);
    ck_assert(!morphd_transport_is_tls(ep.transport));
    ck_assert(morphd_transport_is_http(ep.transport));
    ck_assert_int_eq(morphd_endpoint_parse("https://127.0.0.1:8443", &ep, err,
                                           sizeof err), 0);
    ck_assert_int_eq(ep.transport, MORPHD_HTTPS);
    ck_assert_str_eq(ep.text, "https://127.0.0.1:8443");
    ck_assert(morphd_transport_is_tls(ep.transport));
    ck_assert(morphd_transport_is_http(ep.transport));
    ck_assert(morphd_transport_is_stream(ep.transport));
}
END_TEST

START_TEST(parses_ipv6_udp)
{
    morphd_endpoint_t ep;
    char err[256];
    ck_assert_int_eq(morphd_endpoint_parse("udp://[::1]:9", &ep, err,
                                           sizeof err), 0);
    ck_assert_int_eq(ep.transport, MORPHD_UDP);
    ck_assert_int_eq(ep.addr.ss_family, AF_INET6);
    ck_assert_int_eq(morphd_endpoint_port(&ep), 9);
    ck_assert_str_eq(ep.text, "udp://[::1]:9");
}
END_TEST

START_TEST(wildcards_and_localhost)
{
    morphd_endpoint_t ep;
    char err[256];
    ck_assert_int_eq(morphd_endpoint_parse("tcp://*:0", &ep, err, sizeof err), 0);
    ck_assert_str_eq(ep.text, "tcp://0.0.0.0:0");
    ck_assert_int_eq(morphd_endpoint_parse("udp://localhost:5", &ep, err,
                                           sizeof err), 0);
    ck_assert_str_eq(ep.text, "udp://127.0.0.1:5");
    ck_assert_int_eq(morphd_endpoint_parse("tcp://[::]:65535", &ep, err,
                                           sizeof err), 0);
    ck_assert_str_eq(ep.text, "tcp://[::]:65535");
}
END_TEST

/* with the slash before it, 108 bytes: one more than a socket path holds */
#define LONG_PATH "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct {
    const char *text;
    const char *why; /* a fragment of the expected message */
} bad[] = {
    {"127.0.0.1:12000", "starts with tcp://, udp://, tls://, http://, https:// or unix://"},
    {"ws://127.0.0.1:443", "starts with tcp://, udp://, tls://, http://, https:// or unix://"},
    {"https://127.0.0.1", "missing ':PORT'"},
    {"http://127.0.0.1", "missing ':PORT'"},
    {"tcp://127.0.0.1", "missing ':PORT'"},
    {"tcp://127.0.0.1:", "port must be a number"},
    {"tcp://127.0.0.1:65536", "port must be a number"},
    {"tcp://127.0.0.1:-1", "port must be a number"},
    {"tcp://127.0.0.1:12x", "port must be a number"},
    {"tcp://:12000", "missing host"},
    {"tcp://::1:12000", "in brackets"},
    {"tcp://[::1:12000", "missing ']'"},
    {"tcp://[::1]12000", "expected ':PORT'"},
    {"udp://example.com:53", "not a numeric IPv4 or IPv6 address"},
    {"udp://300.1.1.1:53", "not a numeric"},
    {"unix://", "takes an absolute path"},
    {"unix://run/morphd.sock", "takes an absolute path"},
    {"unix://./morphd.sock", "takes an absolute path"},
    {"unix:///run/morphd/", "names a folder"},
    {"unix:///" LONG_PATH, "a socket path has at most 107"},
};

START_TEST(parses_unix)
{
    morphd_endpoint_t ep;
    char err[256] = "";
    ck_assert_int_eq(morphd_endpoint_parse("unix:///run/morphd/upper.sock", &ep,
                                           err, sizeof err), 0);
    ck_assert_int_eq(ep.transport, MORPHD_UNIX);
    ck_assert_int_eq(ep.addr.ss_family, AF_UNIX);
    ck_assert_str_eq(((struct sockaddr_un *)&ep.addr)->sun_path,
                     "/run/morphd/upper.sock");
    ck_assert_str_eq(ep.text, "unix:///run/morphd/upper.sock");
    ck_assert_int_eq(morphd_endpoint_port(&ep), 0);
    ck_assert(morphd_transport_is_stream(ep.transport));
    ck_assert_str_eq(morphd_transport_name(ep.transport), "unix");
    /* the longest path that fits: 107 bytes, and its text */
    char text[160] = "unix://";
    memset(text + 7, 'a', 107);
    text[7] = '/';
    text[7 + 107] = '\0';
    ck_assert_msg(morphd_endpoint_parse(text, &ep, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(ep.text, text);
    char buf[MORPHD_ENDPOINT_TEXT];
    morphd_endpoint_format(MORPHD_UNIX, (struct sockaddr *)&ep.addr, buf, sizeof buf);
    ck_assert_str_eq(buf, text);
}
END_TEST

START_TEST(rejects_malformed)
{
    morphd_endpoint_t ep;
    char err[256] = "";
    ck_assert_int_eq(morphd_endpoint_parse(bad[_i].text, &ep, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, bad[_i].why) != NULL, "'%s': got '%s'",
                  bad[_i].text, err);
    ck_assert_msg(strstr(err, bad[_i].text) != NULL,
                  "the message names the endpoint: '%s'", err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("endpoint");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, parses_ipv4_tcp);
    tcase_add_test(tc, parses_ipv6_udp);
    tcase_add_test(tc, parses_http);
    tcase_add_test(tc, wildcards_and_localhost);
    tcase_add_test(tc, parses_unix);
    tcase_add_loop_test(tc, rejects_malformed, 0,
                        (int)(sizeof bad / sizeof *bad));
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
