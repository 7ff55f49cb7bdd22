/* Issue 24: WebSocket (RFC 6455) read from bytes and written back
 * (core/codec/ws.c), and the handshake http.c answers: each message and
 * answer a stream of frames gives, the same however the stream is split;
 * the close code every frame against the protocol gets; the frames of
 * replies of every size; the 101 and the statuses that refuse one. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/http.h"
#include "codec/ws.h"
#include "harness.h"

/* --- a client's frames ----------------------------------------------------- */

static const unsigned char key4[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends a masked frame: FIN when `fin`, the opcode, the payload. */
static void frame(morphd_buf_t *b, bool fin, unsigned op, const void *payload,
                  size_t n)
{
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (n <= 125) {
        h[hl++] = (unsigned char)(0x80 | n);
    } else if (n <= 0xffff) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(n >> 8);
        h[hl++] = (unsigned char)n;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[hl++] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(h + hl, key4, 4);
    hl += 4;
    ck_assert_int_eq(morphd_buf_append(b, h, hl), 0);
    size_t at = b->len;
    ck_assert_int_eq(morphd_buf_reserve(b, at + n), 0);
    for (size_t i = 0; i < n; i++)
        b->data[at + i] = ((const unsigned char *)payload)[i] ^ key4[i & 3];
    b->len += n;
}

/* --- what the decoder hands on ---------------------------------------------- */

/* Each event as text: "T:hello" (a text message), "B:..." (binary),
 * "D:<hex>" (an answer of the codec's own), "C:<hex>" (one after which
 * the connection closes). */
typedef struct events {
    char text[8192];
    size_t n;
} events_t;

static void put_event(events_t *e, char kind, const unsigned char *p, size_t n,
                      bool hex)
{
    e->n += (size_t)snprintf(e->text + e->n, sizeof e->text - e->n, "%c:", kind);
    for (size_t i = 0; i < n && e->n + 4 < sizeof e->text; i++)
        e->n += hex ? (size_t)snprintf(e->text + e->n, sizeof e->text - e->n,
                                       "%02x", p[i])
                    : (size_t)snprintf(e->text + e->n, sizeof e->text - e->n,
                                       "%c", p[i]);
    e->n += (size_t)snprintf(e->text + e->n, sizeof e->text - e->n, "|");
}

static int on_event(void *ctx, const unsigned char *msg, size_t len,
                    const morphd_frame_t *f)
{
    events_t *e = ctx;
    if (f->shape == &morphd_shape_direct)
        put_event(e, 'D', msg, len, true);
    else if (f->shape == &morphd_shape_direct_close)
        put_event(e, 'C', msg, len, true);
    else if (f->shape == &morphd_ws_shape_text)
        put_event(e, 'T', msg, len, false);
    else if (f->shape == &morphd_ws_shape_binary)
        put_event(e, 'B', msg, len, false);
    else
        ck_abort_msg("a frame of an unknown shape");
    return f->shape == &morphd_shape_direct_close; /* it stops there */
}

typedef struct ws_fixture {
    morphd_codec_t codec;
    morphd_buf_t scratch;
    morphd_decoder_t d;
    events_t ev;
} ws_fixture_t;

static void fixture_init(ws_fixture_t *f, size_t max_message)
{
    memset(f, 0, sizeof *f);
    morphd_codec_ws_init(&f->codec, max_message, &f->scratch);
    f->d = (morphd_decoder_t)MORPHD_DECODER_INIT;
    f->d.state = morphd_ws_conn_new();
    ck_assert_ptr_nonnull(f->d.state);
}

static void fixture_free(ws_fixture_t *f)
{
    morphd_ws_conn_free(f->d.state);
    morphd_decoder_free(&f->d);
    morphd_buf_free(&f->scratch);
}

static int feed(ws_fixture_t *f, const unsigned char *p, size_t n)
{
    return morphd_decoder_feed(&f->d, &f->codec, p, n, on_event, &f->ev, NULL);
}

/* The events of `stream` fed whole, and the result of the feeding. */
static int run_whole(const morphd_buf_t *stream, size_t max_message,
                     events_t *out, char *reason)
{
    ws_fixture_t f;
    fixture_init(&f, max_message);
    int rc = feed(&f, stream->data, stream->len);
    *out = f.ev;
    if (reason != NULL)
        strcpy(reason, f.d.reason);
    fixture_free(&f);
    return rc;
}

/* The same stream cut at every byte, and in two, three pieces: the same
 * events, the same result. */
static void same_at_every_split(const morphd_buf_t *stream, size_t max_message)
{
    events_t whole;
    int want = run_whole(stream, max_message, &whole, NULL);
    for (size_t cut = 0; cut <= stream->len; cut++) {
        for (size_t cut2 = cut; cut2 <= stream->len; cut2 += 7) {
            ws_fixture_t f;
            fixture_init(&f, max_message);
            int rc = feed(&f, stream->data, cut);
            if (rc == 0)
                rc = feed(&f, stream->data + cut, cut2 - cut);
            if (rc == 0)
                rc = feed(&f, stream->data + cut2, stream->len - cut2);
            ck_assert_msg(rc == want, "cut at %zu, %zu: %d, not %d", cut, cut2,
                          rc, want);
            ck_assert_msg(strcmp(f.ev.text, whole.text) == 0,
                          "cut at %zu, %zu:\n%s\nnot\n%s", cut, cut2, f.ev.text,
                          whole.text);
            fixture_free(&f);
        }
    }
}

/* --- messages ------------------------------------------------------------------ */

START_TEST(accept_key_is_rfc_6455s)
{
    /* RFC 6455 1.3's own example */
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char accept[MORPHD_WS_ACCEPT_SIZE];
    ck_assert(morphd_ws_accept((const unsigned char *)key, strlen(key), accept));
    ck_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* not 16 bytes of base64 */
    ck_assert(!morphd_ws_accept((const unsigned char *)"dGhlIHNhbXBsZSBub25jZQ",
                                22, accept));
    ck_assert(!morphd_ws_accept((const unsigned char *)"dGhlIHNhbXBsZS*ub25jZQ==",
                                24, accept));
    ck_assert(!morphd_ws_accept((const unsigned char *)"dGhlIHNhbXBsZSBub25jZQ=x",
                                24, accept));
}
END_TEST

START_TEST(messages_pings_and_fragments_read_the_same_however_split)
{
    morphd_buf_t s = MORPHD_BUF_INIT;
    frame(&s, true, 0x1, "hello", 5);
    frame(&s, true, 0x2, "bin-ary", 7);
    frame(&s, true, 0x9, "ping!", 5);
    frame(&s, false, 0x1, "frag", 4);
    frame(&s, true, 0xA, "unasked pong", 12);
    frame(&s, false, 0x0, "men", 3);
    frame(&s, true, 0x9, "", 0);
    frame(&s, true, 0x0, "ted \xc3\xa9", 6); /* é in the last fragment */
    frame(&s, true, 0x1, "", 0);
    char big[300];
    memset(big, 'x', sizeof big);
    frame(&s, true, 0x2, big, sizeof big); /* a 16-bit length */
    events_t e;
    ck_assert_int_eq(run_whole(&s, 1024, &e, NULL), 0);
    /* in order: the messages, a pong for each ping (the unasked pong is
     * nothing), the fragments as one message */
    char want[1024];
    int n = snprintf(want, sizeof want, "T:hello|B:bin-ary|D:8a0570696e6721|"
                     "D:8a00|T:fragmented \xc3\xa9|T:|B:");
    memset(want + n, 'x', 300);
    strcpy(want + n + 300, "|");
    ck_assert_str_eq(e.text, want);
    same_at_every_split(&s, 1024);
    morphd_buf_free(&s);
}
END_TEST

START_TEST(a_close_is_answered_with_its_code_and_ends)
{
    morphd_buf_t s = MORPHD_BUF_INIT;
    frame(&s, true, 0x1, "a", 1);
    frame(&s, true, 0x8, "\x03\xe8" "bye", 5); /* 1000, "bye" */
    frame(&s, true, 0x1, "never read", 10);
    events_t e;
    ck_assert_int_eq(run_whole(&s, 1024, &e, NULL), 1);
    ck_assert_str_eq(e.text, "T:a|C:880203e8|"); /* the code, echoed */
    same_at_every_split(&s, 1024);
    morphd_buf_free(&s);
    /* an empty close: an empty one back */
    frame(&s, true, 0x8, "", 0);
    ck_assert_int_eq(run_whole(&s, 1024, &e, NULL), 1);
    ck_assert_str_eq(e.text, "C:8800|");
    morphd_buf_free(&s);
}
END_TEST

/* A stream whose last frame breaks the protocol: the messages before it,
 * then the close frame with `code`, and the feeding's result. */
static void refused(const morphd_buf_t *s, size_t max_message, int want_rc,
                    unsigned code, const char *reason_part)
{
    events_t e;
    char reason[128];
    int rc = run_whole(s, max_message, &e, reason);
    ck_assert_int_eq(rc, want_rc);
    char close[32];
    snprintf(close, sizeof close, "D:8802%04x|", code);
    ck_assert_msg(strstr(e.text, close) != NULL, "%s: no %s", e.text, close);
    ck_assert_msg(strstr(reason, reason_part) != NULL, "%s", reason);
    same_at_every_split(s, max_message);
}

START_TEST(frames_against_the_protocol_get_their_close_codes)
{
    morphd_buf_t s = MORPHD_BUF_INIT;
    /* unmasked */
    s.len = 0;
    morphd_buf_append(&s, "\x81\x02hi", 4);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "unmasked");
    /* RSV1 (permessage-deflate was never agreed) */
    s.len = 0;
    frame(&s, true, 0x1, "ok", 2);
    frame(&s, true, 0x41, "x", 1);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "RSV");
    /* reserved opcodes, data and control */
    s.len = 0;
    frame(&s, true, 0x3, "x", 1);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "reserved data");
    s.len = 0;
    frame(&s, true, 0xB, "x", 1);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "reserved control");
    /* a control frame fragmented, or too long */
    s.len = 0;
    frame(&s, false, 0x9, "x", 1);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "control");
    s.len = 0;
    char long_ping[126];
    memset(long_ping, 'p', sizeof long_ping);
    frame(&s, true, 0x9, long_ping, sizeof long_ping);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "control");
    /* a continuation with nothing begun; a message inside another */
    s.len = 0;
    frame(&s, true, 0x0, "x", 1);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "continuation");
    s.len = 0;
    frame(&s, false, 0x1, "a", 1);
    frame(&s, true, 0x2, "b", 1);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "inside");
    /* a 64-bit length with its top bit set */
    s.len = 0;
    morphd_buf_append(&s, "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", 14);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "top bit");
    /* close frames: one byte, a code no peer may send, a reason not UTF-8 */
    s.len = 0;
    frame(&s, true, 0x8, "\x03", 1);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "one byte");
    s.len = 0;
    frame(&s, true, 0x8, "\x03\xed", 2); /* 1005: only an API's */
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1002, "code");
    s.len = 0;
    frame(&s, true, 0x8, "\x03\xe8\xff", 3);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1007, "UTF-8");
    /* text that is not UTF-8, whole or in fragments */
    s.len = 0;
    frame(&s, true, 0x1, "caf\xc3", 4);
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1007, "UTF-8");
    s.len = 0;
    frame(&s, false, 0x1, "ok", 2);
    frame(&s, true, 0x0, "\xed\xa0\x80", 3); /* a surrogate */
    refused(&s, 1024, MORPHD_DECODER_INVALID, 1007, "UTF-8");
    /* over max_message: announced in one frame, or in the sum of them */
    s.len = 0;
    char body[200];
    memset(body, 'b', sizeof body);
    frame(&s, true, 0x2, body, 101);
    refused(&s, 100, MORPHD_DECODER_TOO_LONG, 1009, "max_message");
    s.len = 0;
    frame(&s, false, 0x2, body, 60);
    frame(&s, true, 0x0, body, 60);
    refused(&s, 100, MORPHD_DECODER_TOO_LONG, 1009, "max_message");
    /* a length of 2^62 is refused at its header, before any payload */
    s.len = 0;
    morphd_buf_append(&s, "\x82\xff\x40\x00\x00\x00\x00\x00\x00\x00", 10);
    refused(&s, 100, MORPHD_DECODER_TOO_LONG, 1009, "max_message");
    morphd_buf_free(&s);
}
END_TEST

