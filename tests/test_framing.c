/* The codecs (core/codec/): each framing's messages at any split points,
 * its limits and errors, and the frames of its replies; the examples of
 * Netty's LengthFieldBasedFrameDecoder documentation byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "harness.h"

/* Messages as "<message>|<reply frame of the message itself>;", so that
 * both the cut and the way its reply is framed are compared. */
typedef struct collected {
    char out[8192];
    size_t len;
    int n;
} collected_t;

static void put(collected_t *c, const void *p, size_t n)
{
    ck_assert_uint_lt(c->len + n, sizeof c->out);
    memcpy(c->out + c->len, p, n);
    c->len += n;
    c->out[c->len] = '\0';
}

/* The message's own bytes framed as its reply: an echo. */
static void echo_frame(const morphd_frame_t *frame, const unsigned char *msg,
                       size_t len, morphd_buf_t *out)
{
    size_t mark;
    ck_assert_int_eq(morphd_frame_begin(frame, out, &mark), 0);
    ck_assert_int_eq(morphd_buf_append(out, msg, len), 0);
    ck_assert_int_eq(morphd_frame_end(frame, out, mark, len), 0);
}

static int collect(void *ctx, const unsigned char *msg, size_t len,
                   const morphd_frame_t *frame)
{
    collected_t *c = ctx;
    put(c, msg, len);
    put(c, "|", 1);
    morphd_buf_t b = MORPHD_BUF_INIT;
    echo_frame(frame, msg, len, &b);
    put(c, b.data, b.len);
    morphd_buf_free(&b);
    put(c, ";", 1);
    c->n++;
    return 0;
}

static morphd_codec_t codec_of(const char *name, size_t max)
{
    morphd_codec_t c;
    char err[160];
    unsigned char nul = 0;
    ck_assert_int_eq(morphd_codec_init(&c, morphd_codec_builtin(name), max,
                                       MORPHD_LEN_U32BE, 0, 0, &nul, 1, err,
                                       sizeof err), 0);
    return c;
}

static morphd_codec_t length_codec(morphd_length_kind_t field, size_t offset,
                                   int64_t adjust, size_t max)
{
    morphd_codec_t c;
    char err[160];
    ck_assert_int_eq(morphd_codec_init(&c, morphd_codec_builtin("length"), max,
                                       field, offset, adjust, NULL, 0, err,
                                       sizeof err), 0);
    return c;
}

/* Feeds `in` cut at a and b, then ends the input; returns the last
 * non-zero status (0: all well). */
static int run3(const morphd_codec_t *c, const void *in, size_t n, size_t a,
                size_t b, collected_t *out, morphd_decoder_t *d)
{
    const unsigned char *p = in;
    int rc = morphd_decoder_feed(d, c, p, a, collect, out, NULL);
    if (rc == 0)
        rc = morphd_decoder_feed(d, c, p + a, b - a, collect, out, NULL);
    if (rc == 0)
        rc = morphd_decoder_feed(d, c, p + b, n - b, collect, out, NULL);
    if (rc == 0)
        rc = morphd_decoder_finish(d, c, collect, out);
    return rc;
}

static int run_whole(const morphd_codec_t *c, const void *in, size_t n,
                     collected_t *out)
{
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    int rc = run3(c, in, n, n, n, out, &d);
    morphd_decoder_free(&d);
    return rc;
}

/* Every way of cutting `in` into three pieces gives what it gives whole. */
static void same_at_every_split(const morphd_codec_t *c, const void *in,
                                size_t n)
{
    collected_t whole = {0};
    int rc_whole = run_whole(c, in, n, &whole);
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b++) {
            collected_t got = {0};
            morphd_decoder_t d = MORPHD_DECODER_INIT;
            int rc = run3(c, in, n, a, b, &got, &d);
            morphd_decoder_free(&d);
            ck_assert_msg(rc == rc_whole && got.len == whole.len &&
                          memcmp(got.out, whole.out, got.len) == 0,
                          "%s: split %zu/%zu differs (rc %d vs %d)",
                          c->ops->name, a, b, rc, rc_whole);
        }
}

/* --- line ------------------------------------------------------------------ */

START_TEST(whole_lines_in_one_read)
{
    morphd_codec_t c = codec_of("line", 100);
    collected_t got = {0};
    ck_assert_int_eq(run_whole(&c, "one\ntwo\r\nthree", 14, &got), 0);
    ck_assert_str_eq(got.out, "one|one\n;two|two\r\n;three|three;");
}
END_TEST

