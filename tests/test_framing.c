/* The line framer: lines at any split points, endings, limits. */
#include <stdlib.h>
#include <string.h>

#include "engine/framing.h"
#include "harness.h"

typedef struct collected {
    char out[4096]; /* lines joined as "<line>|<ending-kind>;" */
    size_t len;
    int n;
} collected_t;

static int collect(void *ctx, const unsigned char *line, size_t len,
                   const char *ending)
{
    collected_t *c = ctx;
    memcpy(c->out + c->len, line, len);
    c->len += len;
    const char *kind = strcmp(ending, "\n") == 0     ? "|LF;"
                       : strcmp(ending, "\r\n") == 0 ? "|CRLF;"
                                                     : "|EOF;";
    memcpy(c->out + c->len, kind, strlen(kind));
    c->len += strlen(kind);
    c->out[c->len] = '\0';
    c->n++;
    return 0;
}

START_TEST(whole_lines_in_one_read)
{
    morphd_framer_t f;
    collected_t c = {0};
    morphd_framer_init(&f, 100);
    const char *in = "one\ntwo\r\nthree";
    ck_assert_int_eq(morphd_framer_feed(&f, (const unsigned char *)in,
                                        strlen(in), collect, &c, NULL), 0);
    ck_assert_str_eq(c.out, "one|LF;two|CRLF;");
    ck_assert_int_eq(morphd_framer_finish(&f, collect, &c), 0);
    ck_assert_str_eq(c.out, "one|LF;two|CRLF;three|EOF;");
    morphd_framer_free(&f);
}
END_TEST

/* Every way of cutting the input in two or three pieces frames the same. */
START_TEST(any_split_points_give_the_same_lines)
{
    const char *in = "alpha\nbe\r\nta\n\ngamma\r\n\r\nlast";
    size_t n = strlen(in);
    collected_t whole = {0};
    morphd_framer_t f;
    morphd_framer_init(&f, 100);
    morphd_framer_feed(&f, (const unsigned char *)in, n, collect, &whole, NULL);
    morphd_framer_finish(&f, collect, &whole);
    morphd_framer_free(&f);
    ck_assert_int_eq(whole.n, 7);

    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++) {
            collected_t c = {0};
            morphd_framer_init(&f, 100);
            const unsigned char *p = (const unsigned char *)in;
            ck_assert_int_eq(morphd_framer_feed(&f, p, a, collect, &c, NULL), 0);
            ck_assert_int_eq(morphd_framer_feed(&f, p + a, b - a, collect, &c, NULL), 0);
            ck_assert_int_eq(morphd_framer_feed(&f, p + b, n - b, collect, &c, NULL), 0);
            morphd_framer_finish(&f, collect, &c);
            morphd_framer_free(&f);
            ck_assert_msg(strcmp(c.out, whole.out) == 0,
                          "split %zu/%zu: '%s' != '%s'", a, b, c.out, whole.out);
        }
}
END_TEST

START_TEST(line_at_the_limit_passes_one_over_fails)
{
    morphd_framer_t f;
    collected_t c = {0};
    morphd_framer_init(&f, 5);
    ck_assert_int_eq(morphd_framer_feed(&f, (const unsigned char *)"12345\r\n",
                                        7, collect, &c, NULL), 0);
    ck_assert_str_eq(c.out, "12345|CRLF;");
    ck_assert_int_eq(morphd_framer_feed(&f, (const unsigned char *)"123456\n",
                                        7, collect, &c, NULL),
                     MORPHD_FRAMER_TOO_LONG);
    morphd_framer_free(&f);

    /* split across reads, the pending part is bounded too */
    morphd_framer_init(&f, 5);
    ck_assert_int_eq(morphd_framer_feed(&f, (const unsigned char *)"123", 3,
                                        collect, &c, NULL), 0);
    ck_assert_int_eq(morphd_framer_feed(&f, (const unsigned char *)"4567", 4,
                                        collect, &c, NULL),
                     MORPHD_FRAMER_TOO_LONG);
    ck_assert_uint_le(f.partial.cap, 4096); /* memory stayed small */
    morphd_framer_free(&f);
}
END_TEST

START_TEST(lines_before_an_overlong_one_are_delivered)
{
    morphd_framer_t f;
    collected_t c = {0};
    morphd_framer_init(&f, 4);
    ck_assert_int_eq(morphd_framer_feed(&f, (const unsigned char *)"ok\nwaytoolong\n",
                                        14, collect, &c, NULL),
                     MORPHD_FRAMER_TOO_LONG);
    ck_assert_str_eq(c.out, "ok|LF;");
    morphd_framer_free(&f);
}
END_TEST

/* A last line without newline is bounded like any other: a '\r' kept
 * pending for a "\r\n" that never came counts as data (issue 14, hole 7). */
START_TEST(last_line_at_end_of_input_is_bounded)
{
    morphd_framer_t f;
    collected_t c = {0};
    morphd_framer_init(&f, 4);
    ck_assert_int_eq(morphd_framer_feed(&f, (const unsigned char *)"abcd\r", 5,
                                        collect, &c, NULL), 0);
    ck_assert_int_eq(morphd_framer_finish(&f, collect, &c),
                     MORPHD_FRAMER_TOO_LONG);
    ck_assert_int_eq(c.n, 0);
    morphd_framer_free(&f);

    morphd_framer_init(&f, 4);
    ck_assert_int_eq(morphd_framer_feed(&f, (const unsigned char *)"abcd", 4,
                                        collect, &c, NULL), 0);
    ck_assert_int_eq(morphd_framer_finish(&f, collect, &c), 0);
    ck_assert_int_eq(c.n, 1);
    morphd_framer_free(&f);
}
END_TEST

START_TEST(binary_bytes_and_nul_are_data)
{
    morphd_framer_t f;
    collected_t c = {0};
    morphd_framer_init(&f, 100);
    const unsigned char in[] = {'a', 0, 0xff, 'b', '\n'};
    ck_assert_int_eq(morphd_framer_feed(&f, in, sizeof in, collect, &c, NULL), 0);
    ck_assert_int_eq(c.n, 1);
    ck_assert_mem_eq(c.out, "a\0\xff" "b|LF;", 8);
    morphd_framer_free(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("framing");
    TCase *tc = tcase_create("line");
    tcase_add_test(tc, whole_lines_in_one_read);
    tcase_add_test(tc, last_line_at_end_of_input_is_bounded);
    tcase_add_test(tc, any_split_points_give_the_same_lines);
    tcase_add_test(tc, line_at_the_limit_passes_one_over_fails);
    tcase_add_test(tc, lines_before_an_overlong_one_are_delivered);
    tcase_add_test(tc, binary_bytes_and_nul_are_data);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