START_TEST(a_message_of_exactly_max_message_goes_through)
{
    morphd_buf_t s = MORPHD_BUF_INIT;
    char body[100];
    memset(body, 'm', sizeof body);
    frame(&s, false, 0x2, body, 50);
    frame(&s, true, 0x0, body, 50);
    events_t e;
    ck_assert_int_eq(run_whole(&s, 100, &e, NULL), 0);
    ck_assert_int_eq(e.n, 2 + 100 + 1);
    morphd_buf_free(&s);
}
END_TEST

START_TEST(utf8_is_checked_as_rfc_3629_has_it)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"", true}, {"plain ascii, longer than eight bytes", true},
        {"\xc3\xa9", true}, {"\xe2\x82\xac", true}, {"\xf0\x9f\x98\x80", true},
        {"\xf4\x8f\xbf\xbf", true},                    /* U+10FFFF */
        {"\xc0\x80", false}, {"\xc1\xbf", false},      /* overlong */
        {"\xe0\x80\xaf", false}, {"\xf0\x80\x80\xaf", false},
        {"\xed\xa0\x80", false}, {"\xed\xbf\xbf", false}, /* surrogates */
        {"\xf4\x90\x80\x80", false}, {"\xf5\x80\x80\x80", false}, /* > 10FFFF */
        {"\x80", false}, {"\xc3", false}, {"\xe2\x82", false}, /* cut short */
        {"abcdefgh\xff", false}, {"\xe2\x28\xa1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        ck_assert_msg(morphd_utf8_valid((const unsigned char *)cases[i].s,
                                        strlen(cases[i].s)) == cases[i].ok,
                      "case %zu", i);
}
END_TEST

