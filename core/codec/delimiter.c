/*
 * delimiter.c -- framing = delimiter: a message per run of bytes ended by
 * the delimiter (one or more bytes, `delimiter`), its reply with the
 * delimiter appended; a last message without one, at the end of input,
 * is answered without one, as a line is. A message over max_message
 * ends the connection as soon as that many bytes hold no delimiter.
 */
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"

static morphd_decode_status_t too_long(morphd_decoded_t *d)
{
    d->announced = 0;
    snprintf(d->reason, sizeof d->reason,
             "a message without its delimiter longer than max_message");
    return MORPHD_DECODE_TOO_LONG;
}

static morphd_decode_status_t delimiter_decode(const morphd_codec_t *c,
                                               void *state,
                                               const unsigned char *data,
                                               size_t len, size_t from,
                                               bool eof, morphd_decoded_t *d)
{
    (void)state; /* built-in codecs keep none */
    const unsigned char *delim = c->shape.tail;
    size_t k = c->shape.tail_len;
    const unsigned char *at = NULL;
    if (k == 1) {
        if (from < len)
            at = memchr(data + from, delim[0], len - from);
    } else if (len >= k) {
        /* a delimiter may begin in the last k - 1 bytes seen before */
        size_t start = from > k - 1 ? from - (k - 1) : 0;
        at = memmem(data + start, len - start, delim, k);
    }
    if (at == NULL) {
        size_t whole = len >= k ? len - (k - 1) : 0; /* can hold no delimiter */
        if (!eof) {
            if (whole > c->max_message)
                return too_long(d);
            d->scanned = len;
            return MORPHD_DECODE_MORE;
        }
        if (len > c->max_message)
            return too_long(d);
        return morphd_decode_last(c, data, len, d);
    }
    size_t n = (size_t)(at - data);
    if (n > c->max_message)
        return too_long(d);
    d->msg = data;
    d->len = n;
    d->used = n + k;
    d->frame = (morphd_frame_t){&c->shape, NULL, 0, 0, NULL};
    return MORPHD_DECODE_MESSAGE;
}

const morphd_codec_ops_t morphd_codec_delimiter = {"delimiter",
                                                   delimiter_decode};
