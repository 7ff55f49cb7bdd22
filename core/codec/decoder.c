/*
 * decoder.c -- a connection's bytes through its codec (codec.h). Frames
 * that lie whole in a read are handed on in place; only a frame split
 * across reads is gathered in the decoder's buffer, and that never holds
 * more than the codec's longest frame and one byte: the bytes of a read
 * are taken into it only as far as that, so an overlong frame is refused
 * before its bytes are kept.
 */
#include <string.h>

#include "codec/codec.h"

static int refuse(morphd_decoder_t *d, morphd_decode_status_t st,
                  const morphd_decoded_t *r)
{
    d->announced = st == MORPHD_DECODE_TOO_LONG ? r->announced : 0;
    memcpy(d->reason, r->reason, sizeof d->reason);
    d->reason[sizeof d->reason - 1] = '\0';
    return st == MORPHD_DECODE_TOO_LONG ? MORPHD_DECODER_TOO_LONG
                                        : MORPHD_DECODER_INVALID;
}

/* A codec's answer of its own (a codec plugin's, http's), handed on as a
 * frame of its own before what its decode() found. Returns the
 * callback's value. */
static int direct(const morphd_codec_t *c, const morphd_decoded_t *r,
                  morphd_message_cb cb, void *ctx)
{
    if (!c->answers || (r->direct_len == 0 && !r->direct_close))
        return 0;
    morphd_frame_t f = {r->direct_close    ? &morphd_shape_direct_close
                        : r->direct_switch ? &morphd_shape_direct_switch
                                           : &morphd_shape_direct,
                        NULL, 0, 0, NULL};
    return cb(ctx, r->direct, r->direct_len, &f);
}

/* A codec that found a frame of no bytes would be asked again for ever. */
static morphd_decoded_t *nothing_used(morphd_decoded_t *r)
{
    memcpy(r->reason, "the codec found a frame of no bytes",
           sizeof "the codec found a frame of no bytes");
    return r;
}

