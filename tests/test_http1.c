/* Issue 24: HTTP/1.1 requests read from bytes (core/codec/http1.c): what
 * is read, every status a malformed or smuggling-shaped request gets, and
 * that a request cut at any byte reads MORE until it is whole. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http.h"
#include "codec/http1.h"

static morphd_http1_status_t head(const char *text, morphd_http1_request_t *r)
{
    return morphd_http1_parse_head((const unsigned char *)text, strlen(text),
                                   16384, r);
}

/* Every prefix of a request's head reads MORE (or, for a bad one, the
 * same error once its deciding byte is there); the whole reads `want`. */
static void every_prefix(const char *text, morphd_http1_status_t want,
                         int status)
{
    size_t n = strlen(text);
    morphd_http1_request_t r;
    if (head(text, &r) == MORPHD_HTTP1_DONE)
        n = r.head_len; /* what follows the head is the body's */
    for (size_t k = 0; k < n; k++) {
        morphd_http1_status_t st =
            morphd_http1_parse_head((const unsigned char *)text, k, 16384, &r);
        /* an error shows as soon as the byte that decides it is there */
        if (st == MORPHD_HTTP1_ERROR) {
            ck_assert_int_eq(want, MORPHD_HTTP1_ERROR);
            ck_assert_int_eq(r.status, status);
            return;
        }
        ck_assert_msg(st == MORPHD_HTTP1_MORE, "%zu of %zu bytes: %d", k, n, st);
    }
    ck_assert_int_eq(head(text, &r), want);
    if (want == MORPHD_HTTP1_ERROR)
        ck_assert_int_eq(r.status, status);
}

START_TEST(a_post_is_read)
{
    static const char req[] = "POST /up?x=1 HTTP/1.1\r\nHost: a\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 5\r\n\r\nhello";
    morphd_http1_request_t r;
    ck_assert_int_eq(head(req, &r), MORPHD_HTTP1_DONE);
    ck_assert_uint_eq(r.method.len, 4);
    ck_assert_int_eq(memcmp(r.method.p, "POST", 4), 0);
    ck_assert_uint_eq(r.target.len, 7);
    ck_assert_int_eq(memcmp(r.target.p, "/up?x=1", 7), 0);
    ck_assert_uint_eq(r.minor, 1);
    ck_assert(r.has_length);
    ck_assert_uint_eq(r.length, 5);
    ck_assert(r.keep_alive);
    ck_assert_uint_eq(r.content_type.len, strlen("text/plain; charset=utf-8"));
    ck_assert_uint_eq(r.head_len, strlen(req) - 5);
    ck_assert_uint_eq(r.n_fields, 3);
    every_prefix(req, MORPHD_HTTP1_DONE, 0);
}
END_TEST