START_TEST(any_split_points_give_the_same_lines)
{
    morphd_codec_t c = codec_of("line", 100);
    const char *in = "alpha\nbe\r\nta\n\ngamma\r\n\r\nlast";
    collected_t whole = {0};
    run_whole(&c, in, strlen(in), &whole);
    ck_assert_int_eq(whole.n, 7);
    same_at_every_split(&c, in, strlen(in));
}
END_TEST

START_TEST(line_at_the_limit_passes_one_over_fails)
{
    morphd_codec_t c = codec_of("line", 5);
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    collected_t got = {0};
    ck_assert_int_eq(morphd_decoder_feed(&d, &c, (const unsigned char *)"12345\r\n",
                                         7, collect, &got, NULL), 0);
    ck_assert_str_eq(got.out, "12345|12345\r\n;");
    ck_assert_int_eq(morphd_decoder_feed(&d, &c, (const unsigned char *)"123456\n",
                                         7, collect, &got, NULL),
                     MORPHD_DECODER_TOO_LONG);
    ck_assert_ptr_nonnull(strstr(d.reason, "longer than max_message"));
    morphd_decoder_free(&d);

    /* split across reads, the pending part is bounded too */
    morphd_decoder_t e = MORPHD_DECODER_INIT;
    ck_assert_int_eq(morphd_decoder_feed(&e, &c, (const unsigned char *)"123", 3,
                                         collect, &got, NULL), 0);
    ck_assert_int_eq(morphd_decoder_feed(&e, &c, (const unsigned char *)"4567", 4,
                                         collect, &got, NULL),
                     MORPHD_DECODER_TOO_LONG);
    ck_assert_uint_le(e.partial.len, c.max_frame + 1);
    morphd_decoder_free(&e);
}
END_TEST

START_TEST(lines_before_an_overlong_one_are_delivered)
{
    morphd_codec_t c = codec_of("line", 4);
    collected_t got = {0};
    ck_assert_int_eq(run_whole(&c, "ok\nwaytoolong\n", 14, &got),
                     MORPHD_DECODER_TOO_LONG);
    ck_assert_str_eq(got.out, "ok|ok\n;");
}
END_TEST

/* A last line without newline is bounded like any other: a '\r' kept
 * pending for a "\r\n" that never came counts as data (issue 14, hole 7). */
START_TEST(last_line_at_end_of_input_is_bounded)
{
    morphd_codec_t c = codec_of("line", 4);
    collected_t got = {0};
    ck_assert_int_eq(run_whole(&c, "abcd\r", 5, &got), MORPHD_DECODER_TOO_LONG);
    ck_assert_int_eq(got.n, 0);
    ck_assert_int_eq(run_whole(&c, "abcd", 4, &got), 0);
    ck_assert_int_eq(got.n, 1);
}
END_TEST

START_TEST(binary_bytes_and_nul_are_data)
{
    morphd_codec_t c = codec_of("line", 100);
    collected_t got = {0};
    const unsigned char in[] = {'a', 0, 0xff, 'b', '\n'};
    ck_assert_int_eq(run_whole(&c, in, sizeof in, &got), 0);
    ck_assert_int_eq(got.n, 1);
    ck_assert_mem_eq(got.out, "a\0\xff" "b|a\0\xff" "b\n;", 12);
}
END_TEST

/* --- length ------------------------------------------------------------------ */

/* The seven examples of Netty's LengthFieldBasedFrameDecoder javadoc. In
 * morph the message is always the payload after the length field (Netty's
 * initialBytesToStrip = lengthFieldOffset + lengthFieldLength), and the
 * reply of an echo is the request, byte for byte. */
