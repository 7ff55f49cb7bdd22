/*
 * length.c -- framing = length: length_offset header bytes, a length
 * field (length_field), then the payload, whose length is the field's
 * value plus length_adjust; the payload is the message. A payload over
 * max_message is refused as soon as the header is read, before its bytes
 * (Netty's failFast); a length that cannot be right (negative after the
 * adjustment, a varint over 10 bytes or 64 bits) ends the connection.
 */
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"

static uint64_t get_fixed(const unsigned char *p, morphd_length_kind_t kind)
{
    uint32_t x32;
    uint64_t x64;
    switch (kind) { /* a load or two: this is on every message */
    case MORPHD_LEN_U8: return p[0];
    case MORPHD_LEN_U16BE: return (uint64_t)p[0] << 8 | p[1];
    case MORPHD_LEN_U16LE: return (uint64_t)p[1] << 8 | p[0];
    case MORPHD_LEN_U24BE: return (uint64_t)p[0] << 16 | (uint64_t)p[1] << 8 | p[2];
    case MORPHD_LEN_U32BE: memcpy(&x32, p, 4); return __builtin_bswap32(x32);
    case MORPHD_LEN_U32LE: memcpy(&x32, p, 4); return x32; /* a LE host */
    case MORPHD_LEN_U64BE: memcpy(&x64, p, 8); return __builtin_bswap64(x64);
    case MORPHD_LEN_U64LE: memcpy(&x64, p, 8); return x64;
    default: return 0;
    }
}

/* A varint at p[0, len): its size (1..10), 0 when it goes on past len, or
 * -1 when it cannot be one (reason in d). */
static int get_varint(const unsigned char *p, size_t len, uint64_t *v,
                      morphd_decoded_t *d)
{
    uint64_t x = 0;
    for (size_t i = 0; i < 10; i++) {
        if (i == len)
            return 0;
        uint64_t b = p[i] & 0x7f;
        if (i == 9 && b > 1) {
            snprintf(d->reason, sizeof d->reason,
                     "a varint length of more than 64 bits");
            return -1;
        }
        x |= b << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = x;
            return (int)i + 1;
        }
    }
    snprintf(d->reason, sizeof d->reason,
             "a varint length of more than 10 bytes");
    return -1;
}

static morphd_decode_status_t length_decode(const morphd_codec_t *c,
                                            void *state,
                                            const unsigned char *data,
                                            size_t len, size_t from, bool eof,
                                            morphd_decoded_t *d)
{
    (void)state; /* built-in codecs keep none */
    (void)from; /* a header is read again: it is a few bytes */
    size_t off = c->length_offset;
    size_t field = c->length_size; /* 0: varint */
    uint64_t v;
    if (len < off + (field ? field : 1))
        goto more;
    if (field > 0) {
        v = get_fixed(data + off, c->length_field);
    } else {
        int n = get_varint(data + off, len - off, &v, d);
        if (n < 0)
            return MORPHD_DECODE_INVALID;
        if (n == 0)
            goto more;
        field = (size_t)n;
    }
    uint64_t payload;
    int64_t adj = c->length_adjust;
    if (adj < 0) {
        uint64_t minus = (uint64_t)(-(adj + 1)) + 1;
        if (v < minus) {
            snprintf(d->reason, sizeof d->reason, "a length field of %llu "
                     "with length_adjust %lld: a negative length",
                     (unsigned long long)v, (long long)adj);
            return MORPHD_DECODE_INVALID;
        }
        payload = v - minus;
    } else {
        payload = v + (uint64_t)adj;
        if (payload < v)
            payload = UINT64_MAX;
    }
    if (payload > c->max_message) {
        d->announced = payload;
        snprintf(d->reason, sizeof d->reason, "a frame announcing %llu "
                 "bytes, longer than max_message",
                 (unsigned long long)payload);
        return MORPHD_DECODE_TOO_LONG;
    }
    size_t header = off + field;
    if (len - header < payload)
        goto more;
    d->msg = data + header;
    d->len = (size_t)payload;
    d->used = header + (size_t)payload;
    d->frame = (morphd_frame_t){&c->shape, data, off,
                                c->length_size ? 0 : field, NULL};
    return MORPHD_DECODE_MESSAGE;
more:
    if (eof) {
        snprintf(d->reason, sizeof d->reason, "the input ended inside a "
                 "frame (%zu bytes of it)", len);
        return MORPHD_DECODE_INVALID;
    }
    d->scanned = 0;
    return MORPHD_DECODE_MORE;
}

const morphd_codec_ops_t morphd_codec_length = {"length", length_decode};
