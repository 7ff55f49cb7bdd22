/* Endpoint parsing: tcp://HOST:PORT and udp://[V6]:PORT, and its errors. */
#include <arpa/inet.h>
#include <string.h>

#include "endpoint.h"
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

static const struct {
    const char *text;
    const char *why; /* a fragment of the expected message */
} bad[] = {
    {"127.0.0.1:12000", "starts with tcp:// or udp://"},
    {"http://127.0.0.1:80", "starts with tcp:// or udp://"},
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
};

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
    tcase_add_test(tc, wildcards_and_localhost);
    tcase_add_loop_test(tc, rejects_malformed, 0,
                        (int)(sizeof bad / sizeof *bad));
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
