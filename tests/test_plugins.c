/* The bundled plugins: uppercase, reverse and echo, on UTF-8 edge cases. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void assert_transform(const char *transform, const char *extra,
                             const char *in, const char *expected)
{
    test_chain_t tc;
    test_chain_init(&tc, transform, extra);
    char *out = test_chain_str(&tc, in);
    ck_assert_msg(strcmp(out, expected) == 0, "%s('%s') = '%s', expected '%s'",
                  transform, in, out, expected);
    free(out);
    test_chain_free(&tc);
}

/* --- uppercase ------------------------------------------------------------- */

START_TEST(uppercase_ascii)
{
    assert_transform("uppercase", NULL, "hello world", "HELLO WORLD");
    assert_transform("uppercase", NULL, "", "");
    assert_transform("uppercase", NULL, "MiXeD 123 {}~", "MIXED 123 {}~");
}
END_TEST

/* Every ASCII byte at every offset (the fast path works 8 bytes at a
 * time) matches the C locale's toupper. */
START_TEST(uppercase_all_ascii_at_all_offsets)
{
    test_chain_t tc;
    test_chain_init(&tc, "uppercase", NULL);
    unsigned char in[128 + 16], want[128 + 16];
    for (int shift = 0; shift < 16; shift++) {
        size_t n = 128 + (size_t)shift;
        for (size_t i = 0; i < n; i++) {
            in[i] = (unsigned char)((i * 37 + (size_t)shift) % 128);
            want[i] = (in[i] >= 'a' && in[i] <= 'z') ? (unsigned char)(in[i] - 32)
                                                     : in[i];
        }
        size_t len;
        char *out = test_chain_run(&tc, in, n, 0, &len);
        ck_assert_uint_eq(len, n);
        ck_assert_mem_eq(out, want, n);
        free(out);
    }
    test_chain_free(&tc);
}
END_TEST

/* Every length from 0 to 80 (the fast path does 16 bytes at a time and an
 * overlapping last 16), and a non-ASCII character at every place of every
 * length to 40 (the fast path gives up after writing part of the output,
 * and the general path starts over): the same as a byte-by-byte model. */
START_TEST(uppercase_every_length_and_a_letter_at_every_place)
{
    test_chain_t tc;
    test_chain_init(&tc, "uppercase", NULL);
    unsigned char in[96], want[96];
    for (size_t n = 0; n <= 80; n++) {
        for (size_t i = 0; i < n; i++) {
            in[i] = (unsigned char)(' ' + (i * 7 + n) % 95);
            want[i] = (in[i] >= 'a' && in[i] <= 'z') ? (unsigned char)(in[i] - 32)
                                                     : in[i];
        }
        size_t len;
        char *out = test_chain_run(&tc, in, n, 0, &len);
        ck_assert_uint_eq(len, n);
        if (n > 0)
            ck_assert_mem_eq(out, want, n);
        free(out);
        for (size_t at = 0; n <= 40 && at + 2 <= n; at++) {
            unsigned char in2[96], want2[96];
            memcpy(in2, in, n);
            memcpy(want2, want, n);
            memcpy(in2 + at, "\xc3\xa9", 2);   /* e acute */
            memcpy(want2 + at, "\xc3\x89", 2); /* E acute */
            out = test_chain_run(&tc, in2, n, 0, &len);
            ck_assert_uint_eq(len, n);
            ck_assert_mem_eq(out, want2, n);
            free(out);
        }
    }
    test_chain_free(&tc);
}
END_TEST

START_TEST(uppercase_full_unicode_mappings)
{
    assert_transform("uppercase", NULL, "é", "É");
    assert_transform("uppercase", NULL, "straße", "STRASSE");   /* ß -> SS */
    assert_transform("uppercase", NULL, "ﬁne", "FINE");         /* ﬁ -> FI */
    assert_transform("uppercase", NULL, "ǆ", "Ǆ");
    assert_transform("uppercase", NULL, "αβγ ѐ", "ΑΒΓ Ѐ");
    /* combining marks stay attached */
    assert_transform("uppercase", NULL, "e\xcc\x81t\xc3\xa9", "E\xcc\x81T\xc3\x89");
    /* emoji and CJK are unchanged */
    assert_transform("uppercase", NULL, "ok 👍🏽 日本", "OK 👍🏽 日本");
}
END_TEST

START_TEST(uppercase_locale_option)
{
    assert_transform("uppercase", "uppercase.locale = tr\n", "istanbul", "İSTANBUL");
    assert_transform("uppercase", NULL, "istanbul", "ISTANBUL");
}
END_TEST

