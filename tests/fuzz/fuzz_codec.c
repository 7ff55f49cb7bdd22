/* Properties of a codec (core/codec/), built once per framing (CODEC is
 * its name: fuzz_line, fuzz_length, fuzz_netstring, fuzz_delimiter):
 *  - the same bytes fed whole or cut at any two points give the same
 *    messages, replies' frames and the same verdict (too long, invalid);
 *  - no message handed out is longer than max_message, and the decoder
 *    never keeps more than the longest frame and a byte, whatever a
 *    header announces;
 *  - a message framed as its own reply decodes to itself again, as the
 *    one message of those bytes.
 * The first bytes pick max_message, the cut points and the codec's
 * settings (length_field, length_offset, length_adjust; the delimiter).
 *
 * Built with CODEC_PLUGIN (fuzz_resp), the codec is that plugin, loaded
 * from the build tree with morphd's loader, one connection state per run;
 * its replies are another protocol than its requests (bulk strings), so
 * the third property is the request's: a message sent back as a command
 * of one argument decodes to itself, and its reply is that bulk string.
 *
 * Built with CODEC_HTTP (fuzz_http), the codec is http:// endpoints'
 * (core/codec/http.c): a request split anywhere gives the same bodies and
 * the same refusals (their status; a 100 Continue depends on where the
 * body starts, and the Date on the clock, so neither is compared), and
 * each reply is a 200 whose Content-Length and body are the message's.
 * With framing = stream (a bit of the input picks it), a body comes in
 * pieces that depend on the cuts: what is compared is each body whole
 * (its pieces joined, up to its end) and the refusals, and each piece's
 * reply is checked as a chunk of a chunked response (the first with the
 * response's head, the last with the last chunk). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/http.h"
#ifdef CODEC_PLUGIN
#include "base/log.h"
#include "engine/plugin_loader.h"
#endif

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz: " __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

typedef struct record {
    unsigned char *buf;
    size_t len, cap;
    const morphd_codec_t *codec;
    void *state; /* a codec plugin's, for this run; http's stream */
    morphd_buf_t body; /* http, framing = stream: the pieces so far */
} record_t;

static void put(record_t *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2;
        r->buf = realloc(r->buf, r->cap);
        FUZZ_CHECK(r->buf != NULL, "out of memory");
    }
    if (n > 0)
        memcpy(r->buf + r->len, p, n);
    r->len += n;
}

typedef struct one {
    const unsigned char *msg;
    size_t len;
    int n;
} one_t;

static int is_it(void *ctx, const unsigned char *msg, size_t len,
                 const morphd_frame_t *frame)
{
    one_t *o = ctx;
    (void)frame;
    FUZZ_CHECK(o->n == 0 && len == o->len && memcmp(msg, o->msg, len) == 0,
               "a reply's frame decodes to something else");
    o->n++;
    return 0;
}