/* --- replies ------------------------------------------------------------------ */

/* A reply of n bytes framed as the service frames one. */
static void reply_of(const morphd_frame_shape_t *shape, size_t n, uint32_t flags,
                     morphd_buf_t *out, int *rc)
{
    morphd_frame_t f = {shape, NULL, 0, 0, NULL};
    size_t mark;
    out->len = 0;
    morphd_buf_append(out, "prev", 4); /* a reply before it in the buffer */
    ck_assert_int_eq(morphd_frame_begin(&f, out, &mark), 0);
    size_t at = out->len;
    ck_assert_int_eq(morphd_buf_reserve(out, at + n), 0);
    for (size_t i = 0; i < n; i++)
        out->data[at + i] = (unsigned char)('a' + i % 26);
    out->len += n;
    *rc = morphd_frame_end_reply(&f, out, mark, n, flags);
    ck_assert_int_eq(morphd_frame_overhead(&f, n), morphd_ws_overhead(n));
}

START_TEST(replies_are_framed_as_their_messages_at_every_size)
{
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 70000};
    morphd_buf_t out = MORPHD_BUF_INIT;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (int t = 0; t < 2; t++) {
            size_t n = sizes[i];
            int rc;
            reply_of(t ? &morphd_ws_shape_text : &morphd_ws_shape_binary, n, 0,
                     &out, &rc);
            ck_assert_int_eq(rc, 0);
            const unsigned char *p = out.data + 4;
            ck_assert_int_eq(memcmp(out.data, "prev", 4), 0);
            ck_assert_int_eq(p[0], t ? 0x81 : 0x82);
            size_t hl = morphd_ws_overhead(n), len;
            if (n <= 125) {
                len = p[1];
            } else if (n <= 0xffff) {
                ck_assert_int_eq(p[1], 126);
                len = (size_t)p[2] << 8 | p[3];
            } else {
                ck_assert_int_eq(p[1], 127);
                len = 0;
                for (int k = 0; k < 8; k++)
                    len = len << 8 | p[2 + k];
            }
            ck_assert_uint_eq(len, n);
            ck_assert_uint_eq(out.len, 4 + hl + n);
            for (size_t k = 0; k < n; k++)
                ck_assert_int_eq(p[hl + k], 'a' + k % 26);
        }
    }
    morphd_buf_free(&out);
}
END_TEST

