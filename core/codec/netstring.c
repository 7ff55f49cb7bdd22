/*
 * netstring.c -- framing = netstring (D. J. Bernstein's netstrings:
 * "5:hello," is the message "hello", and its reply goes back as one). A
 * length over max_message is refused as soon as its digits say so,
 * before its bytes are read; a leading zero, a byte that is no digit
 * before the ':', or a missing ',' after the bytes ends the connection.
 */
#include <stdio.h>

#include "codec/codec.h"

/* The rare outcomes, out of the way of the one that runs per message. */
static __attribute__((cold)) morphd_decode_status_t
too_long(morphd_decoded_t *d, uint64_t n, bool exact)
{
    d->announced = n;
    snprintf(d->reason, sizeof d->reason, "a netstring announcing %s%llu "
             "bytes, longer than max_message", exact ? "" : "at least ",
             (unsigned long long)n);
    return MORPHD_DECODE_TOO_LONG;
}

/* data[0, i) are digits, and data[i] is the first byte that is not: it
 * is no ':', or there are no digits. */
static __attribute__((cold)) morphd_decode_status_t
malformed(morphd_decoded_t *d, const unsigned char *data, size_t i)
{
    if (data[i] != ':')
        snprintf(d->reason, sizeof d->reason, "a netstring length holds "
                 "0x%02x, not a digit", data[i]);
    else
        snprintf(d->reason, sizeof d->reason,
                 "a netstring without a length before its ':'");
    return MORPHD_DECODE_INVALID;
}

static __attribute__((cold)) morphd_decode_status_t
leading_zero(morphd_decoded_t *d)
{
    snprintf(d->reason, sizeof d->reason,
             "a netstring length with a leading zero");
    return MORPHD_DECODE_INVALID;
}

static __attribute__((cold)) morphd_decode_status_t
no_comma(morphd_decoded_t *d, uint64_t n, unsigned char got)
{
    snprintf(d->reason, sizeof d->reason, "a netstring of %llu bytes ends "
             "with 0x%02x, not ','", (unsigned long long)n, got);
    return MORPHD_DECODE_INVALID;
}

static __attribute__((cold)) morphd_decode_status_t
ended(morphd_decoded_t *d, size_t len)
{
    snprintf(d->reason, sizeof d->reason, "the input ended inside a "
             "netstring (%zu bytes of it)", len);
    return MORPHD_DECODE_INVALID;
}

/* More digits than this is a length no max_message allows (and 19 cannot
 * overflow 64 bits). */
#define DIGITS_MAX 19

static morphd_decode_status_t netstring_decode(const morphd_codec_t *c,
                                               void *state,
                                               const unsigned char *data,
                                               size_t len, size_t from,
                                               bool eof, morphd_decoded_t *d)
{
    (void)state; /* built-in codecs keep none */
    (void)from; /* the digits are few: read again */
    uint64_t n;
    size_t i;
    /* Two digits and a ':' (no leading zero), the common case, read
     * without the loop: the verdicts below are the same for it. */
    if (len >= 3 && (unsigned)data[0] - '1' < 9 &&
        (unsigned)data[1] - '0' <= 9 && data[2] == ':') {
        n = ((unsigned)data[0] - '0') * 10 + ((unsigned)data[1] - '0');
        i = 2;
        if (n > c->max_message)
            return too_long(d, n, true);
    } else {
        size_t lim = len < DIGITS_MAX ? len : DIGITS_MAX;
        n = 0;
        i = 0;
        for (; i < lim; i++) {
            unsigned digit = (unsigned)data[i] - '0';
            if (digit > 9)
                break;
            n = n * 10 + digit;
        }
        /* The verdicts in the order of the byte that decides each, so
         * that input cut anywhere gets the same one: a leading zero (the
         * second digit), a length over the limit (the digit that passes
         * it, before the ':'), then what follows the digits. */
        if (i > 1 && data[0] == '0')
            return leading_zero(d);
        if (n > c->max_message || i == DIGITS_MAX)
            return too_long(d, n, i < len && data[i] == ':');
        if (i == lim) { /* digits up to here, no ':' yet */
            if (eof)
                return ended(d, len);
            d->scanned = 0;
            return MORPHD_DECODE_MORE;
        }
        if (data[i] != ':' || i == 0)
            return malformed(d, data, i);
    }
    size_t body = i + 1;
    if (len - body <= n) {
        if (eof)
            return ended(d, len);
        d->scanned = 0;
        return MORPHD_DECODE_MORE;
    }
    if (data[body + n] != ',')
        return no_comma(d, n, data[body + n]);
    d->msg = data + body;
    d->len = (size_t)n;
    d->used = body + (size_t)n + 1;
    d->frame = (morphd_frame_t){&c->shape, NULL, 0, body, NULL};
    return MORPHD_DECODE_MESSAGE;
}

const morphd_codec_ops_t morphd_codec_netstring = {"netstring",
                                                   netstring_decode};
