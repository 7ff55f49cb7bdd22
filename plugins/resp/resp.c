/*
 * resp -- a codec plugin (framing = resp) for Redis' protocol, RESP2, as
 * redis-cli, redis-benchmark and every Redis client speak it: each command
 * is one message, its arguments joined by one space, and each reply goes
 * back as a bulk string ("$5\r\nHELLO\r\n"); a message that failed goes
 * back as a RESP error. With `transform = uppercase` and `framing = resp`,
 * `redis-cli -p PORT hello world` prints HELLO WORLD.
 *
 * Commands come as Redis parses them (networking.c in Redis): an array of
 * bulk strings ("*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n"), or an inline
 * command, telnet style: a line of words separated by spaces, in which
 * "double" or 'single' quotes keep spaces (and "\n", "\xHH" escapes work
 * in double quotes). Empty lines and arrays of no element are skipped, as
 * Redis does. What Redis calls a protocol error gets its error reply
 * ("-ERR Protocol error: ...") and closes the connection, as Redis does.
 *
 * The example to copy for a codec of your own: written against
 * <morph/plugin.h> only. A command whose one argument lies whole in the
 * bytes read is handed on where it lies; others are joined in the
 * connection's buffer. The length an array's headers announce is given
 * to the host (d->announced) as it is read, so a command over max_message
 * is refused before its bytes arrive.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/plugin.h>

/* Redis' own bounds (server.h: PROTO_INLINE_MAX_SIZE, and the largest
 * multibulk count it takes). */
#define INLINE_MAX (64 * 1024)
#define ARGS_MAX (1024 * 1024)

/* A connection's state: where a command of several arguments is joined. */
typedef struct resp_conn {
    unsigned char *buf;
    size_t len, cap;
    char why[64]; /* a protocol error's reason, for the host's log */
} resp_conn_t;

static int resp_open(void *instance, void **state)
{
    (void)instance;
    *state = calloc(1, sizeof(resp_conn_t));
    return *state != NULL ? MORPH_OK : MORPH_ERROR;
}

static void resp_close(void *instance, void *state)
{
    (void)instance;
    resp_conn_t *rc = state;
    if (rc != NULL)
        free(rc->buf);
    free(rc);
}

static int put(resp_conn_t *rc, const void *p, size_t n)
{
    if (rc->len + n > rc->cap) {
        size_t cap = rc->cap ? rc->cap : 256;
        while (cap < rc->len + n)
            cap *= 2;
        unsigned char *b = realloc(rc->buf, cap);
        if (b == NULL)
            return -1;
        rc->buf = b;
        rc->cap = cap;
    }
    if (n > 0)
        memcpy(rc->buf + rc->len, p, n);
    rc->len += n;
    return 0;
}

/* A protocol error: Redis' reply, then the connection is closed. */
static int protocol_error(morph_decoded_t *d, const char *why)
{
    static const char prefix[] = "-ERR Protocol error: ";
    morph_out_append(d->reply, prefix, sizeof prefix - 1);
    morph_out_append(d->reply, why, strlen(why));
    morph_out_append(d->reply, "\r\n", 2);
    d->reason = why;
    return MORPH_DECODE_ERROR;
}

/* The number after a '*' or '$' at p[1..], ended by "\r\n" in p[0, len).
 * Returns the bytes of the line with its "\r\n" (0: not whole yet; -1: not
 * a number). */