START_TEST(netty_examples_byte_for_byte)
{
    static const struct {
        const char *what;
        morphd_length_kind_t field;
        size_t offset;
        int64_t adjust;
        unsigned char frame[20];
        size_t frame_len;
        size_t header; /* bytes before the message */
    } ex[] = {
        {"1: 2 bytes length field at offset 0, do not strip header",
         MORPHD_LEN_U16BE, 0, 0, "\x00\x0c" "HELLO, WORLD", 14, 2},
        {"2: 2 bytes length field at offset 0, strip header",
         MORPHD_LEN_U16BE, 0, 0, "\x00\x0c" "HELLO, WORLD", 14, 2},
        {"3: the length field counts the whole message",
         MORPHD_LEN_U16BE, 0, -2, "\x00\x0e" "HELLO, WORLD", 14, 2},
        {"4: 3 bytes length field at the end of a 5 bytes header",
         MORPHD_LEN_U24BE, 2, 0, "\xca\xfe\x00\x00\x0c" "HELLO, WORLD", 17, 5},
        {"5: 3 bytes length field at the beginning of a 5 bytes header",
         MORPHD_LEN_U24BE, 0, 2, "\x00\x00\x0c\xca\xfe" "HELLO, WORLD", 17, 3},
        {"6: 2 bytes length field at offset 1 in the middle of a 4 bytes "
         "header, strip the first header field and the length field",
         MORPHD_LEN_U16BE, 1, 1, "\xca\x00\x0c\xfe" "HELLO, WORLD", 16, 3},
        {"7: as 6, the length field counting the whole message",
         MORPHD_LEN_U16BE, 1, -3, "\xca\x00\x10\xfe" "HELLO, WORLD", 16, 3},
    };
    for (size_t i = 0; i < sizeof ex / sizeof *ex; i++) {
        morphd_codec_t c = length_codec(ex[i].field, ex[i].offset,
                                        ex[i].adjust, 1024);
        collected_t got = {0};
        ck_assert_int_eq(run_whole(&c, ex[i].frame, ex[i].frame_len, &got), 0);
        ck_assert_msg(got.n == 1, "example %s: %d messages", ex[i].what, got.n);
        size_t body = ex[i].frame_len - ex[i].header;
        ck_assert_msg(memcmp(got.out, ex[i].frame + ex[i].header, body) == 0 &&
                      got.out[body] == '|', "example %s: message", ex[i].what);
        ck_assert_msg(got.len == body + 1 + ex[i].frame_len + 1 &&
                      memcmp(got.out + body + 1, ex[i].frame,
                             ex[i].frame_len) == 0,
                      "example %s: the echo is not the frame", ex[i].what);
        /* and two of them back to back, cut anywhere */
        unsigned char two[40];
        memcpy(two, ex[i].frame, ex[i].frame_len);
        memcpy(two + ex[i].frame_len, ex[i].frame, ex[i].frame_len);
        same_at_every_split(&c, two, 2 * ex[i].frame_len);
    }
}
END_TEST

/* netty#13331: a peer that does not speak the framing ("GET " read as a
 * u32be) is refused once the header is read, before any payload is kept,
 * with the length it announced. */
START_TEST(length_over_max_message_is_refused_at_the_header)
{
    morphd_codec_t c = length_codec(MORPHD_LEN_U32BE, 0, 0, 1024);
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    collected_t got = {0};
    ck_assert_int_eq(morphd_decoder_feed(&d, &c, (const unsigned char *)"\x00\x00\x00\x02hi",
                                         6, collect, &got, NULL), 0);
    ck_assert_int_eq(morphd_decoder_feed(&d, &c, (const unsigned char *)"GE", 2,
                                         collect, &got, NULL), 0);
    ck_assert_int_eq(morphd_decoder_feed(&d, &c, (const unsigned char *)"T ", 2,
                                         collect, &got, NULL),
                     MORPHD_DECODER_TOO_LONG);
    ck_assert_uint_eq(d.announced, 0x47455420u);
    ck_assert_ptr_nonnull(strstr(d.reason, "1195725856"));
    ck_assert_uint_le(d.partial.len, 4); /* only the header was kept */
    ck_assert_int_eq(got.n, 1);           /* the message before it went on */
    morphd_decoder_free(&d);
    /* one byte over the limit is refused, the limit itself is not */
    morphd_codec_t s = length_codec(MORPHD_LEN_U8, 0, 0, 3);
    ck_assert_int_eq(run_whole(&s, "\x03" "abc", 4, &got), 0);
    ck_assert_int_eq(run_whole(&s, "\x04" "abcd", 5, &got), MORPHD_DECODER_TOO_LONG);
}
END_TEST