START_TEST(a_plugin_that_closes_or_fails_sends_its_close_code)
{
    morphd_buf_t out = MORPHD_BUF_INIT;
    int rc;
    /* a reply, then close 1000 (small and large replies alike) */
    reply_of(&morphd_ws_shape_text, 3, MORPH_REPLY_CLOSE, &out, &rc);
    ck_assert_int_eq(rc, MORPHD_FRAME_CLOSE);
    ck_assert_uint_eq(out.len, 4 + 2 + 3 + 4);
    ck_assert_int_eq(memcmp(out.data + 4, "\x81\x03" "abc" "\x88\x02\x03\xe8", 9), 0);
    reply_of(&morphd_ws_shape_binary, 200, MORPH_REPLY_CLOSE, &out, &rc);
    ck_assert_int_eq(rc, MORPHD_FRAME_CLOSE);
    ck_assert_int_eq(memcmp(out.data + out.len - 4, "\x88\x02\x03\xe8", 4), 0);
    /* a failed message: close 1011 */
    morphd_frame_t f = {&morphd_ws_shape_text, NULL, 0, 0, NULL};
    out.len = 0;
    ck_assert_int_eq(morphd_frame_failed(&f, &out), MORPHD_FRAME_CLOSE);
    ck_assert_uint_eq(out.len, 4);
    ck_assert_int_eq(memcmp(out.data, "\x88\x02\x03\xf3", 4), 0);
    /* no reply: nothing, unless the plugin closes */
    out.len = 0;
    ck_assert_int_eq(morphd_frame_unanswered(&f, &out, MORPH_REPLY_NONE), 0);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(morphd_frame_unanswered(&f, &out,
                                             MORPH_REPLY_NONE | MORPH_REPLY_CLOSE),
                     MORPHD_FRAME_CLOSE);
    ck_assert_int_eq(memcmp(out.data, "\x88\x02\x03\xe8", 4), 0);
    morphd_buf_free(&out);
}
END_TEST

