/*
 * netstring.c -- framing = netstring (D. J. Bernstein's netstrings:
 * "5:hello," is the message "hello", and its reply goes back as one). A
 * length over max_message is refused as soon as its digits say so,
 * before its bytes are read; a leading zero, a byte that is no digit
 * before the ':', or a missing ',' after the bytes ends the connection.
 */
#include <stdio.h>

#include "codec/codec.h"

static morphd_decode_status_t netstring_decode(const morphd_codec_t *c,
                                               const unsigned char *data,
                                               size_t len, size_t from,
                                               bool eof, morphd_decoded_t *d)
{
    (void)from; /* the digits are few: read again */
    uint64_t n = 0;
    size_t i = 0;
    for (; i < len && data[i] != ':'; i++) {
        unsigned char ch = data[i];
        if (ch < '0' || ch > '9') {
            snprintf(d->reason, sizeof d->reason, "a netstring length holds "
                     "0x%02x, not a digit", ch);
            return MORPHD_DECODE_INVALID;
        }
        if (i == 1 && data[0] == '0') {
            snprintf(d->reason, sizeof d->reason,
                     "a netstring length with a leading zero");
            return MORPHD_DECODE_INVALID;
        }
        n = n * 10 + (uint64_t)(ch - '0');
        if (n > c->max_message) {
            d->announced = n;
            snprintf(d->reason, sizeof d->reason, "a netstring announcing "
                     "%s%llu bytes, longer than max_message", i + 1 < len && data[i + 1] == ':'
                     ? "" : "at least ", (unsigned long long)n);
            return MORPHD_DECODE_TOO_LONG;
        }
    }
    if (i == len) { /* no ':' yet */
        if (eof)
            goto ended;
        d->scanned = 0;
        return MORPHD_DECODE_MORE;
    }
    if (i == 0) {
        snprintf(d->reason, sizeof d->reason,
                 "a netstring without a length before its ':'");
        return MORPHD_DECODE_INVALID;
    }
    size_t body = i + 1;
    if (len - body < n + 1) {
        if (eof)
            goto ended;
        d->scanned = 0;
        return MORPHD_DECODE_MORE;
    }
    if (data[body + n] != ',') {
        snprintf(d->reason, sizeof d->reason, "a netstring of %llu bytes "
                 "ends with 0x%02x, not ','", (unsigned long long)n,
                 data[body + n]);
        return MORPHD_DECODE_INVALID;
    }
    d->msg = data + body;
    d->len = (size_t)n;
    d->used = body + (size_t)n + 1;
    d->frame = (morphd_frame_t){&c->shape, NULL, 0};
    return MORPHD_DECODE_MESSAGE;
ended:
    snprintf(d->reason, sizeof d->reason, "the input ended inside a "
             "netstring (%zu bytes of it)", len);
    return MORPHD_DECODE_INVALID;
}

const morphd_codec_ops_t morphd_codec_netstring = {"netstring",
                                                   netstring_decode};