START_TEST(impossible_lengths_are_invalid)
{
    collected_t got = {0};
    /* negative after the adjustment */
    morphd_codec_t c = length_codec(MORPHD_LEN_U16BE, 0, -2, 100);
    ck_assert_int_eq(run_whole(&c, "\x00\x01x", 3, &got), MORPHD_DECODER_INVALID);
    /* a varint of 11 bytes, and one over 64 bits */
    morphd_codec_t v = length_codec(MORPHD_LEN_VARINT, 0, 0, 100);
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    ck_assert_int_eq(morphd_decoder_feed(&d, &v, (const unsigned char *)
                                         "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01",
                                         11, collect, &got, NULL),
                     MORPHD_DECODER_INVALID);
    ck_assert_ptr_nonnull(strstr(d.reason, "more than 10 bytes"));
    morphd_decoder_free(&d);
    morphd_decoder_t e = MORPHD_DECODER_INIT;
    ck_assert_int_eq(morphd_decoder_feed(&e, &v, (const unsigned char *)
                                         "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02",
                                         10, collect, &got, NULL),
                     MORPHD_DECODER_INVALID);
    ck_assert_ptr_nonnull(strstr(e.reason, "64 bits"));
    morphd_decoder_free(&e);
    /* the input ending inside a frame */
    ck_assert_int_eq(run_whole(&c, "\x00\x05" "ab", 4, &got), MORPHD_DECODER_INVALID);
    ck_assert_int_eq(got.n, 0);
}
END_TEST

typedef struct same_message {
    const unsigned char *msg;
    size_t len;
    int seen;
} same_message_t;

static int is_same(void *ctx, const unsigned char *msg, size_t len,
                   const morphd_frame_t *frame)
{
    same_message_t *w = ctx;
    (void)frame;
    ck_assert_uint_eq(len, w->len);
    ck_assert(len == 0 || memcmp(msg, w->msg, len) == 0);
    w->seen++;
    return 0;
}

/* Every field round-trips: a reply is framed so that decoding it gives it
 * back, at lengths around each field's byte boundaries. */
START_TEST(every_length_field_round_trips)
{
    static const morphd_length_kind_t kinds[] = {
        MORPHD_LEN_U8, MORPHD_LEN_U16BE, MORPHD_LEN_U16LE, MORPHD_LEN_U24BE,
        MORPHD_LEN_U32BE, MORPHD_LEN_U32LE, MORPHD_LEN_U64BE, MORPHD_LEN_U64LE,
        MORPHD_LEN_VARINT,
    };
    static const size_t lens[] = {0, 1, 127, 128, 255, 256, 300, 16384, 70000};
    unsigned char *msg = malloc(70000);
    for (size_t i = 0; i < 70000; i++)
        msg[i] = (unsigned char)(i * 7);
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
            /* the field holds the length + 1 (length_adjust -1) */
            if (kinds[k] == MORPHD_LEN_U8 && lens[l] >= 255)
                continue;
            if ((kinds[k] == MORPHD_LEN_U16BE || kinds[k] == MORPHD_LEN_U16LE) &&
                lens[l] >= 65535)
                continue;
            morphd_codec_t c = length_codec(kinds[k], 2, -1, 100000);
            morphd_frame_t f = {&c.shape, (const unsigned char *)"HD", 2, 0, NULL};
            morphd_buf_t b = MORPHD_BUF_INIT;
            echo_frame(&f, msg, lens[l], &b);
            ck_assert_uint_eq(b.len, lens[l] + morphd_frame_overhead(&f, lens[l]));
            ck_assert_mem_eq(b.data, "HD", 2);
            same_message_t want = {msg, lens[l], 0};
            morphd_decoder_t d = MORPHD_DECODER_INIT;
            ck_assert_int_eq(morphd_decoder_feed(&d, &c, b.data, b.len,
                                                 is_same, &want, NULL), 0);
            ck_assert_msg(want.seen == 1, "%s, %zu bytes: %d messages",
                          morphd_length_kind_name(kinds[k]), lens[l], want.seen);
            ck_assert_uint_eq(morphd_decoder_pending(&d), 0);
            morphd_decoder_free(&d);
            morphd_buf_free(&b);
        }
    free(msg);
}
END_TEST

