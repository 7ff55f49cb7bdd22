/*
 * line.c -- framing = line: a message per "\n" or "\r\n"-terminated line,
 * answered with the same ending; a last line without one, at the end of
 * input, is answered without one. A line over max_message ends the
 * connection: it is refused once max_message + 2 bytes hold no '\n'.
 */
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"

static morphd_decode_status_t too_long(morphd_decoded_t *d)
{
    d->announced = 0;
    snprintf(d->reason, sizeof d->reason, "a line longer than max_message");
    return MORPHD_DECODE_TOO_LONG;
}

static morphd_decode_status_t line_decode(const morphd_codec_t *c,
                                          void *state,
                                          const unsigned char *data,
                                          size_t len, size_t from, bool eof,
                                          morphd_decoded_t *d)
{
    (void)state; /* built-in codecs keep none */
    const unsigned char *nl =
        from < len ? memchr(data + from, '\n', len - from) : NULL;
    if (nl == NULL) {
        if (!eof) {
            /* max_message bytes and a '\r' that may start a "\r\n" */
            if (len > c->max_message + 1)
                return too_long(d);
            d->scanned = len;
            return MORPHD_DECODE_MORE;
        }
        /* at the end no '\n' follows: a '\r' at the end is data */
        if (len > c->max_message)
            return too_long(d);
        return morphd_decode_last(c, data, len, d);
    }
    size_t used = (size_t)(nl - data) + 1;
    size_t n = used - 1;
    bool crlf = n > 0 && data[n - 1] == '\r';
    n -= crlf;
    if (n > c->max_message)
        return too_long(d);
    d->msg = data;
    d->len = n;
    d->used = used;
    d->frame = (morphd_frame_t){crlf ? &c->shape_crlf : &c->shape, NULL, 0, 0, NULL};
    return MORPHD_DECODE_MESSAGE;
}

const morphd_codec_ops_t morphd_codec_line = {"line", line_decode};
