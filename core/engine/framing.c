/*
 * framing.c -- the line framer of framing.h.
 */
#include "engine/framing.h"

#include <string.h>

void morphd_framer_init(morphd_framer_t *f, size_t max_message)
{
    f->partial = (morphd_buf_t)MORPHD_BUF_INIT;
    f->max_message = max_message;
}

/* The length of a line without its "\n" or "\r\n". */
static size_t content_len(const unsigned char *line, size_t len_with_nl)
{
    size_t len = len_with_nl - 1;
    return len > 0 && line[len - 1] == '\r' ? len - 1 : len;
}

int morphd_framer_feed(morphd_framer_t *f, const unsigned char *data,
                       size_t len, morphd_line_cb cb, void *ctx,
                       size_t *consumed)
{
    const unsigned char *start = data;
    if (consumed != NULL)
        *consumed = len;
    /* A pending line may hold max_message bytes plus a '\r' that may turn
     * out to start its "\r\n". */
    const size_t max_pending = f->max_message + 1;
    while (len > 0) {
        const unsigned char *nl = memchr(data, '\n', len);
        if (nl == NULL) {
            if (len > max_pending - f->partial.len ||
                f->partial.len > max_pending)
                return MORPHD_FRAMER_TOO_LONG;
            return morphd_buf_append(&f->partial, data, len);
        }
        size_t n = (size_t)(nl - data) + 1;
        const unsigned char *line = data; /* zero-copy when the line is whole */
        size_t total = n;
        if (f->partial.len > 0) {
            if (n > max_pending + 1 - f->partial.len)
                return MORPHD_FRAMER_TOO_LONG;
            if (morphd_buf_append(&f->partial, data, n) != 0)
                return -1;
            line = f->partial.data;
            total = f->partial.len;
            f->partial.len = 0; /* the bytes stay valid during the call */
        }
        size_t clen = content_len(line, total);
        if (clen > f->max_message)
            return MORPHD_FRAMER_TOO_LONG;
        int rc = cb(ctx, line, clen, clen + 1 == total ? "\n" : "\r\n");
        data += n;
        len -= n;
        if (rc != 0) {
            if (consumed != NULL)
                *consumed = (size_t)(data - start);
            return rc;
        }
    }
    return 0;
}

int morphd_framer_finish(morphd_framer_t *f, morphd_line_cb cb, void *ctx)
{
    if (f->partial.len == 0)
        return 0;
    size_t n = f->partial.len;
    f->partial.len = 0;
    /* feed kept max_message + 1 bytes pending for a '\r' that might start
     * a "\r\n"; at the end of input no '\n' follows, so that byte is data
     * and the limit applies to all of it */
    if (n > f->max_message)
        return MORPHD_FRAMER_TOO_LONG;
    return cb(ctx, f->partial.data, n, "");
}

void morphd_framer_free(morphd_framer_t *f) { morphd_buf_free(&f->partial); }
