/*
 * frame.c -- a reply's frame (codec.h): the request's header bytes, a
 * length field, the reply, a tail. A fixed-size field gets its room
 * before the chain writes the reply, so the reply is never moved; a
 * varint or a netstring's decimal length, whose size depends on the
 * reply's, is put in front of it afterwards.
 */
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/http.h"
#include "codec/ws.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "morphd_frame_put_fixed stores little-endian fields as the "
               "host does");

const morphd_frame_t morphd_frame_none = {NULL, NULL, 0, 0, NULL};

size_t morphd_length_kind_size(morphd_length_kind_t kind)
{
    switch (kind) {
    case MORPHD_LEN_U8: return 1;
    case MORPHD_LEN_U16BE: case MORPHD_LEN_U16LE: return 2;
    case MORPHD_LEN_U24BE: return 3;
    case MORPHD_LEN_U32BE: case MORPHD_LEN_U32LE: return 4;
    case MORPHD_LEN_U64BE: case MORPHD_LEN_U64LE: return 8;
    default: return 0;
    }
}

/* A varint or decimal length in tmp (24 bytes); returns its size. */
static size_t put_variable(unsigned char *tmp, morphd_length_kind_t kind,
                           uint64_t v)
{
    size_t n = 0;
    if (kind == MORPHD_LEN_VARINT) {
        do {
            unsigned char b = v & 0x7f;
            v >>= 7;
            tmp[n++] = v ? (unsigned char)(b | 0x80) : b;
        } while (v);
        return n;
    }
    /* a netstring's "N:", without printf: it is on every reply */
    unsigned char rev[20];
    do {
        rev[n++] = (unsigned char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        tmp[i] = rev[n - 1 - i];
    tmp[n] = ':';
    return n + 1;
}

/* morphd_frame_begin past its fast path: a header or a length field. */
int morphd_frame_begin_header(const morphd_frame_t *f, morphd_buf_t *out)
{
    if (f->shape->length >= MORPHD_LEN_HTTP)
        return 0; /* the response's head goes in front at the end */
    size_t field = f->shape->field_size;
    if (field == 0 && f->shape->length != MORPHD_LEN_NONE)
        field = f->guess; /* room for a varint or decimal like the request's */
    size_t n = f->head_len + field;
    if (out->len + n > out->cap && morphd_buf_reserve(out, out->len + n) != 0)
        return -1;
    if (f->head_len > 0)
        memcpy(out->data + out->len, f->head, f->head_len);
    out->len += n; /* the field is written by morphd_frame_end */
    return 0;
}

/* The reply's length minus adjust, as the field holds it; false when it
 * is negative. */
static bool field_value(const morphd_frame_shape_t *s, size_t body_len,
                        uint64_t *v)
{
    if (s->adjust >= 0) {
        if ((uint64_t)body_len < (uint64_t)s->adjust)
            return false;
        *v = (uint64_t)body_len - (uint64_t)s->adjust;
    } else {
        *v = (uint64_t)body_len + (uint64_t)(-(s->adjust + 1)) + 1;
    }
    return true;
}

void morphd_frame_explain(const morphd_frame_t *f, size_t body_len, char *why,
                          size_t why_size)
{
    if (f->shape->length == MORPHD_LEN_PLUGIN) {
        snprintf(why, why_size, "the codec's encode() failed for a reply of "
                 "%zu bytes", body_len);
        return;
    }
    snprintf(why, why_size, "a reply of %zu bytes does not fit its length "
             "field (%s, length_adjust %lld)", body_len,
             morphd_length_kind_name(f->shape->length),
             (long long)f->shape->adjust);
}

/* morphd_frame_end past its fast paths: a length field, or a tail of more
 * than a byte (or no room for the one). */
int morphd_frame_end_header(const morphd_frame_t *f, morphd_buf_t *out,
                            size_t mark, size_t body_len, uint32_t reply)
{
    const morphd_frame_shape_t *s = f->shape;
    if (s->length >= MORPHD_LEN_HTTP) /* a response, or a piece of one */
        return morphd_http_frame_end(f, out, mark, body_len, reply);
    if (s->length == MORPHD_LEN_PLUGIN)
        return morphd_codec_plugin_encode(f, out, mark, body_len, 0);
    if (s->length == MORPHD_LEN_WS_TEXT || s->length == MORPHD_LEN_WS_BINARY)
        return morphd_ws_frame_end(f, out, mark, body_len, reply);
    if (s->length != MORPHD_LEN_NONE) {
        uint64_t v;
        if (!field_value(s, body_len, &v) || v > s->field_max) {
            morphd_frame_cancel(out, mark);
            return 1;
        }
        unsigned char *at = out->data + mark + f->head_len;
        if (s->field_size > 0) {
            morphd_frame_put_fixed(at, s->length, v);
        } else if (s->length == MORPHD_LEN_DECIMAL && morphd_decimal_size(v) == f->guess) {
            morphd_put_decimal(at, v, f->guess); /* in the room begin kept */
        } else {
            unsigned char tmp[24];
            size_t n = put_variable(tmp, s->length, v);
            if (n != f->guess) { /* not the room begin kept: move the body */
                if (n > f->guess &&
                    morphd_buf_reserve(out, out->len + (n - f->guess) +
                                                s->tail_len) != 0)
                    return -1;
                at = out->data + mark + f->head_len;
                memmove(at + n, at + f->guess, body_len);
                out->len = out->len - f->guess + n;
            }
            memcpy(at, tmp, n);
        }
    }
    if (s->tail_len > 0) {
        if (s->tail_len == 1 && out->len < out->cap) {
            out->data[out->len++] = s->tail[0];
            return 0;
        }
        if (morphd_buf_append(out, s->tail, s->tail_len) != 0)
            return -1;
    }
    return 0;
}

int morphd_frame_unanswered(const morphd_frame_t *f, morphd_buf_t *out,
                            uint32_t reply)
{
    if (f->shape == &morphd_ws_shape_text || f->shape == &morphd_ws_shape_binary)
        /* WebSocket: nothing, but the close a plugin that closes asks for */
        return !(reply & MORPH_REPLY_CLOSE) ? 0
               : morphd_ws_close_frame(out, MORPHD_WS_NORMAL) != 0
                   ? -1
                   : MORPHD_FRAME_CLOSE;
    if (f->shape == NULL || f->shape->length < MORPHD_LEN_HTTP)
        return 0;
    return morphd_http_respond(f, out, 204, reply);
}

size_t morphd_frame_overhead(const morphd_frame_t *f, size_t body_len)
{
    const morphd_frame_shape_t *s = f->shape;
    if (s == NULL)
        return 0;
    if (s->length >= MORPHD_LEN_HTTP)
        return morphd_http_overhead(f, body_len);
    if (s->length == MORPHD_LEN_WS_TEXT || s->length == MORPHD_LEN_WS_BINARY)
        return morphd_ws_overhead(body_len);
    size_t n = f->head_len + s->tail_len;
    size_t field = morphd_length_kind_size(s->length);
    if (field > 0 || s->length == MORPHD_LEN_NONE)
        return n + field;
    uint64_t v;
    unsigned char tmp[24];
    if (!field_value(s, body_len, &v))
        v = 0;
    return n + put_variable(tmp, s->length, v);
}