START_TEST(a_reply_that_does_not_fit_its_field_is_not_sent)
{
    morphd_codec_t c = length_codec(MORPHD_LEN_U8, 0, 0, 1000);
    morphd_frame_t f = {&c.shape, NULL, 0, 0, NULL};
    morphd_buf_t b = MORPHD_BUF_INIT;
    ck_assert_int_eq(morphd_buf_append(&b, "before", 6), 0);
    size_t mark;
    char why[160];
    ck_assert_int_eq(morphd_frame_begin(&f, &b, &mark), 0);
    unsigned char big[256] = {0};
    ck_assert_int_eq(morphd_buf_append(&b, big, sizeof big), 0);
    ck_assert_int_eq(morphd_frame_end(&f, &b, mark, sizeof big), 1);
    ck_assert_uint_eq(b.len, 6); /* taken out again; what was before stays */
    morphd_frame_explain(&f, sizeof big, why, sizeof why);
    ck_assert_ptr_nonnull(strstr(why, "256 bytes"));
    /* shorter than a positive adjustment: its length would be negative */
    morphd_codec_t a = length_codec(MORPHD_LEN_U16BE, 0, 2, 1000);
    morphd_frame_t g = {&a.shape, NULL, 0, 0, NULL};
    ck_assert_int_eq(morphd_frame_begin(&g, &b, &mark), 0);
    ck_assert_int_eq(morphd_buf_append(&b, "x", 1), 0);
    ck_assert_int_eq(morphd_frame_end(&g, &b, mark, 1), 1);
    ck_assert_uint_eq(b.len, 6);
    morphd_buf_free(&b);
}
END_TEST

/* --- netstring ------------------------------------------------------------- */

START_TEST(netstrings_and_their_replies)
{
    morphd_codec_t c = codec_of("netstring", 100);
    collected_t got = {0};
    ck_assert_int_eq(run_whole(&c, "5:hello,0:,3:a:b,", 17, &got), 0);
    ck_assert_str_eq(got.out, "hello|5:hello,;|0:,;a:b|3:a:b,;");
    same_at_every_split(&c, "5:hello,0:,12:hello, world,", 27);
}
END_TEST

START_TEST(netstrings_that_are_not)
{
    static const struct { const char *in; const char *reason; } bad[] = {
        {"05:hello,", "leading zero"},
        {"5x:hello,", "not a digit"},
        {"5:hello;", "not ','"},
        {":,", "without a length"},
        {"-1:x,", "not a digit"},
        {"3:ab", "ended inside a netstring"},
    };
    morphd_codec_t c = codec_of("netstring", 100);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        collected_t got = {0};
        morphd_decoder_t d = MORPHD_DECODER_INIT;
        int rc = run3(&c, bad[i].in, strlen(bad[i].in), strlen(bad[i].in),
                      strlen(bad[i].in), &got, &d);
        ck_assert_msg(rc == MORPHD_DECODER_INVALID && strstr(d.reason, bad[i].reason),
                      "'%s': rc %d, '%s'", bad[i].in, rc, d.reason);
        ck_assert_int_eq(got.n, 0);
        morphd_decoder_free(&d);
    }
    /* over max_message: refused from its digits, before its bytes */
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    collected_t got = {0};
    ck_assert_int_eq(morphd_decoder_feed(&d, &c, (const unsigned char *)"101:", 4,
                                         collect, &got, NULL),
                     MORPHD_DECODER_TOO_LONG);
    ck_assert_uint_eq(d.announced, 101);
    ck_assert_ptr_nonnull(strstr(d.reason, "announcing 101 bytes"));
    morphd_decoder_free(&d);
    morphd_decoder_t e = MORPHD_DECODER_INIT;
    ck_assert_int_eq(morphd_decoder_feed(&e, &c, (const unsigned char *)"1000", 4,
                                         collect, &got, NULL),
                     MORPHD_DECODER_TOO_LONG);
    ck_assert_ptr_nonnull(strstr(e.reason, "at least"));
    morphd_decoder_free(&e);
}
END_TEST

/* --- delimiter ------------------------------------------------------------- */

START_TEST(delimiters_one_byte_and_several)
{
    morphd_codec_t c = codec_of("delimiter", 100); /* \0 */
    collected_t got = {0};
    ck_assert_int_eq(run_whole(&c, "ab\0\0cd", 6, &got), 0);
    ck_assert_mem_eq(got.out, "ab|ab\0;|\0;cd|cd;", 16);
    same_at_every_split(&c, "one\0two\0\0three", 14);

    unsigned char delim[16];
    char err[128];
    int n = morphd_delimiter_parse("\\r\\n\\r\\n", delim, sizeof delim, err,
                                   sizeof err);
    ck_assert_int_eq(n, 4);
    morphd_codec_t m;
    ck_assert_int_eq(morphd_codec_init(&m, morphd_codec_builtin("delimiter"), 100,
                                       MORPHD_LEN_U32BE, 0, 0, delim, 4, err,
                                       sizeof err), 0);
    collected_t two = {0};
    ck_assert_int_eq(run_whole(&m, "a\r\nb\r\n\r\nc\r\r\n\r\n", 14, &two), 0);
    ck_assert_str_eq(two.out, "a\r\nb|a\r\nb\r\n\r\n;c\r|c\r\r\n\r\n;");
    same_at_every_split(&m, "a\r\nb\r\n\r\nc\r\r\n\r\n\r\n\r\nz", 19);
}
END_TEST

