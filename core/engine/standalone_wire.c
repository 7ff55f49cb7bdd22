/*
 * standalone_wire.c -- a connection's bytes through a framing and a
 * standalone chain (standalone_wire.h), in the order morphd's stream
 * connections answer: replies in their frames, a codec plugin's own
 * answers where its decode() gave them.
 */
#include <stdio.h>
#include <string.h>

#include "engine/standalone_wire.h"

void morphd_wire_init(morphd_wire_t *w, morphd_standalone_t *s,
                      const morphd_codec_t *codec)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->codec = *codec;
    w->decoder = (morphd_decoder_t)MORPHD_DECODER_INIT;
    if (s->has_codec) { /* this process's instance and state */
        morphd_standalone_codec(s, &w->codec);
        w->decoder.state = s->codec_state;
    }
}

static void say_failed(morphd_wire_t *w, const char *why)
{
    if (w->failed != NULL)
        w->failed(w->ctx, w->messages, why);
}

/* Runs one message and appends its reply, framed, to w->out. */
static int run_one(morphd_wire_t *w, const unsigned char *data, size_t len,
                   uint32_t flags, const morphd_frame_t *frame)
{
    const unsigned char *out;
    size_t out_len;
    char err[512];
    w->messages++;
    if (w->message != NULL && !(flags & MORPH_MSG_END && len == 0))
        w->message(w->ctx, data, len);
    int rc = morphd_standalone_apply(w->s, data, len, flags, &out, &out_len,
                                     NULL, err, sizeof err);
    if (rc == 1)
        return 0; /* the plugins asked for no reply: not even the ending */
    if (rc == 2) { /* deferred on a test's clock, which nothing here moves */
        morphd_standalone_abandon(w->s);
        say_failed(w, "still pending on the test's clock, given up (the "
                   "wire does not advance it)");
        return 0;
    }
    if (rc != 0) {
        say_failed(w, err);
        /* a codec plugin may say so in its protocol (resp: -ERR) */
        return morphd_frame_failed(frame, &w->out);
    }
    size_t mark;
    if (morphd_frame_begin(frame, &w->out, &mark) != 0 ||
        morphd_buf_append(&w->out, out, out_len) != 0 ||
        (rc = morphd_frame_end(frame, &w->out, mark, out_len)) < 0)
        return -1;
    if (rc > 0) {
        morphd_frame_explain(frame, out_len, err, sizeof err);
        say_failed(w, err);
    }
    return 0;
}

static int on_message(void *ctx, const unsigned char *msg, size_t len,
                      const morphd_frame_t *frame)
{
    morphd_wire_t *w = ctx;
    if (frame->shape == &morphd_shape_direct ||
        frame->shape == &morphd_shape_direct_close) { /* the codec's own */
        if (morphd_buf_append(&w->out, msg, len) != 0)
            return -1;
        w->closed_by_codec = frame->shape == &morphd_shape_direct_close;
        return w->closed_by_codec;
    }
    return run_one(w, msg, len, 0, frame);
}

/* After the decoder said rc: over when it refused, closed, or failed. */
static int decoded(morphd_wire_t *w, int rc)
{
    if (rc == MORPHD_DECODER_TOO_LONG || rc == MORPHD_DECODER_INVALID)
        w->refused = rc;
    if (rc != 0)
        w->ended = true;
    return rc == -1 ? -1 : 0;
}

int morphd_wire_feed(morphd_wire_t *w, const void *data, size_t len)
{
    if (w->ended)
        return 0;
    if (w->codec.chunks)
        return run_one(w, data, len, MORPH_MSG_CHUNK, &morphd_frame_none);
    return decoded(w, morphd_decoder_feed(&w->decoder, &w->codec, data, len,
                                          on_message, w, NULL));
}

int morphd_wire_finish(morphd_wire_t *w)
{
    if (w->ended)
        return 0;
    w->ended = true;
    if (w->codec.chunks)
        return run_one(w, NULL, 0, MORPH_MSG_CHUNK | MORPH_MSG_END,
                       &morphd_frame_none);
    int rc = morphd_decoder_finish(&w->decoder, &w->codec, on_message, w);
    if (decoded(w, rc) != 0)
        return -1;
    if (rc == 0 && w->s->chain->line_end) /* a trailer */
        return run_one(w, NULL, 0, MORPH_MSG_END, &morphd_frame_none);
    return 0;
}

int morphd_wire_reconnect(morphd_wire_t *w, char *err, size_t err_size)
{
    morphd_decoder_free(&w->decoder);
    w->decoder = (morphd_decoder_t)MORPHD_DECODER_INIT;
    w->out.len = 0;
    w->messages = 0;
    w->ended = false;
    w->refused = 0;
    w->closed_by_codec = false;
    int rc = morphd_standalone_reconnect(w->s, err, err_size);
    w->decoder.state = w->s->codec_state;
    return rc;
}

void morphd_wire_free(morphd_wire_t *w)
{
    morphd_decoder_free(&w->decoder);
    morphd_buf_free(&w->out);
}