/* --- the handshake ------------------------------------------------------------- */

typedef struct shake {
    int rc;
    bool switched;
    char answer[1024];
} shake_t;

static int on_shake(void *ctx, const unsigned char *msg, size_t len,
                    const morphd_frame_t *f)
{
    shake_t *s = ctx;
    s->switched = f->shape == &morphd_shape_direct_switch;
    ck_assert_uint_lt(len, sizeof s->answer);
    memcpy(s->answer, msg, len);
    s->answer[len] = '\0';
    return f->shape == &morphd_shape_direct ? 0 : 1;
}

static shake_t handshake(const char *request, char *const *origins, size_t n)
{
    morphd_codec_t c;
    morphd_buf_t scratch = MORPHD_BUF_INIT;
    morphd_http_exchange_t x;
    memset(&x, 0, sizeof x);
    morphd_codec_http_init(&c, 1024, 16384, &scratch, &x,
                           (morphd_http_origins_t){origins, n});
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    shake_t s;
    memset(&s, 0, sizeof s);
    s.rc = morphd_decoder_feed(&d, &c, (const unsigned char *)request,
                               strlen(request), on_shake, &s, NULL);
    morphd_decoder_free(&d);
    morphd_buf_free(&scratch);
    morphd_buf_free(&x.extra);
    return s;
}

