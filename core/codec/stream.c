/*
 * stream.c -- framing = stream: every read is a message (a chunk), and
 * every reply goes out as it is.
 */
#include "codec/codec.h"

static morphd_decode_status_t stream_decode(const morphd_codec_t *c,
                                            void *state,
                                            const unsigned char *data,
                                            size_t len, size_t from, bool eof,
                                            morphd_decoded_t *d)
{
    (void)state; /* built-in codecs keep none */
    (void)c, (void)from, (void)eof;
    d->msg = data;
    d->len = len;
    d->used = len;
    d->frame = morphd_frame_none;
    return MORPHD_DECODE_MESSAGE;
}

const morphd_codec_ops_t morphd_codec_stream = {"stream", stream_decode};