static long long number_line(const unsigned char *p, size_t len,
                             long long *value)
{
    const unsigned char *cr = memchr(p, '\r', len);
    if (cr == NULL)
        return 0;
    size_t n = (size_t)(cr - p);
    if (n + 1 >= len)
        return 0; /* the '\n' is not here yet */
    /* at most 18 digits: no overflow (Redis' lengths are far below) */
    if (cr[1] != '\n' || n < 2 || n > 20)
        return -1;
    long long v = 0;
    bool neg = p[1] == '-';
    if (n - 1 - neg > 18)
        return -1;
    for (size_t i = 1 + neg; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *value = neg ? -v : v;
    return (long long)n + 2;
}

/* An array of bulk strings. */
static int decode_array(resp_conn_t *rc, const unsigned char *data,
                        size_t len, morph_decoded_t *d)
{
    long long count, at;
    if ((at = number_line(data, len, &count)) == 0) {
        if (len > INLINE_MAX)
            return protocol_error(d, "too big mbulk count string");
        return MORPH_DECODE_MORE;
    }
    if (at < 0 || count > ARGS_MAX)
        return protocol_error(d, "invalid multibulk length");
    if (count <= 0) { /* Redis skips *0 and *-1 */
        d->used = (size_t)at;
        return MORPH_DECODE_SKIP;
    }
    size_t pos = (size_t)at;
    uint64_t total = 0; /* the message's length so far, spaces included */
    rc->len = 0;
    const unsigned char *only = NULL; /* a single argument, where it lies */
    size_t only_len = 0;
    for (long long i = 0; i < count; i++) {
        if (pos >= len)
            goto more;
        if (data[pos] != '$') {
            snprintf(rc->why, sizeof rc->why, "expected '$', got '%c'",
                     data[pos] >= 0x20 && data[pos] < 0x7f ? data[pos] : '?');
            return protocol_error(d, rc->why);
        }
        long long blen;
        long long n = number_line(data + pos, len - pos, &blen);
        if (n == 0) {
            if (len - pos > INLINE_MAX)
                return protocol_error(d, "too big bulk count string");
            goto more;
        }
        if (n < 0 || blen < 0 || blen > 512LL * 1024 * 1024)
            return protocol_error(d, "invalid bulk length");
        total += (uint64_t)blen + (i > 0);
        d->announced = total; /* refused now when over max_message */
        pos += (size_t)n;
        if (len - pos < (size_t)blen + 2)
            goto more;
        if (data[pos + blen] != '\r' || data[pos + blen + 1] != '\n')
            return protocol_error(d, "a bulk string not ended by CRLF");
        if (count == 1) {
            only = data + pos;
            only_len = (size_t)blen;
        } else if ((i > 0 && put(rc, " ", 1) != 0) ||
                   put(rc, data + pos, (size_t)blen) != 0) {
            d->reason = "out of memory";
            return MORPH_DECODE_ERROR;
        }
        pos += (size_t)blen + 2;
    }
    d->msg = only != NULL ? only : rc->buf;
    d->len = only != NULL ? only_len : rc->len;
    d->used = pos;
    return MORPH_DECODE_MESSAGE;
more:
    return MORPH_DECODE_MORE;
}

static int hex(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* An inline command: the words of one line, joined by one space. Quotes
 * as Redis' sdssplitargs takes them. */
static int decode_inline(resp_conn_t *rc, const unsigned char *data,
                         size_t len, morph_decoded_t *d)
{
    const unsigned char *nl = memchr(data, '\n', len);
    if (nl == NULL) {
        if (len > INLINE_MAX)
            return protocol_error(d, "too big inline request");
        return MORPH_DECODE_MORE;
    }
    size_t end = (size_t)(nl - data);
    if (end > 0 && data[end - 1] == '\r')
        end--;
    rc->len = 0;
    size_t i = 0, words = 0;
    while (i < end) {
        while (i < end && (data[i] == ' ' || data[i] == '\t'))
            i++;
        if (i == end)
            break;
        if (words++ > 0 && put(rc, " ", 1) != 0)
            goto nomem;
        unsigned char q = data[i] == '"' || data[i] == '\'' ? data[i] : 0;
        if (q)
            i++;
        for (;;) {
            if (i == end) {
                if (q)
                    return protocol_error(d, "unbalanced quotes in request");
                break;
            }
            unsigned char c = data[i];
            if (!q && (c == ' ' || c == '\t'))
                break;
            if (q && c == q) {
                i++;
                if (i < end && data[i] != ' ' && data[i] != '\t')
                    return protocol_error(d, "unbalanced quotes in request");
                break;
            }
            if (c == '\\' && i + 1 < end && q == '"') {
                unsigned char e = data[i + 1];
                int h1, h2;
                if (e == 'x' && i + 3 < end && (h1 = hex(data[i + 2])) >= 0 &&
                    (h2 = hex(data[i + 3])) >= 0) {
                    c = (unsigned char)(h1 * 16 + h2);
                    i += 3;
                } else {
                    c = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t'
                        : e == 'b' ? '\b' : e == 'a' ? '\a' : e;
                    i++;
                }
            } else if (c == '\\' && i + 1 < end && q == '\'' &&
                       data[i + 1] == '\'') {
                c = '\'';
                i++;
            }
            if (put(rc, &c, 1) != 0)
                goto nomem;
            i++;
        }
    }
    d->used = (size_t)(nl - data) + 1;
    if (words == 0) /* an empty line: Redis skips it */
        return MORPH_DECODE_SKIP;
    d->msg = rc->buf;
    d->len = rc->len;
    return MORPH_DECODE_MESSAGE;
nomem:
    d->reason = "out of memory";
    return MORPH_DECODE_ERROR;
}

static int resp_decode(void *instance, void *state, const unsigned char *data,
                       size_t len, morph_decoded_t *d)
{
    (void)instance;
    resp_conn_t *rc = state;
    if (len == 0)
        return MORPH_DECODE_MORE;
    if ((d->flags & MORPH_DECODE_EOF) != 0) {
        /* a command cut off by the end of input: nobody waits for it */
        d->reason = "the input ended inside a command";
        return MORPH_DECODE_ERROR;
    }
    return data[0] == '*' ? decode_array(rc, data, len, d)
                          : decode_inline(rc, data, len, d);
}

/* "$<len>\r\n" at p (room for 23 bytes); returns its length. Written by
 * hand: snprintf was a fifth of this codec's cost per reply. */
static size_t bulk_header(unsigned char *p, size_t len)
{
    unsigned char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (unsigned char)('0' + len % 10);
        len /= 10;
    } while (len > 0);
    p[0] = '$';
    for (size_t i = 0; i < n; i++)
        p[1 + i] = digits[n - 1 - i];
    p[1 + n] = '\r';
    p[2 + n] = '\n';
    return n + 3;
}

/* Each reply as a bulk string; a failed message as an error. */
static int resp_encode(void *instance, void *state, const unsigned char *reply,
                       size_t len, uint64_t tag, uint32_t flags,
                       morph_out_t *out)
{
    (void)instance, (void)state, (void)tag;
    if (flags & MORPH_ENCODE_FAILED) {
        static const char err[] = "-ERR the transform failed this command "
                                  "(morphd's log says why)\r\n";
        return morph_out_append(out, err, sizeof err - 1);
    }
    /* the frame written in place: its header, the reply, "\r\n" */
    if (morph_out_reserve(out, out->len + 23 + len + 2) != MORPH_OK)
        return MORPH_ERROR;
    unsigned char *p = out->data + out->len;
    size_t head = bulk_header(p, len);
    memcpy(p + head, reply, len);
    memcpy(p + head + len, "\r\n", 2);
    out->len += head + len + 2;
    return MORPH_OK;
}

static const morph_codec_t resp_codec = {
    .struct_size = sizeof(morph_codec_t),
    .decode = resp_decode,
    .encode = resp_encode,
};

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "resp",
    .version = MORPH_VERSION,
    .description = "Redis' protocol (RESP2) as a framing: commands in, bulk "
                   "strings out",
    .conn_open = resp_open,
    .conn_close = resp_close,
    .abi_min = 4,
    .options = (const morph_option_decl_t[]){MORPH_OPTIONS_END},
    .codec = &resp_codec,
};
