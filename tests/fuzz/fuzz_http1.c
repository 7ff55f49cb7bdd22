/* The HTTP/1.1 request reader (core/codec/http1.c) on arbitrary bytes.
 * Properties, beyond not crashing:
 * - a request head read whole is read the same in pieces: every shorter
 *   prefix of its head reads MORE, and a bad one reads MORE or the same
 *   status at every prefix (no byte reaches a plugin before the request
 *   is complete and valid, and a split cannot change the verdict);
 * - what is read lies inside the input and the head within its limits;
 *   an error always has a status and a reason;
 * - a chunked body read whole is read the same in pieces (every prefix
 *   MORE, nothing appended), is no longer than max_body, and written
 *   back as one chunk reads back to the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http1.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_http1: property failed: %s\n", #cond);       \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define MAX_HEAD 1024
#define MAX_BODY 512

static bool inside(morphd_http1_span_t s, const unsigned char *data,
                   size_t size)
{
    return s.p == NULL ? s.len == 0
                       : s.p >= data && s.p + s.len <= data + size;
}

static void body(const unsigned char *data, size_t size)
{
    morphd_buf_t out = MORPHD_BUF_INIT;
    morphd_http1_request_t r;
    size_t used = 0, len = 0;
    morphd_http1_status_t st =
        morphd_http1_chunked(data, size, MAX_BODY, &out, &used, &len, &r);
    if (st == MORPHD_HTTP1_ERROR)
        CHECK((r.status == 400 || r.status == 413) && r.reason != NULL);
    if (st != MORPHD_HTTP1_DONE) {
        CHECK(out.len == 0);
        morphd_buf_free(&out);
        return;
    }
    CHECK(used <= size && len == out.len && len <= MAX_BODY);
    morphd_buf_t piece = MORPHD_BUF_INIT;
    for (size_t k = 0; k < used; k++) {
        size_t u, l;
        CHECK(morphd_http1_chunked(data, k, MAX_BODY, &piece, &u, &l, &r) ==
              MORPHD_HTTP1_MORE);
        CHECK(piece.len == 0);
    }
    /* the body as one chunk reads back the same */
    char wire[MAX_BODY + 64];
    size_t w = 0;
    if (len > 0) { /* (an empty body is the last chunk alone) */
        w = (size_t)snprintf(wire, sizeof wire, "%zx\r\n", len);
        memcpy(wire + w, out.data, len);
        memcpy(wire + w + len, "\r\n", 2);
        w += len + 2;
    }
    memcpy(wire + w, "0\r\n\r\n", 5);
    w += 5;
    size_t u, l;
    CHECK(morphd_http1_chunked((unsigned char *)wire, w, MAX_BODY, &piece, &u,
                               &l, &r) == MORPHD_HTTP1_DONE);
    CHECK(u == w && l == len && piece.len == len);
    CHECK(len == 0 || memcmp(piece.data, out.data, len) == 0);
    morphd_buf_free(&piece);
    morphd_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size > 0 && data[0] == 'C') { /* a chunked body, after the 'C' */
        body(data + 1, size - 1);
        return 0;
    }
    morphd_http1_request_t r;
    morphd_http1_status_t st =
        morphd_http1_parse_head(data, size, MAX_HEAD, &r);
    int status = st == MORPHD_HTTP1_ERROR ? r.status : 0;
    if (st == MORPHD_HTTP1_ERROR)
        CHECK(status >= 400 && status < 600 && r.reason != NULL);
    if (st == MORPHD_HTTP1_DONE) {
        CHECK(r.head_len <= size && r.head_len > 0);
        CHECK(inside(r.method, data, size) && r.method.len > 0);
        CHECK(inside(r.target, data, size) && r.target.len > 0);
        CHECK(inside(r.content_type, data, size));
        CHECK(r.target.len <= MORPHD_HTTP1_MAX_LINE);
        CHECK(!(r.chunked && r.has_length));
        CHECK(r.minor <= 1);
    }
    size_t upto = st == MORPHD_HTTP1_DONE ? r.head_len : size;
    for (size_t k = 0; k < upto; k++) {
        morphd_http1_request_t p;
        morphd_http1_status_t sp = morphd_http1_parse_head(data, k, MAX_HEAD, &p);
        if (st == MORPHD_HTTP1_ERROR)
            CHECK(sp == MORPHD_HTTP1_MORE ||
                  (sp == MORPHD_HTTP1_ERROR && p.status == status));
        else
            CHECK(sp == MORPHD_HTTP1_MORE);
    }
    /* bytes after a whole head change nothing of it */
    if (st == MORPHD_HTTP1_DONE && r.head_len < size) {
        morphd_http1_request_t p;
        CHECK(morphd_http1_parse_head(data, r.head_len, MAX_HEAD, &p) ==
                  MORPHD_HTTP1_DONE &&
              p.head_len == r.head_len && p.keep_alive == r.keep_alive &&
              p.length == r.length && p.chunked == r.chunked);
    }
    return 0;
}