START_TEST(delimited_message_over_max_message_ends_the_input)
{
    morphd_codec_t c = codec_of("delimiter", 4);
    collected_t got = {0};
    ck_assert_int_eq(run_whole(&c, "abcd\0abcde", 10, &got), MORPHD_DECODER_TOO_LONG);
    ck_assert_int_eq(got.n, 1);
    /* refused once it cannot end within the limit: no delimiter in 5 bytes */
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    ck_assert_int_eq(morphd_decoder_feed(&d, &c, (const unsigned char *)"abcde", 5,
                                         collect, &got, NULL),
                     MORPHD_DECODER_TOO_LONG);
    morphd_decoder_free(&d);
}
END_TEST

START_TEST(delimiter_escapes)
{
    unsigned char out[16];
    char err[128];
    ck_assert_int_eq(morphd_delimiter_parse("\\0", out, sizeof out, err, sizeof err), 1);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(morphd_delimiter_parse("\\t\\\\\\x1E;", out, sizeof out, err,
                                            sizeof err), 4);
    ck_assert_mem_eq(out, "\t\\\x1e;", 4);
    static const char *const bad[] = {"", "\\q", "\\x1", "\\xzz", "ab\\",
                                      "0123456789abcdefg"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(morphd_delimiter_parse(bad[i], out, sizeof out, err,
                                             sizeof err) == -1,
                      "'%s' was taken", bad[i]);
}
END_TEST

START_TEST(codec_settings_out_of_range)
{
    morphd_codec_t c;
    char err[160];
    ck_assert_int_eq(morphd_codec_init(&c, morphd_codec_builtin("length"), 100,
                                       MORPHD_LEN_U8, 65, 0, NULL, 0, err,
                                       sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "length_offset"));
    ck_assert_ptr_null(morphd_codec_builtin("lines"));
    morphd_length_kind_t k;
    ck_assert_int_eq(morphd_length_kind_parse("u32be", &k), 0);
    ck_assert_int_eq(k, MORPHD_LEN_U32BE);
    ck_assert_int_eq(morphd_length_kind_parse("u32", &k), -1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("framing");
    TCase *tc = tcase_create("line");
    tcase_add_test(tc, whole_lines_in_one_read);
    tcase_add_test(tc, last_line_at_end_of_input_is_bounded);
    tcase_add_test(tc, any_split_points_give_the_same_lines);
    tcase_add_test(tc, line_at_the_limit_passes_one_over_fails);
    tcase_add_test(tc, lines_before_an_overlong_one_are_delivered);
    tcase_add_test(tc, binary_bytes_and_nul_are_data);
    suite_add_tcase(s, tc);
    TCase *len = tcase_create("length");
    tcase_add_test(len, netty_examples_byte_for_byte);
    tcase_add_test(len, length_over_max_message_is_refused_at_the_header);
    tcase_add_test(len, impossible_lengths_are_invalid);
    tcase_add_test(len, every_length_field_round_trips);
    tcase_add_test(len, a_reply_that_does_not_fit_its_field_is_not_sent);
    suite_add_tcase(s, len);
    TCase *ns = tcase_create("netstring");
    tcase_add_test(ns, netstrings_and_their_replies);
    tcase_add_test(ns, netstrings_that_are_not);
    suite_add_tcase(s, ns);
    TCase *dl = tcase_create("delimiter");
    tcase_add_test(dl, delimiters_one_byte_and_several);
    tcase_add_test(dl, delimited_message_over_max_message_ends_the_input);
    tcase_add_test(dl, delimiter_escapes);
    tcase_add_test(dl, codec_settings_out_of_range);
    suite_add_tcase(s, dl);
    return s;
}

MORPH_TEST_MAIN(suite)
