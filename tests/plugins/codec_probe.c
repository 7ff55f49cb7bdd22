/* A codec plugin that uses every right morph_codec_t gives (tests/
 * test_codecs.c): a frame is one byte of length, then the payload, and a
 * reply goes back as "<" reply ">". And payloads that ask for the rest:
 *   "p"  answers "pong" itself (SKIP), the chain never sees it
 *   "q"  answers "bye" itself and closes the connection
 *   "e"  a protocol error (with an error frame "E" first)
 *   "x"  a decode() that says it used more than it was given
 *   "f"  a message the chain fails: encode() is told (MORPH_ENCODE_FAILED)
 *   "h"  a decode() that never returns (tests/test_faults.c: the watchdog)
 *   "w"  a decode() whose reply claims more bytes than its cap
 * A length byte of 0xff announces 2^40 bytes (MORE): refused at once.
 * conn_open counts connections; each reply carries the count of messages
 * on its connection, from the state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/plugin.h>

typedef struct probe_conn {
    unsigned messages;
} probe_conn_t;

static int probe_open(void *instance, void **state)
{
    (void)instance;
    *state = calloc(1, sizeof(probe_conn_t));
    return *state ? MORPH_OK : MORPH_ERROR;
}

static void probe_close(void *instance, void *state)
{
    (void)instance;
    free(state);
}

static int probe_decode(void *instance, void *state, const unsigned char *data,
                        size_t len, morph_decoded_t *d)
{
    (void)instance;
    if (len < 1)
        return MORPH_DECODE_MORE;
    if (data[0] == 0xff) {
        d->announced = (uint64_t)1 << 40;
        return MORPH_DECODE_MORE;
    }
    size_t n = data[0];
    if (len < 1 + n) {
        if (d->flags & MORPH_DECODE_EOF) {
            d->reason = "probe: the input ended inside a frame";
            return MORPH_DECODE_ERROR;
        }
        return MORPH_DECODE_MORE;
    }
    const unsigned char *p = data + 1;
    if (n == 1 && p[0] == 'p') {
        morph_out_append(d->reply, "pong", 4);
        d->used = 2;
        return MORPH_DECODE_SKIP;
    }
    if (n == 1 && p[0] == 'q') {
        morph_out_append(d->reply, "bye", 3);
        d->reply->reply |= MORPH_REPLY_CLOSE;
        d->used = 2;
        return MORPH_DECODE_SKIP;
    }
    if (n == 1 && p[0] == 'e') {
        morph_out_append(d->reply, "E", 1);
        d->reason = "probe: asked for an error";
        return MORPH_DECODE_ERROR;
    }
    if (n == 1 && p[0] == 'h') {
        volatile unsigned long spin = 0;
        for (;;) /* a busy loop: no system call to interrupt */
            spin++;
    }
    if (n == 1 && p[0] == 'w') {
        d->reply->len = d->reply->cap + 1; /* says it wrote past the end */
        d->used = 2;
        return MORPH_DECODE_SKIP;
    }
    if (n == 1 && p[0] == 'x') {
        d->used = len + 1;
        return MORPH_DECODE_MESSAGE;
    }
    ((probe_conn_t *)state)->messages++;
    d->msg = p;
    d->len = n;
    d->used = 1 + n;
    d->tag = n;
    return MORPH_DECODE_MESSAGE;
}

static int probe_encode(void *instance, void *state, const unsigned char *reply,
                        size_t len, uint64_t tag, uint32_t flags,
                        morph_out_t *out)
{
    (void)instance;
    if (flags & MORPH_ENCODE_FAILED)
        return morph_out_append(out, "!", 1);
    char head[32];
    int n = snprintf(head, sizeof head, "<%u:%llu:",
                     ((probe_conn_t *)state)->messages, (unsigned long long)tag);
    if (morph_out_append(out, head, (size_t)n) != MORPH_OK ||
        morph_out_append(out, reply, len) != MORPH_OK)
        return MORPH_ERROR;
    return morph_out_append(out, ">", 1);
}

static const morph_codec_t probe_codec = {
    .struct_size = sizeof(morph_codec_t),
    .decode = probe_decode,
    .encode = probe_encode,
};

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "codec_probe",
    .version = "1",
    .description = "a codec that uses every right of morph_codec_t",
    .conn_open = probe_open,
    .conn_close = probe_close,
    .abi_min = 4,
    .codec = &probe_codec,
};