START_TEST(uppercase_rejects_unknown_option)
{
    test_chain_t tc;
    char ini[512];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\n[service t]\n"
             "listen = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "uppercase.colour = red\n", PLUGIN_DIR);
    char *e = test_chain_try(&tc, ini);
    ck_assert_ptr_nonnull(e);
    /* declared options: the host's message, at the option's own line */
    ck_assert_msg(strstr(e, "test.ini:6: unknown option 'uppercase.colour'"),
                  "%s", e);
    free(e);
}
END_TEST

/* Invalid UTF-8 passes through unchanged; valid text around it is mapped. */
START_TEST(uppercase_invalid_bytes_pass_through)
{
    test_chain_t tc;
    test_chain_init(&tc, "uppercase", NULL);
    static const struct {
        const char *in, *out;
        size_t len;
    } cases[] = {
        {"a\xff" "b", "A\xff" "B", 3},
        {"\xc3(x", "\xc3(X", 3},                 /* lead without trail */
        {"\xc0\xafz", "\xc0\xafZ", 3},           /* overlong */
        {"\xed\xa0\x80q", "\xed\xa0\x80Q", 4},   /* surrogate */
        {"\xe9t\xc3\xa9", "\xe9T\xc3\x89", 4},   /* Latin-1 next to UTF-8 */
        {"x\0y", "X\0Y", 3},                     /* NUL is data */
        {"\xf4\x90\x80\x80", "\xf4\x90\x80\x80", 4}, /* beyond U+10FFFF */
        {"end\xe2\x82", "END\xe2\x82", 5},       /* truncated at the end */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len;
        char *out = test_chain_run(&tc, cases[i].in, cases[i].len, 0, &len);
        ck_assert_msg(len == cases[i].len && memcmp(out, cases[i].out, len) == 0,
                      "case %zu", i);
        free(out);
    }
    test_chain_free(&tc);
}
END_TEST

/* Stream framing: a multi-byte character split across two chunks at any
 * point is still uppercased, and nothing is lost at the end. */
START_TEST(uppercase_split_sequences_in_stream)
{
    const char *in = "aé€𝔞ß!\xc3";  /* 1,2,3,4,2-byte chars; a dangling lead */
    const char *expected = "AÉ€𝔞SS!\xc3";
    size_t n = strlen(in);
    for (size_t cut = 0; cut <= n; cut++) {
        test_chain_t tc;
        test_chain_init(&tc, "uppercase", NULL);
        ck_assert(tc.open); /* uppercase keeps per-connection state */
        size_t l1, l2, l3;
        char *o1 = test_chain_run(&tc, in, cut, MORPH_MSG_CHUNK, &l1);
        char *o2 = test_chain_run(&tc, in + cut, n - cut, MORPH_MSG_CHUNK, &l2);
        char *o3 = test_chain_run(&tc, NULL, 0, MORPH_MSG_CHUNK | MORPH_MSG_END,
                                  &l3);
        char joined[64];
        memcpy(joined, o1, l1);
        memcpy(joined + l1, o2, l2);
        memcpy(joined + l1 + l2, o3, l3);
        joined[l1 + l2 + l3] = '\0';
        ck_assert_msg(strcmp(joined, expected) == 0, "cut at %zu: '%s'", cut,
                      joined);
        free(o1);
        free(o2);
        free(o3);
        test_chain_free(&tc);
    }
}
END_TEST

START_TEST(uppercase_one_byte_at_a_time)
{
    const char *in = "größe 𝔞";
    test_chain_t tc;
    test_chain_init(&tc, "uppercase", NULL);
    char joined[64] = "";
    for (size_t i = 0; in[i]; i++) {
        size_t l;
        char *o = test_chain_run(&tc, in + i, 1, MORPH_MSG_CHUNK, &l);
        strncat(joined, o, l);
        free(o);
    }
    ck_assert_str_eq(joined, "GRÖSSE 𝔞");
    test_chain_free(&tc);
}
END_TEST

/* --- reverse --------------------------------------------------------------- */

START_TEST(reverse_ascii_and_line_ending)
{
    assert_transform("reverse", NULL, "hello", "olleh");
    assert_transform("reverse", NULL, "hello\n", "olleh\n");
    assert_transform("reverse", NULL, "hello\r\n", "olleh\r\n");
    assert_transform("reverse", NULL, "", "");
    assert_transform("reverse", NULL, "\n", "\n");
}
END_TEST