#define UPGRADE                                                              \
    "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"                 \
    "Connection: keep-alive, Upgrade\r\n"

START_TEST(the_handshake_is_answered_101_or_refused)
{
    shake_t s = handshake(UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n\r\n",
                          NULL, 0);
    ck_assert_int_eq(s.rc, 1);
    ck_assert(s.switched);
    ck_assert_msg(strncmp(s.answer, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0,
                  "%s", s.answer);
    ck_assert_ptr_nonnull(strstr(s.answer, "\r\nUpgrade: websocket\r\n"));
    ck_assert_ptr_nonnull(strstr(s.answer, "\r\nConnection: Upgrade\r\n"));
    ck_assert_ptr_nonnull(
        strstr(s.answer, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    ck_assert_ptr_null(strstr(s.answer, "Content-Length"));
    /* another version: 426, and the version morphd speaks */
    s = handshake(UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 8\r\n\r\n", NULL, 0);
    ck_assert(!s.switched);
    ck_assert_msg(strncmp(s.answer, "HTTP/1.1 426 ", 13) == 0, "%s", s.answer);
    ck_assert_ptr_nonnull(strstr(s.answer, "\r\nSec-WebSocket-Version: 13\r\n"));
    /* no key, a bad key, HTTP/1.0, no Connection: Upgrade, a body: 400 */
    static const char *const bad[] = {
        UPGRADE "Sec-WebSocket-Version: 13\r\n\r\n",
        UPGRADE "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\nContent-Length: 2\r\n\r\nhi",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s = handshake(bad[i], NULL, 0);
        ck_assert(!s.switched);
        ck_assert_msg(strncmp(s.answer, "HTTP/1.1 400 ", 13) == 0, "%zu: %s", i,
                      s.answer);
    }
    /* a browser's (with Origin): only from an origin the service allows */
    const char *browser = UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "Origin: https://app.example\r\n\r\n";
    s = handshake(browser, NULL, 0);
    ck_assert_msg(strncmp(s.answer, "HTTP/1.1 403 ", 13) == 0, "%s", s.answer);
    char *other[] = {"https://other.example"};
    s = handshake(browser, other, 1);
    ck_assert_msg(strncmp(s.answer, "HTTP/1.1 403 ", 13) == 0, "%s", s.answer);
    char *allowed[] = {"https://other.example", "https://app.example"};
    s = handshake(browser, allowed, 2);
    ck_assert(s.switched);
    char *any[] = {"*"};
    s = handshake(browser, any, 1);
    ck_assert(s.switched);
    /* a GET without Upgrade is still no method of the service */
    s = handshake("GET / HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 0);
    ck_assert_msg(strncmp(s.answer, "HTTP/1.1 405 ", 13) == 0, "%s", s.answer);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ws_frames");
    TCase *tc = tcase_create("ws_frames");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, accept_key_is_rfc_6455s);
    tcase_add_test(tc, messages_pings_and_fragments_read_the_same_however_split);
    tcase_add_test(tc, a_close_is_answered_with_its_code_and_ends);
    tcase_add_test(tc, frames_against_the_protocol_get_their_close_codes);
    tcase_add_test(tc, a_message_of_exactly_max_message_goes_through);
    tcase_add_test(tc, utf8_is_checked_as_rfc_3629_has_it);
    tcase_add_test(tc, replies_are_framed_as_their_messages_at_every_size);
    tcase_add_test(tc, a_plugin_that_closes_or_fails_sends_its_close_code);
    tcase_add_test(tc, the_handshake_is_answered_101_or_refused);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
