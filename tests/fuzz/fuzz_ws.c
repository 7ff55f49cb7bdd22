/* Properties of WebSocket framing (core/codec/ws.c), on any bytes a
 * client sends after its handshake:
 *  - fed whole or cut at any two points, they give the same events: the
 *    messages (their type and bytes), the codec's own answers (pongs,
 *    close frames) and the verdict (too long, invalid), in order;
 *  - no message is longer than max_message, and a text message is UTF-8;
 *  - every answer is a server's frame: unmasked, FIN, a control opcode,
 *    at most 125 bytes;
 *  - a message's reply, framed as morphd frames it, reads back as a frame
 *    of the message's type whose payload is the message.
 * The first bytes pick max_message and the cut points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/ws.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_ws: " __VA_ARGS__);                          \
            fprintf(stderr, "\n");                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

typedef struct record {
    morphd_buf_t events;
    morphd_buf_t reply; /* a reply framed, to read back */
} record_t;

static void put(record_t *r, char kind, const unsigned char *p, size_t n)
{
    uint64_t len = n;
    FUZZ_CHECK(morphd_buf_append(&r->events, &kind, 1) == 0 &&
                   morphd_buf_append(&r->events, &len, sizeof len) == 0 &&
                   morphd_buf_append(&r->events, p, n) == 0,
               "out of memory");
}

/* A server frame at p[0, n): its first byte and payload; false when it
 * is not one whole frame. */
static bool read_frame(const unsigned char *p, size_t n, unsigned *first,
                       const unsigned char **payload, uint64_t *len)
{
    if (n < 2 || (p[1] & 0x80))
        return false;
    uint64_t l = p[1] & 0x7f;
    size_t h = 2;
    if (l == 126) {
        if (n < 4)
            return false;
        l = (uint64_t)p[2] << 8 | p[3];
        h = 4;
    } else if (l == 127) {
        if (n < 10)
            return false;
        l = 0;
        for (int i = 0; i < 8; i++)
            l = l << 8 | p[2 + i];
        h = 10;
    }
    if (n - h != l)
        return false;
    *first = p[0];
    *payload = p + h;
    *len = l;
    return true;
}

static size_t max_message;

static int on_event(void *ctx, const unsigned char *msg, size_t len,
                    const morphd_frame_t *f)
{
    record_t *r = ctx;
    if (f->shape == &morphd_shape_direct || f->shape == &morphd_shape_direct_close) {
        unsigned first;
        const unsigned char *payload;
        uint64_t n;
        FUZZ_CHECK(read_frame(msg, len, &first, &payload, &n),
                   "an answer that is no server frame");
        FUZZ_CHECK((first & 0x80) && (first & 0x08) && n <= 125,
                   "an answer that is no control frame (0x%02x, %llu bytes)",
                   first, (unsigned long long)n);
        put(r, f->shape == &morphd_shape_direct ? 'D' : 'C', msg, len);
        return f->shape == &morphd_shape_direct_close;
    }
    bool text = f->shape == &morphd_ws_shape_text;
    FUZZ_CHECK(text || f->shape == &morphd_ws_shape_binary, "a message of no type");
    FUZZ_CHECK(len <= max_message, "a message of %zu bytes over %zu", len,
               max_message);
    FUZZ_CHECK(!text || morphd_utf8_valid(msg, len), "a text message not UTF-8");
    put(r, text ? 'T' : 'B', msg, len);
    /* its reply, framed, reads back as itself */
    morphd_buf_t *out = &r->reply;
    out->len = 0;
    size_t mark;
    FUZZ_CHECK(morphd_frame_begin(f, out, &mark) == 0 &&
                   morphd_buf_append(out, msg, len) == 0 &&
                   morphd_frame_end_reply(f, out, mark, len, 0) == 0,
               "a reply that cannot be framed");
    unsigned first;
    const unsigned char *payload;
    uint64_t n;
    FUZZ_CHECK(read_frame(out->data, out->len, &first, &payload, &n),
               "a reply that is no frame");
    FUZZ_CHECK(first == (text ? 0x81u : 0x82u), "a reply of another type");
    FUZZ_CHECK(n == len && (len == 0 || memcmp(payload, msg, len) == 0),
               "a reply that is not the message");
    FUZZ_CHECK(morphd_frame_overhead(f, len) == out->len - len,
               "an overhead that is not the header's");
    return 0;
}

/* Feeds data in up to three pieces; records the events and the verdict. */
static void run(const unsigned char *data, size_t size, size_t cut1, size_t cut2,
                record_t *r)
{
    morphd_codec_t c;
    morphd_buf_t scratch = MORPHD_BUF_INIT;
    morphd_codec_ws_init(&c, max_message, &scratch);
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    d.state = morphd_ws_conn_new();
    FUZZ_CHECK(d.state != NULL, "out of memory");
    size_t cuts[4] = {0, cut1, cut2, size};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        rc = morphd_decoder_feed(&d, &c, data + cuts[i], cuts[i + 1] - cuts[i],
                                 on_event, r, NULL);
        FUZZ_CHECK(morphd_decoder_pending(&d) <= c.max_frame + 1,
                   "the decoder kept %zu bytes (frames up to %zu)",
                   morphd_decoder_pending(&d), c.max_frame);
    }
    char verdict[8];
    snprintf(verdict, sizeof verdict, "=%d", rc);
    put(r, 'V', (const unsigned char *)verdict, strlen(verdict));
    morphd_ws_conn_free(d.state);
    morphd_decoder_free(&d);
    morphd_buf_free(&scratch);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 3)
        return 0;
    static const size_t limits[] = {0, 1, 125, 126, 200, 65536, 1 << 20};
    max_message = limits[data[0] % 7];
    unsigned at1 = data[1], at2 = data[2];
    data += 3;
    size -= 3;
    size_t cut1 = size * at1 / 255;
    size_t cut2 = cut1 + (size - cut1) * at2 / 255;
    record_t whole = {MORPHD_BUF_INIT, MORPHD_BUF_INIT};
    record_t split = {MORPHD_BUF_INIT, MORPHD_BUF_INIT};
    run(data, size, size, size, &whole);
    run(data, size, cut1, cut2, &split);
    FUZZ_CHECK(whole.events.len == split.events.len &&
                   memcmp(whole.events.data, split.events.data,
                          whole.events.len) == 0,
               "cut at %zu and %zu, %zu bytes read otherwise", cut1, cut2, size);
    morphd_buf_free(&whole.events);
    morphd_buf_free(&whole.reply);
    morphd_buf_free(&split.events);
    morphd_buf_free(&split.reply);
    return 0;
}