START_TEST(reverse_keeps_grapheme_clusters)
{
    /* e + combining acute stays one unit */
    assert_transform("reverse", NULL, "ne\xcc\x81" "e", "ee\xcc\x81" "n");
    /* flags (regional indicator pairs) */
    assert_transform("reverse", NULL, "🇫🇷🇩🇪", "🇩🇪🇫🇷");
    /* a ZWJ family and a skin-tone modifier */
    assert_transform("reverse", NULL, "a👨‍👩‍👧b👍🏽", "👍🏽b👨‍👩‍👧a");
    /* Hangul syllables from jamo, and CRLF inside stays together */
    assert_transform("reverse", NULL, "x\r\ny", "y\r\nx");
}
END_TEST

START_TEST(reverse_codepoint_unit_splits_combining_marks)
{
    assert_transform("reverse", "reverse.unit = codepoint\n", "ne\xcc\x81",
                     "\xcc\x81" "en");
}
END_TEST

/* Invalid UTF-8: the output is a permutation of the input's bytes. */
START_TEST(reverse_invalid_bytes_are_permuted_not_changed)
{
    const char *ins[] = {("a\xff" "b"), "\xc3(", "\xe2\x82", "\xed\xa0\x80z",
                         "\x80\x80\x80", "ok\xf0\x9f\x98"};
    const char *units[] = {"grapheme", "codepoint", "byte"};
    for (size_t u = 0; u < 3; u++) {
        char opt[64];
        snprintf(opt, sizeof opt, "reverse.unit = %s\n", units[u]);
        test_chain_t tc;
        test_chain_init(&tc, "reverse", opt);
        for (size_t i = 0; i < sizeof ins / sizeof *ins; i++) {
            size_t n = strlen(ins[i]), len;
            char *out = test_chain_run(&tc, ins[i], n, 0, &len);
            ck_assert_uint_eq(len, n);
            int count_in[256] = {0}, count_out[256] = {0};
            for (size_t k = 0; k < n; k++) {
                count_in[(unsigned char)ins[i][k]]++;
                count_out[(unsigned char)out[k]]++;
            }
            ck_assert_msg(memcmp(count_in, count_out, sizeof count_in) == 0,
                          "unit %s, case %zu: bytes changed", units[u], i);
            /* reversing twice gives the input back */
            char *back = test_chain_run(&tc, out, len, 0, &len);
            if (u == 2)
                ck_assert_mem_eq(back, ins[i], n);
            free(back);
            free(out);
        }
        test_chain_free(&tc);
    }
}
END_TEST

/* --- echo ------------------------------------------------------------------ */

START_TEST(echo_returns_binary_unchanged)
{
    test_chain_t tc;
    test_chain_init(&tc, "echo", NULL);
    unsigned char in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (unsigned char)i;
    size_t len;
    char *out = test_chain_run(&tc, in, sizeof in, 0, &len);
    ck_assert_uint_eq(len, sizeof in);
    ck_assert_mem_eq(out, in, sizeof in);
    free(out);
    test_chain_free(&tc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("plugins");
    TCase *up = tcase_create("uppercase");
    tcase_add_test(up, uppercase_ascii);
    tcase_add_test(up, uppercase_all_ascii_at_all_offsets);
    tcase_add_test(up, uppercase_every_length_and_a_letter_at_every_place);
    tcase_add_test(up, uppercase_full_unicode_mappings);
    tcase_add_test(up, uppercase_locale_option);
    tcase_add_test(up, uppercase_rejects_unknown_option);
    tcase_add_test(up, uppercase_invalid_bytes_pass_through);
    tcase_add_test(up, uppercase_split_sequences_in_stream);
    tcase_add_test(up, uppercase_one_byte_at_a_time);
    suite_add_tcase(s, up);
    TCase *rev = tcase_create("reverse");
    tcase_add_test(rev, reverse_ascii_and_line_ending);
    tcase_add_test(rev, reverse_keeps_grapheme_clusters);
    tcase_add_test(rev, reverse_codepoint_unit_splits_combining_marks);
    tcase_add_test(rev, reverse_invalid_bytes_are_permuted_not_changed);
    suite_add_tcase(s, rev);
    TCase *echo = tcase_create("echo");
    tcase_add_test(echo, echo_returns_binary_unchanged);
    suite_add_tcase(s, echo);
    return s;
}

MORPH_TEST_MAIN(suite)
