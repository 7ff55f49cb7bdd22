/* Properties of the line framer: the same bytes framed whole or cut at any
 * points give the same lines, endings, and the same overlong verdict; and
 * no line handed out, the last one at end of input included, is longer
 * than max_message. The
 * first byte picks max_message, the next two the cut points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/framing.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

typedef struct record {
    unsigned char *buf;
    size_t len, cap;
    size_t max; /* max_message: no line handed out may be longer */
} record_t;

static int put(void *ctx, const unsigned char *line, size_t len,
               const char *ending)
{
    record_t *r = ctx;
    if (len > r->max) { /* property: no line, last one included, is longer */
        fprintf(stderr, "fuzz: a %zu-byte line with max_message %zu\n", len,
                r->max);
        abort();
    }
    size_t need = r->len + len + 8;
    if (need > r->cap) {
        r->cap = need * 2;
        r->buf = realloc(r->buf, r->cap);
    }
    /* length-prefixed, so lines cannot run into each other */
    memcpy(r->buf + r->len, &len, sizeof len < 4 ? sizeof len : 4);
    r->len += 4;
    memcpy(r->buf + r->len, line, len);
    r->len += len;
    r->buf[r->len++] = (unsigned char)(ending[0] ? ending[0] : '$');
    r->buf[r->len++] = (unsigned char)strlen(ending);
    return 0;
}

static int frame(const unsigned char *in, size_t n, size_t max,
                 const size_t *cuts, size_t n_cuts, record_t *r)
{
    morphd_framer_t f;
    morphd_framer_init(&f, max);
    r->max = max;
    size_t at = 0;
    int rc = 0;
    for (size_t k = 0; k <= n_cuts && rc == 0; k++) {
        size_t end = k < n_cuts ? cuts[k] : n;
        rc = morphd_framer_feed(&f, in + at, end - at, put, r, NULL);
        at = end;
    }
    if (rc == 0)
        rc = morphd_framer_finish(&f, put, r);
    morphd_framer_free(&f);
    return rc;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t max = 1 + data[0] % 64;
    const unsigned char *in = data + 3;
    size_t n = size - 3;
    size_t cuts[2] = {n ? data[1] % (n + 1) : 0, n ? data[2] % (n + 1) : 0};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }
    record_t whole = {0}, pieces = {0};
    int rc1 = frame(in, n, max, NULL, 0, &whole);
    int rc2 = frame(in, n, max, cuts, 2, &pieces);
    if (rc1 != rc2 || whole.len != pieces.len ||
        (whole.len && memcmp(whole.buf, pieces.buf, whole.len) != 0)) {
        fprintf(stderr, "fuzz: framing at cuts %zu,%zu differs (rc %d vs %d)\n",
                cuts[0], cuts[1], rc1, rc2);
        abort();
    }
    free(whole.buf);
    free(pieces.buf);
    return 0;
}