int morphd_decoder_feed(morphd_decoder_t *d, const morphd_codec_t *c,
                        const unsigned char *data, size_t len,
                        morphd_message_cb cb, void *ctx, size_t *consumed)
{
    const unsigned char *start = data;
    morphd_decoded_t r;
    r.reason[0] = '\0';
    if (consumed != NULL)
        *consumed = len;
    while (len > 0) {
        if (d->partial.len == 0) {
            morphd_decode_status_t st =
                c->ops->decode(c, d->state, data, len, d->scanned, false, &r);
            int said = direct(c, &r, cb, ctx);
            if (said != 0) { /* it closes: what it consumed is gone */
                if (consumed != NULL)
                    *consumed = (size_t)(data - start) +
                                (st == MORPHD_DECODE_MESSAGE ||
                                 st == MORPHD_DECODE_SKIP ? r.used : 0);
                return said;
            }
            if (st == MORPHD_DECODE_MORE) {
                d->scanned = r.scanned;
                return morphd_buf_append(&d->partial, data, len);
            }
            if (st != MORPHD_DECODE_MESSAGE && st != MORPHD_DECODE_SKIP)
                return refuse(d, st, &r);
            if (r.used == 0)
                return refuse(d, MORPHD_DECODE_INVALID, nothing_used(&r));
            d->scanned = 0;
            data += r.used;
            len -= r.used;
            if (st == MORPHD_DECODE_SKIP)
                continue;
            int rc = cb(ctx, r.msg, r.len, &r.frame);
            if (rc != 0) {
                if (consumed != NULL)
                    *consumed = (size_t)(data - start);
                return rc;
            }
            continue;
        }
        /* a frame begun in an earlier read: take only what it may need */
        size_t room = c->max_frame + 1 - d->partial.len;
        size_t take = len < room ? len : room;
        if (morphd_buf_append(&d->partial, data, take) != 0)
            return -1;
        morphd_decode_status_t st = c->ops->decode(
            c, d->state, d->partial.data, d->partial.len, d->scanned, false, &r);
        int said = direct(c, &r, cb, ctx);
        if (said != 0 && (st == MORPHD_DECODE_MESSAGE ||
                          st == MORPHD_DECODE_SKIP)) {
            /* it stops the feeding after a frame (an upgrade): what
             * follows is kept, for what reads next */
            size_t old = d->partial.len - take;
            if (consumed != NULL)
                *consumed = r.used > old ? r.used - old : 0;
            if (r.used > old) {
                d->partial.len = 0;
            } else {
                memmove(d->partial.data, d->partial.data + r.used,
                        old - r.used);
                d->partial.len = old - r.used;
            }
            d->scanned = 0;
            return said;
        }
        if (said != 0) { /* it closes: the rest is not read */
            d->partial.len = 0;
            return said;
        }
        if (st == MORPHD_DECODE_MORE) {
            d->scanned = r.scanned;
            if (take < len) { /* a codec that let a frame grow too long */
                r.announced = 0;
                memcpy(r.reason, "a frame longer than max_message",
                       sizeof "a frame longer than max_message");
                return refuse(d, MORPHD_DECODE_TOO_LONG, &r);
            }
            return 0;
        }
        if (st != MORPHD_DECODE_MESSAGE && st != MORPHD_DECODE_SKIP)
            return refuse(d, st, &r);
        if (r.used == 0)
            return refuse(d, MORPHD_DECODE_INVALID, nothing_used(&r));
        size_t old = d->partial.len - take;
        d->scanned = 0;
        int rc = 0;
        if (st == MORPHD_DECODE_MESSAGE)
            rc = cb(ctx, r.msg, r.len, &r.frame); /* r.msg: in partial */
        if (r.used > old) {
            /* the frame ends inside this read: the rest is read in place */
            size_t back = r.used - old;
            d->partial.len = 0;
            data += back;
            len -= back;
        } else { /* it ended in what was kept: give this read's bytes back */
            memmove(d->partial.data, d->partial.data + r.used, old - r.used);
            d->partial.len = old - r.used;
        }
        if (rc != 0) {
            if (consumed != NULL)
                *consumed = (size_t)(data - start);
            return rc;
        }
    }
    return 0;
}

int morphd_decoder_finish(morphd_decoder_t *d, const morphd_codec_t *c,
                          morphd_message_cb cb, void *ctx)
{
    morphd_decoded_t r;
    r.reason[0] = '\0';
    size_t at = 0;
    int rc = 0;
    while (rc == 0 && at < d->partial.len) {
        morphd_decode_status_t st = c->ops->decode(
            c, d->state, d->partial.data + at, d->partial.len - at, 0, true, &r);
        int said = direct(c, &r, cb, ctx);
        if (said != 0) {
            d->partial.len = 0;
            return said;
        }
        if (st == MORPHD_DECODE_MORE) { /* a codec that wants more at the end */
            memcpy(r.reason, "the input ended inside a frame",
                   sizeof "the input ended inside a frame");
            st = MORPHD_DECODE_INVALID;
        }
        if (st != MORPHD_DECODE_MESSAGE && st != MORPHD_DECODE_SKIP) {
            d->partial.len = 0;
            return refuse(d, st, &r);
        }
        if (r.used == 0) {
            d->partial.len = 0;
            return refuse(d, MORPHD_DECODE_INVALID, nothing_used(&r));
        }
        at += r.used;
        if (st == MORPHD_DECODE_MESSAGE)
            rc = cb(ctx, r.msg, r.len, &r.frame);
    }
    /* what is left waits for the next call */
    if (at > 0) {
        memmove(d->partial.data, d->partial.data + at, d->partial.len - at);
        d->partial.len -= at;
    }
    d->scanned = 0;
    return rc;
}

void morphd_decoder_free(morphd_decoder_t *d) { morphd_buf_free(&d->partial); }