static int got(void *ctx, const unsigned char *msg, size_t len,
               const morphd_frame_t *frame)
{
    record_t *r = ctx;
    const morphd_codec_t *c = r->codec;
    if (frame->shape == &morphd_shape_direct ||
        frame->shape == &morphd_shape_direct_close) { /* a codec's own answer */
        bool close = frame->shape == &morphd_shape_direct_close;
#ifdef CODEC_HTTP
        FUZZ_CHECK(len >= 12 && memcmp(msg, "HTTP/1.1 ", 9) == 0,
                   "an answer that is no HTTP response");
        if (memcmp(msg + 9, "100", 3) == 0)
            return 0;
        len = 12; /* the status line's start: the Date is the clock's */
#endif
        put(r, close ? "C" : "D", 1);
        put(r, msg, len);
        return close;
    }
#ifdef CODEC_HTTP
    if (frame->shape == &morphd_http_chunk_shape) {
        /* a piece's reply is a chunk of the response */
        morphd_buf_t b = MORPHD_BUF_INIT;
        morphd_buf_append(&b, msg, len);
        int fit = morphd_http_frame_end(frame, &b, 0, len, 0);
        bool first = frame->guess & MORPHD_HTTP_FIRST;
        bool last = frame->guess & MORPHD_HTTP_LAST;
        bool raw = frame->guess & MORPHD_HTTP_RAW;
        FUZZ_CHECK(fit >= 0, "a piece's reply cannot be framed");
        FUZZ_CHECK(!first || (b.len > 17 && memcmp(b.data, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
                              (raw || memmem(b.data, b.len, "\r\nTransfer-Encoding: "
                                             "chunked\r\n", 30) != NULL)),
                   "the first piece's reply does not begin the response");
        FUZZ_CHECK(raw || !last || (b.len >= 5 && memcmp(b.data + b.len - 5, "0\r\n\r\n", 5) == 0),
                   "the last piece's reply does not end the response");
        if (!raw && len > 0) {
            char size_line[24];
            int k = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
            /* the chunk ends the reply, but for the last chunk after it */
            size_t tail = (size_t)k + len + 2 + (last ? 5 : 0);
            const unsigned char *at = b.data + b.len - tail;
            FUZZ_CHECK(b.len >= tail && memcmp(at, size_line, (size_t)k) == 0 &&
                           memcmp(at + k, msg, len) == 0 &&
                           memcmp(at + k + len, "\r\n", 2) == 0,
                       "a piece's reply is not its chunk");
        }
        morphd_buf_free(&b);
        morphd_buf_append(&r->body, msg, len);
        if (last) { /* the body, whole: the same however it came */
            uint32_t n32 = (uint32_t)r->body.len;
            put(r, "S", 1);
            put(r, &n32, sizeof n32);
            put(r, r->body.data, r->body.len);
            r->body.len = 0;
        }
        return 0;
    }
#endif
    FUZZ_CHECK(len <= c->max_message, "a %zu-byte message with max_message %zu",
               len, c->max_message);
    /* the message and how its reply is framed, length-prefixed */
    morphd_buf_t b = MORPHD_BUF_INIT;
    size_t mark;
    FUZZ_CHECK(morphd_frame_begin(frame, &b, &mark) == 0, "begin");
    morphd_buf_append(&b, msg, len);
    int fit = morphd_frame_end(frame, &b, mark, len);
    FUZZ_CHECK(fit >= 0, "end");
#ifdef CODEC_HTTP
    {
        char cl[48];
        snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", len);
        FUZZ_CHECK(b.len > len + 17 && memcmp(b.data, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
                       memmem(b.data, b.len - len, cl, strlen(cl)) != NULL &&
                       (len == 0 || memcmp(b.data + b.len - len, msg, len) == 0),
                   "the response is not a 200 with the message as its body");
        uint32_t n32 = (uint32_t)len;
        put(r, &n32, sizeof n32);
        put(r, msg, len);
        put(r, &fit, sizeof fit);
        morphd_buf_free(&b);
        return 0;
    }
#endif
    uint32_t n32 = (uint32_t)len;
    put(r, &n32, sizeof n32);
    put(r, msg, len);
    n32 = fit == 0 ? (uint32_t)b.len : UINT32_MAX;
    put(r, &n32, sizeof n32);
#ifdef CODEC_PLUGIN
    if (fit == 0) {
        char head[32];
        int hn = snprintf(head, sizeof head, "$%zu\r\n", len);
        FUZZ_CHECK(b.len == (size_t)hn + len + 2 && memcmp(b.data, head, (size_t)hn) == 0 &&
                       (len == 0 || memcmp(b.data + hn, msg, len) == 0) &&
                       memcmp(b.data + hn + len, "\r\n", 2) == 0,
                   "the reply is not the message as a bulk string");
        /* the message as a command of one argument decodes to itself */
        morphd_buf_t cmd = MORPHD_BUF_INIT;
        morphd_buf_printf(&cmd, "*1\r\n$%zu\r\n", len);
        morphd_buf_append(&cmd, msg, len);
        morphd_buf_append(&cmd, "\r\n", 2);
        put(r, b.data, b.len);
        one_t o = {msg, len, 0};
        morphd_decoder_t d = MORPHD_DECODER_INIT;
        d.state = r->state;
        /* msg lies in the state's buffer: copy it before decoding again */
        unsigned char *copy = malloc(len + 1);
        if (len > 0)
            memcpy(copy, msg, len);
        o.msg = copy;
        int rc = morphd_decoder_feed(&d, c, cmd.data, cmd.len, is_it, &o, NULL);
        FUZZ_CHECK(rc == 0 && o.n == 1, "a message as a command does not "
                   "decode to itself (rc %d, %d messages)", rc, o.n);
        free(copy);
        morphd_decoder_free(&d);
        morphd_buf_free(&cmd);
    }
#else
    if (fit == 0) {
        put(r, b.data, b.len);
        FUZZ_CHECK(b.len == len + morphd_frame_overhead(frame, len),
                   "overhead");
        /* a frame without a tail is whole without the end of input */
        one_t o = {msg, len, 0};
        morphd_decoder_t d = MORPHD_DECODER_INIT;
        int rc = morphd_decoder_feed(&d, c, b.data, b.len, is_it, &o, NULL);
        if (rc == 0 && o.n == 0)
            rc = morphd_decoder_finish(&d, c, is_it, &o);
        FUZZ_CHECK(rc == 0 && o.n == 1, "a reply's frame does not decode "
                   "(rc %d, %d messages)", rc, o.n);
        morphd_decoder_free(&d);
    }
#endif
    morphd_buf_free(&b);
    return 0;
}

static int run(const morphd_codec_t *c, const unsigned char *in, size_t n,
               const size_t *cuts, size_t n_cuts, record_t *r)
{
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    r->codec = c;
    d.state = r->state;
    size_t at = 0;
    int rc = 0;
    for (size_t k = 0; k <= n_cuts && rc == 0; k++) {
        size_t end = k < n_cuts ? cuts[k] : n;
        rc = morphd_decoder_feed(&d, c, in + at, end - at, got, r, NULL);
        FUZZ_CHECK(d.partial.len <= c->max_frame + 1,
                   "%zu bytes kept, the longest frame is %zu", d.partial.len,
                   c->max_frame);
        FUZZ_CHECK(d.partial.cap <= 2 * (c->max_frame + 1) + 256,
                   "%zu bytes allocated for a frame of at most %zu",
                   d.partial.cap, c->max_frame);
        at = end;
    }
    if (rc == 0)
        rc = morphd_decoder_finish(&d, c, got, r);
    put(r, &rc, sizeof rc);
    uint32_t rest = (uint32_t)r->body.len; /* a body that did not end */
    put(r, &rest, sizeof rest);
    put(r, r->body.data, r->body.len);
    morphd_decoder_free(&d);
    return rc;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 6)
        return 0;
    size_t max = 1 + data[0] % 200;
    morphd_length_kind_t field = (morphd_length_kind_t)(MORPHD_LEN_U8 + data[3] % 9);
    size_t offset = data[4] % 4;
    int64_t adjust = (int64_t)(data[5] % 16) - 8;
    unsigned char delim[3] = {data[5], data[4], data[3]};
    size_t delim_len = 1 + data[4] % 3;
    const unsigned char *in = data + 6;
    size_t n = size - 6;

    morphd_codec_t c;
    char err[1024];
#if defined(CODEC_HTTP)
    static morphd_buf_t scratch;
    static morphd_http_exchange_t exchange;
    static char *const origins[] = {"https://a.example"};
    morphd_codec_http_init(&c, max, 64 + data[3] % 512, &scratch, &exchange,
                           (morphd_http_origins_t){origins, data[3] & 1});
    bool stream = (data[4] & 4) != 0; /* framing = stream */
    if (stream)
        morphd_codec_http_stream(&c);
    (void)field, (void)offset, (void)adjust, (void)delim, (void)delim_len,
        (void)err;
#elif defined(CODEC_PLUGIN)
    static morphd_plugin_t p;
    static int loaded;
    static morphd_buf_t scratch;
    if (!loaded) {
        morphd_log_set_level(MORPH_LOG_ERROR);
        if (morphd_plugin_load(PLUGIN_DIR, CODEC, &p, err, sizeof err) != 0 ||
            p.codec == NULL) {
            fprintf(stderr, "fuzz: %s\n", err);
            abort();
        }
        loaded = 1;
    }
    morphd_codec_init(&c, &morphd_codec_plugin, max, field, 0, 0, NULL, 0, err,
                      sizeof err);
    morphd_codec_bind(&c, p.codec, NULL, &scratch);
    (void)offset, (void)adjust, (void)delim, (void)delim_len;
#else
    if (morphd_codec_init(&c, morphd_codec_builtin(CODEC), max, field, offset,
                          adjust, delim, delim_len, err, sizeof err) != 0)
        return 0;
#endif
    size_t cuts[2] = {n ? data[1] % (n + 1) : 0, n ? data[2] % (n + 1) : 0};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }
    record_t whole = {0}, pieces = {0};
#ifdef CODEC_PLUGIN
    FUZZ_CHECK(p.desc->conn_open(NULL, &whole.state) == 0 &&
                   p.desc->conn_open(NULL, &pieces.state) == 0, "conn_open");
#endif
#ifdef CODEC_HTTP
    if (stream) {
        whole.state = morphd_http_stream_new();
        pieces.state = morphd_http_stream_new();
    }
#endif
    int rc1 = run(&c, in, n, NULL, 0, &whole);
    int rc2 = run(&c, in, n, cuts, 2, &pieces);
#ifdef CODEC_HTTP
    morphd_http_stream_free(whole.state);
    morphd_http_stream_free(pieces.state);
#endif
    morphd_buf_free(&whole.body);
    morphd_buf_free(&pieces.body);
#ifdef CODEC_PLUGIN
    p.desc->conn_close(NULL, whole.state);
    p.desc->conn_close(NULL, pieces.state);
#endif
    FUZZ_CHECK(rc1 == rc2 && whole.len == pieces.len &&
               memcmp(whole.buf, pieces.buf, whole.len) == 0,
               "%s at cuts %zu,%zu differs (rc %d vs %d)", CODEC, cuts[0],
               cuts[1], rc1, rc2);
    free(whole.buf);
    free(pieces.buf);
    return 0;
}
