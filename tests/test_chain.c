/* Chains: order, failure in the middle, output limits, per-connection state. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

START_TEST(applies_left_to_right)
{
    test_chain_t tc;
    test_chain_init(&tc, "uppercase | reverse", NULL);
    char *out = test_chain_str(&tc, "abc straße");
    ck_assert_str_eq(out, "ESSARTS CBA");
    free(out);
    test_chain_free(&tc);

    test_chain_init(&tc, "reverse|uppercase", NULL);
    out = test_chain_str(&tc, "ab");
    ck_assert_str_eq(out, "BA");
    free(out);
    test_chain_free(&tc);
}
END_TEST

START_TEST(echo_is_the_identity)
{
    test_chain_t tc;
    test_chain_init(&tc, "echo | uppercase | echo", NULL);
    char *out = test_chain_str(&tc, "héllo");
    ck_assert_str_eq(out, "HÉLLO");
    free(out);
    test_chain_free(&tc);
}
END_TEST

START_TEST(same_plugin_twice_is_two_instances)
{
    test_chain_t tc;
    test_chain_init(&tc, "reverse | reverse", NULL);
    char *out = test_chain_str(&tc, "no\xcc\x88" "el 🇫🇷");
    ck_assert_str_eq(out, "no\xcc\x88" "el 🇫🇷");
    free(out);
    test_chain_free(&tc);
}
END_TEST

START_TEST(plugin_options_reach_the_plugin)
{
    test_chain_t tc;
    test_chain_init(&tc, "reverse", "reverse.unit = byte\n");
    size_t len;
    char *out = test_chain_run(&tc, "\xc3\xa9x", 3, 0, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(out, "x\xa9\xc3", 3);
    free(out);
    test_chain_free(&tc);
}
END_TEST

START_TEST(failure_names_the_plugin_and_stops_the_chain)
{
    test_chain_t tc;
    char ini[512];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n[service t]\nlisten = tcp://127.0.0.1:0\n"
             "transform = failing\n", TEST_PLUGIN_DIR);
    ck_assert_ptr_null(test_chain_try(&tc, ini));
    char err[320];
    ck_assert_int_eq(test_chain_status(&tc, "please fail", 11, 0, err,
                                       sizeof err), MORPHD_RUN_FAILED);
    ck_assert_str_eq(err, "plugin failing: asked to fail");
    /* the next message is served */
    char *ok = test_chain_str(&tc, "fine");
    ck_assert_str_eq(ok, "fine");
    free(ok);
    test_chain_free(&tc);
}
END_TEST

/* A stage cannot grow its output past the service's limit. */
START_TEST(output_is_bounded)
{
    test_chain_t tc;
    test_chain_init(&tc, "uppercase", "max_message = 1K\n");
    size_t limit = tc.chain->out_limit;
    ck_assert_uint_ge(limit, 3 * 1024); /* room for any case mapping */
    /* ΐ (2 bytes) uppercases to 3 code points (6 bytes): 3x growth */
    size_t n = limit / 2 + 2;
    char *in = malloc(n);
    for (size_t i = 0; i + 1 < n; i += 2)
        memcpy(in + i, "\xce\x90", 2);
    char err[320];
    ck_assert_int_eq(test_chain_status(&tc, in, n & ~(size_t)1, 0, err,
                                       sizeof err), MORPHD_RUN_FAILED);
    ck_assert_msg(strstr(err, "exceeds the limit"), "%s", err);
    free(in);
    test_chain_free(&tc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("chain");
    TCase *tc = tcase_create("chain");
    tcase_add_test(tc, applies_left_to_right);
    tcase_add_test(tc, echo_is_the_identity);
    tcase_add_test(tc, same_plugin_twice_is_two_instances);
    tcase_add_test(tc, plugin_options_reach_the_plugin);
    tcase_add_test(tc, failure_names_the_plugin_and_stops_the_chain);
    tcase_add_test(tc, output_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