START_TEST(versions_and_keep_alive)
{
    morphd_http1_request_t r;
    ck_assert_int_eq(head("POST / HTTP/1.0\r\n\r\n", &r), MORPHD_HTTP1_DONE);
    ck_assert(!r.keep_alive);
    ck_assert_uint_eq(r.minor, 0);
    ck_assert_int_eq(head("POST / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r),
                     MORPHD_HTTP1_DONE);
    ck_assert(r.keep_alive);
    ck_assert_int_eq(head("POST / HTTP/1.1\r\nHost: a\r\nConnection: te, close\r\n\r\n", &r),
                     MORPHD_HTTP1_DONE);
    ck_assert(!r.keep_alive);
    /* LF alone ends a line; empty lines before the request are skipped */
    ck_assert_int_eq(head("\r\n\nPOST / HTTP/1.1\nHost: a\n\n", &r),
                     MORPHD_HTTP1_DONE);
    ck_assert_uint_eq(r.skipped, 3);
    ck_assert_int_eq(head("POST / HTTP/1.9\r\nHost: a\r\n\r\n", &r), MORPHD_HTTP1_DONE);
    ck_assert_uint_eq(r.minor, 1);
    ck_assert_int_eq(head("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n", &r),
                     MORPHD_HTTP1_DONE);
    ck_assert(r.expect_continue);
}
END_TEST

START_TEST(bad_requests_get_their_status)
{
    static const struct { const char *req; int status; const char *why; } bad[] = {
        {"POST / HTTP/2.0\r\n\r\n", 505, "other than 1.x"},
        {"POST  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "request line"},
        {"POST / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "version"},
        {"PO\rST / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare CR"},
        {"POST / HTTP/1.1\r\n\r\n", 400, "without Host"},
        {"POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host given twice"},
        {"POST / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace before"},
        {"POST / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n", 400, "obs-fold"},
        {"POST / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "bare CR"},
        {"POST / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400, "control"},
        {"POST / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", 400, "malformed header"},
        {"POST / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400, "without a name"},
        /* the smuggling shapes */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
         "Transfer-Encoding: chunked\r\n\r\n", 400, "both"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
         "Content-Length: 6\r\n\r\n", 400, "twice, differently"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400, "not a number"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "not a number"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "other than chunked"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n", 400, "twice"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"},
        {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 101-nothing\r\n\r\n", 417, "Expect"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        morphd_http1_request_t r;
        ck_assert_msg(head(bad[i].req, &r) == MORPHD_HTTP1_ERROR, "%zu", i);
        ck_assert_msg(r.status == bad[i].status, "%zu: %d", i, r.status);
        ck_assert_msg(strstr(r.reason, bad[i].why), "%zu: %s", i, r.reason);
        every_prefix(bad[i].req, MORPHD_HTTP1_ERROR, bad[i].status);
    }
    /* identical duplicates of Content-Length are one */
    morphd_http1_request_t r;
    ck_assert_int_eq(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                          "content-length: 3\r\n\r\n", &r), MORPHD_HTTP1_DONE);
    ck_assert_uint_eq(r.length, 3);
}
END_TEST

START_TEST(limits_414_and_431)
{
    size_t n = MORPHD_HTTP1_MAX_LINE + 64;
    char *line = malloc(n + 64);
    memcpy(line, "POST /", 6);
    memset(line + 6, 'a', n);
    strcpy(line + 6 + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    morphd_http1_request_t r;
    ck_assert_int_eq(head(line, &r), MORPHD_HTTP1_ERROR);
    ck_assert_int_eq(r.status, 414);
    /* without its end: refused once more than the longest line is there */
    ck_assert_int_eq(morphd_http1_parse_head((unsigned char *)line,
                                             MORPHD_HTTP1_MAX_LINE + 1, 16384, &r),
                     MORPHD_HTTP1_MORE);
    ck_assert_int_eq(morphd_http1_parse_head((unsigned char *)line,
                                             MORPHD_HTTP1_MAX_LINE + 2, 16384, &r),
                     MORPHD_HTTP1_ERROR);
    /* a line of exactly 8 KiB is fine */
    memset(line, 'a', MORPHD_HTTP1_MAX_LINE);
    memcpy(line, "POST /", 6);
    strcpy(line + MORPHD_HTTP1_MAX_LINE - 9, " HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(head(line, &r), MORPHD_HTTP1_DONE);
    free(line);

    char block[2048];
    strcpy(block, "POST / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 40; i++)
        strcat(block, "X-Filler: 0123456789012345678901234567890123\r\n");
    strcat(block, "\r\n");
    ck_assert_int_eq(morphd_http1_parse_head((unsigned char *)block,
                                             strlen(block), 1024, &r),
                     MORPHD_HTTP1_ERROR);
    ck_assert_int_eq(r.status, 431);
    ck_assert_int_eq(morphd_http1_parse_head((unsigned char *)block,
                                             strlen(block), 4096, &r),
                     MORPHD_HTTP1_DONE);
    ck_assert_uint_eq(r.n_fields, 41);
}
END_TEST

static morphd_http1_status_t chunked(const char *body, size_t max,
                                     morphd_buf_t *out, size_t *used,
                                     size_t *len, morphd_http1_request_t *r)
{
    return morphd_http1_chunked((const unsigned char *)body, strlen(body), max,
                                out, used, len, r);
}

START_TEST(chunked_bodies)
{
    static const char body[] = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
                               "Trailer: x\r\n\r\nNEXT";
    morphd_buf_t out = MORPHD_BUF_INIT;
    size_t used, len;
    morphd_http1_request_t r;
    ck_assert_int_eq(chunked(body, 1024, &out, &used, &len, &r), MORPHD_HTTP1_DONE);
    ck_assert_uint_eq(used, strlen(body) - 4);
    ck_assert_uint_eq(len, 11);
    ck_assert_uint_eq(out.len, 11);
    ck_assert_int_eq(memcmp(out.data, "hello world", 11), 0);
    /* every prefix: MORE, nothing kept */
    for (size_t k = 0; k < strlen(body) - 4; k++) {
        out.len = 0;
        ck_assert_int_eq(morphd_http1_chunked((const unsigned char *)body, k, 1024,
                                              &out, &used, &len, &r),
                         MORPHD_HTTP1_MORE);
        ck_assert_uint_eq(out.len, 0);
    }
    /* over max_message as soon as the sizes say so */
    ck_assert_int_eq(chunked("5\r\nhello\r\n7", 11, NULL, &used, &len, &r),
                     MORPHD_HTTP1_ERROR);
    ck_assert_int_eq(r.status, 413);
    ck_assert_int_eq(chunked("ffffffffffffffffffff", 1 << 20, NULL, &used, &len, &r),
                     MORPHD_HTTP1_ERROR);
    ck_assert_int_eq(r.status, 413);
    static const char *const bad[] = {
        "\r\n", "x\r\n", "5\r\nhelloX\r\n", "5 x\r\nhello\r\n", "5\rX\r\n",
        "0\r\nbad trailer\r\n\r\n", "0\r\n folded: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(chunked(bad[i], 1024, NULL, &used, &len, &r) ==
                          MORPHD_HTTP1_ERROR, "%zu", i);
        ck_assert_int_eq(r.status, 400);
    }
    morphd_buf_free(&out);
}
END_TEST

/* Header fields by name (any case) and by index, from a head read whole. */
START_TEST(fields_are_found_by_name_and_index)
{
    static const char head[] = "POST / HTTP/1.1\r\nHost: t\r\nX-A:  one \r\n"
                               "x-a: two\r\nEmpty:\r\n\r\n";
    const unsigned char *h = (const unsigned char *)head;
    morphd_http1_span_t n, v;
    ck_assert(morphd_http1_field(h, sizeof head - 1, "x-A", 0, &v));
    ck_assert_int_eq((int)v.len, 3);
    ck_assert(memcmp(v.p, "one", 3) == 0);
    ck_assert(morphd_http1_field(h, sizeof head - 1, "X-A", 1, &v));
    ck_assert(memcmp(v.p, "two", 3) == 0);
    ck_assert(!morphd_http1_field(h, sizeof head - 1, "X-A", 2, &v));
    ck_assert(morphd_http1_field(h, sizeof head - 1, "empty", 0, &v));
    ck_assert_int_eq((int)v.len, 0);
    ck_assert(!morphd_http1_field(h, sizeof head - 1, "X", 0, &v));
    ck_assert(!morphd_http1_field(h, sizeof head - 1, "POST / HTTP/1.1\r\nHost", 0, &v));
    ck_assert(morphd_http1_field_at(h, sizeof head - 1, NULL, 3, &n, &v));
    ck_assert(n.len == 5 && memcmp(n.p, "Empty", 5) == 0);
    ck_assert(!morphd_http1_field_at(h, sizeof head - 1, NULL, 4, &n, &v));
}
END_TEST

/* What a plugin sets is checked: no status without a body, no field that
 * could split the response or that morphd writes, a bounded amount; and
 * what passes is in the response. */
START_TEST(plugin_fields_are_checked_and_written)
{
    morphd_http_exchange_t x;
    memset(&x, 0, sizeof x);
    char why[256];
    ck_assert_int_eq(morphd_http_set_status(&x, 204, why, sizeof why), -1);
    ck_assert_int_eq(morphd_http_set_status(&x, 304, why, sizeof why), -1);
    ck_assert_int_eq(morphd_http_set_status(&x, 199, why, sizeof why), -1);
    ck_assert_int_eq(morphd_http_set_status(&x, 600, why, sizeof why), -1);
    ck_assert_int_eq(morphd_http_set_status(&x, 418, why, sizeof why), 0);
    ck_assert_int_eq(morphd_http_add_header(&x, "X-A", "a\r\nSet-Cookie: s",
                                            why, sizeof why), -1);
    ck_assert_msg(strstr(why, "control character") != NULL, "%s", why);
    ck_assert_int_eq(morphd_http_add_header(&x, "X A", "a", why, sizeof why), -1);
    ck_assert_int_eq(morphd_http_add_header(&x, "", "a", why, sizeof why), -1);
    const char *own[] = {"Content-Length", "transfer-encoding", "Connection",
                         "Date", "Server"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        ck_assert_int_eq(morphd_http_add_header(&x, own[i], "1", why,
                                                sizeof why), -1);
    ck_assert_int_eq(morphd_http_add_header(&x, "X-A", "1", why, sizeof why), 0);
    ck_assert_int_eq(morphd_http_add_header(&x, "Content-Type", "a/b", why,
                                            sizeof why), 0);
    ck_assert_int_eq(morphd_http_add_header(&x, "content-type", "c/d", why,
                                            sizeof why), 0);
    char big[MORPHD_HTTP_EXTRA_MAX];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(morphd_http_add_header(&x, "X-Big", big, why, sizeof why),
                     -1);
    morphd_frame_shape_t shape = {.length = MORPHD_LEN_HTTP};
    morphd_frame_t f = {&shape, (const unsigned char *)"text/in", 7, 0, &x};
    morphd_buf_t out = MORPHD_BUF_INIT;
    ck_assert_int_eq(morphd_buf_append(&out, "body", 4), 0);
    ck_assert_int_eq(morphd_http_frame_end(&f, &out, 0, 4, 0), 0);
    ck_assert_int_eq((int)morphd_http_overhead(&f, 4), (int)out.len - 4);
    ck_assert_int_eq(morphd_buf_append(&out, "", 1), 0);
    const char *r = (const char *)out.data;
    ck_assert_msg(strncmp(r, "HTTP/1.1 418 ", 13) == 0, "%s", r);
    ck_assert_msg(strstr(r, "\r\nX-A: 1\r\ncontent-type: c/d\r\n"), "%s", r);
    ck_assert_msg(strstr(r, "a/b") == NULL && strstr(r, "text/in") == NULL,
                  "%s", r);
    ck_assert_msg(strstr(r, "\r\n\r\nbody") != NULL, "%s", r);
    ck_assert_int_eq(x.answered, 418);
    /* a copy for a job keeps what was set, and its own head */
    morphd_http_exchange_t *y = morphd_http_exchange_copy(&x);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->status, 418);
    ck_assert_int_eq((int)y->extra.len, (int)x.extra.len);
    morphd_http_exchange_free(y);
    morphd_buf_free(&x.extra);
    morphd_buf_free(&out);
}
END_TEST

/* http_allow_origin's values. */
START_TEST(origins_are_checked)
{
    char why[256];
    const char *good[] = {"*", "https://app.example.com", "http://localhost:8080",
                          "http://[::1]:3000", "https://a-b.c"};
    const char *bad[] = {"https://app.example.com/", "app.example.com",
                         "ftp://x", "https://", "https://a:", "https://a:123456",
                         "https://a/b", "https://a b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(morphd_http_origin_valid(good[i], why, sizeof why), "%s",
                      good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(!morphd_http_origin_valid(bad[i], why, sizeof why), "%s",
                      bad[i]);
        ck_assert_msg(strstr(why, "scheme://host[:port]") != NULL, "%s", why);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http1");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, a_post_is_read);
    tcase_add_test(tc, versions_and_keep_alive);
    tcase_add_test(tc, bad_requests_get_their_status);
    tcase_add_test(tc, limits_414_and_431);
    tcase_add_test(tc, chunked_bodies);
    tcase_add_test(tc, fields_are_found_by_name_and_index);
    tcase_add_test(tc, plugin_fields_are_checked_and_written);
    tcase_add_test(tc, origins_are_checked);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
