/*
 * http.c -- the codec of http:// endpoints (issue 24): each POST
 * request's body is a message, and its reply goes back as the body of a
 * 200 response with Content-Length and the request's Content-Type. What
 * does not go through is answered by the codec itself, as nginx answers
 * it: another method 405 (Allow: POST), a malformed request 400, a request
 * line over 8 KiB 414, a header block over http_max_header_size 431, a
 * body over max_message 413, an Expect other than 100-continue 417; the
 * connection closes after those that leave the stream in doubt. A failed
 * message is answered 500 (the reason goes to morphd's log), one the
 * plugins answer with no reply 204. Requests are read by http1.c.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"
#include "codec/http1.h"

static const char octet_stream[] = "application/octet-stream";

/* The Date field's value (RFC 9110 5.6.7's IMF-fixdate), made once a
 * second (a thread's own). By hand, not strftime: its names follow the
 * locale, which a plugin may set. */
static const char *date_now(void)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu",
                                    "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May",
                                       "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"};
    static __thread time_t at;
    static __thread char text[40];
    time_t now = time(NULL);
    if (now != at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        at = now;
    }
    return text;
}

/* A response's head into buf (HEAD_ROOM bytes and the content type's);
 * returns its length. A body is described unless the status has none. */
#define HEAD_ROOM 256
static size_t response_head(char *buf, size_t size, int status,
                            const char *type, size_t type_len,
                            size_t body_len, bool close, const char *extra)
{
    int n = snprintf(buf, size, "HTTP/1.1 %d %s\r\nServer: morphd\r\n"
                     "Date: %s\r\n%s", status,
                     morphd_http1_reason_phrase(status), date_now(),
                     extra != NULL ? extra : "");
    if (status != 204 && status >= 200)
        n += snprintf(buf + n, size - (size_t)n, "Content-Type: %.*s\r\n"
                      "Content-Length: %zu\r\n", (int)type_len, type,
                      body_len);
    n += snprintf(buf + n, size - (size_t)n, "%s\r\n",
                  close ? "Connection: close\r\n" : "");
    return (size_t)n;
}

static bool closes(const morphd_frame_t *f, uint32_t reply)
{
    return (f->guess & MORPHD_HTTP_CLOSE) || (reply & MORPH_REPLY_CLOSE);
}

/* The head of a 200 whose body is a reply: the request's Content-Type
 * (the frame's head), else application/octet-stream. */
static size_t reply_head(char *buf, size_t size, const morphd_frame_t *f,
                         size_t body_len, bool close)
{
    return f->head_len > 0
               ? response_head(buf, size, 200, (const char *)f->head,
                               f->head_len, body_len, close, NULL)
               : response_head(buf, size, 200, octet_stream,
                               sizeof octet_stream - 1, body_len, close, NULL);
}

int morphd_http_frame_end(const morphd_frame_t *f, morphd_buf_t *out,
                          size_t mark, size_t body_len, uint32_t reply)
{
    char head[HEAD_ROOM + MORPHD_FRAME_KEEP_MAX];
    bool close = closes(f, reply);
    size_t n = reply_head(head, sizeof head, f, body_len, close);
    if (morphd_buf_reserve(out, out->len + n) != 0)
        return -1;
    unsigned char *at = out->data + mark;
    memmove(at + n, at, body_len);
    memcpy(at, head, n);
    out->len += n;
    return close ? MORPHD_FRAME_CLOSE : 0;
}

size_t morphd_http_overhead(const morphd_frame_t *f, size_t body_len)
{
    char head[HEAD_ROOM + MORPHD_FRAME_KEEP_MAX];
    return reply_head(head, sizeof head, f, body_len, closes(f, 0));
}

/* A response of morphd's own appended to `out`: a 1xx is its status line
 * alone; any other has the status in words as its text/plain body, as
 * nginx's (204: no body), `extra` header lines, and Connection: close when
 * `close`. Returns 0 or -1. */
static int status_response(morphd_buf_t *out, int status, const char *extra,
                           bool close)
{
    char head[HEAD_ROOM], text[96];
    size_t body = 0, n;
    if (status < 200) {
        n = (size_t)snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n\r\n",
                             status, morphd_http1_reason_phrase(status));
    } else {
        if (status != 204)
            body = (size_t)snprintf(text, sizeof text, "%d %s\n", status,
                                    morphd_http1_reason_phrase(status));
        n = response_head(head, sizeof head, status, "text/plain",
                          sizeof "text/plain" - 1, body, close, extra);
    }
    return morphd_buf_append(out, head, n) != 0 ||
                   morphd_buf_append(out, text, body) != 0
               ? -1
               : 0;
}

int morphd_http_respond(const morphd_frame_t *f, morphd_buf_t *out, int status,
                        uint32_t reply)
{
    bool close = closes(f, reply);
    if (status_response(out, status, NULL, close) != 0)
        return -1;
    return close ? MORPHD_FRAME_CLOSE : 0;
}

/* An answer of the codec's own, into the codec's scratch (status_response),
 * the connection closed after it when `close`. Returns `st`, what decode()
 * returns with it. */
static morphd_decode_status_t answer(const morphd_codec_t *c,
                                     morphd_decoded_t *d, int status,
                                     const char *extra, bool close,
                                     morphd_decode_status_t st)
{
    morphd_buf_t *b = c->scratch;
    b->len = 0;
    if (status_response(b, status, extra, close) != 0) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return MORPHD_DECODE_INVALID;
    }
    d->direct = b->data;
    d->direct_len = b->len;
    d->direct_close = close;
    return st;
}

/* A request that cannot be served: its status, then the connection is
 * closed (what follows it in the stream cannot be trusted). */
static morphd_decode_status_t refuse(const morphd_codec_t *c,
                                     morphd_decoded_t *d, int status,
                                     const char *reason)
{
    snprintf(d->reason, sizeof d->reason, "%d: %s", status, reason);
    return answer(c, d, status, NULL, true, MORPHD_DECODE_INVALID);
}

static morphd_decode_status_t http_decode(const morphd_codec_t *c,
                                          void *state,
                                          const unsigned char *data,
                                          size_t len, size_t from, bool eof,
                                          morphd_decoded_t *d)
{
    (void)state;
    d->direct_len = 0;
    d->direct_close = false;
    /* A head still coming in pieces is read again only once its blank
     * line may be there: not at every byte of a head sent a byte at a
     * time (that would cost its length squared). `from`: the bytes seen
     * before, its request line whole and valid; past the longest line
     * and header block a verdict is due, and the reading says which. */
    if (from > 0 && !(from & MORPHD_HTTP_IN_BODY) && from <= len && !eof &&
        len <= MORPHD_HTTP1_MAX_LINE + 2 + c->http_max_head) {
        size_t back = from >= 3 ? from - 3 : 0;
        if (memmem(data + back, len - back, "\n\r\n", 3) == NULL &&
            memmem(data + back, len - back, "\n\n", 2) == NULL) {
            d->scanned = len;
            return MORPHD_DECODE_MORE;
        }
    }
    morphd_http1_request_t req;
    morphd_http1_status_t st =
        morphd_http1_parse_head(data, len, c->http_max_head, &req);
    if (st == MORPHD_HTTP1_ERROR)
        return refuse(c, d, req.status, req.reason);
    if (st == MORPHD_HTTP1_MORE) {
        if (eof) {
            snprintf(d->reason, sizeof d->reason, "the client stopped "
                     "sending in a request's head (%zu bytes of it)", len);
            return MORPHD_DECODE_INVALID;
        }
        /* its line whole and valid: from now on, look for the blank line */
        d->scanned = req.method.len > 0 ? len : 0;
        return MORPHD_DECODE_MORE;
    }
    bool post = req.method.len == 4 && memcmp(req.method.p, "POST", 4) == 0;
    bool has_body = req.chunked || (req.has_length && req.length > 0);
    if (!post) {
        /* without a body the connection goes on, as after any answer */
        snprintf(d->reason, sizeof d->reason, "405: method %.*s",
                 (int)(req.method.len < 32 ? req.method.len : 32),
                 (const char *)req.method.p);
        d->used = req.head_len;
        return answer(c, d, 405, "Allow: POST\r\n",
                      has_body || !req.keep_alive,
                      has_body ? MORPHD_DECODE_INVALID : MORPHD_DECODE_SKIP);
    }
    size_t at = req.head_len;
    const unsigned char *msg;
    size_t msg_len, used;
    if (req.chunked) {
        morphd_buf_t *b = c->scratch;
        b->len = 0;
        size_t n;
        st = morphd_http1_chunked(data + at, len - at, c->max_message, b,
                                  &n, &msg_len, &req);
        if (st == MORPHD_HTTP1_ERROR)
            return refuse(c, d, req.status, req.reason);
        msg = b->data != NULL ? b->data : data;
        used = at + n;
    } else {
        uint64_t n = req.has_length ? req.length : 0;
        if (n > c->max_message)
            return refuse(c, d, 413, "a body over max_message");
        st = len - at < n ? MORPHD_HTTP1_MORE : MORPHD_HTTP1_DONE;
        msg = data + at;
        msg_len = (size_t)n;
        used = at + (size_t)n;
    }
    if (st == MORPHD_HTTP1_MORE) {
        if (eof) {
            snprintf(d->reason, sizeof d->reason, "the client stopped "
                     "sending in a request's body");
            return MORPHD_DECODE_INVALID;
        }
        /* 100 Continue once, when the head is whole and no body came:
         * `from` is where the last call stopped (it says "seen") */
        d->scanned = at | MORPHD_HTTP_IN_BODY;
        if (req.expect_continue && !(from & MORPHD_HTTP_IN_BODY) && len == at)
            return answer(c, d, 100, NULL, false, MORPHD_DECODE_MORE);
        return MORPHD_DECODE_MORE;
    }
    d->msg = msg;
    d->len = msg_len;
    d->used = used;
    bool keep_type = req.content_type.len > 0 &&
                     req.content_type.len <= MORPHD_FRAME_KEEP_MAX;
    d->frame = (morphd_frame_t){&c->shape,
                                keep_type ? req.content_type.p : NULL,
                                keep_type ? req.content_type.len : 0,
                                req.keep_alive ? 0 : MORPHD_HTTP_CLOSE, NULL};
    return MORPHD_DECODE_MESSAGE;
}

const morphd_codec_ops_t morphd_codec_http = {"http", http_decode};

void morphd_codec_http_init(morphd_codec_t *c, size_t max_message,
                            size_t max_head, morphd_buf_t *scratch)
{
    memset(c, 0, sizeof *c);
    c->ops = &morphd_codec_http;
    c->max_message = max_message;
    c->http_max_head = max_head;
    c->scratch = scratch;
    c->answers = true;
    c->shape.length = MORPHD_LEN_HTTP;
    /* a request: its line, its header block, its body with a chunked
     * encoding's overhead (a body of tiny chunks past this is refused as
     * too long, without a 413) */
    c->max_frame = MORPHD_HTTP1_MAX_LINE + 2 + max_head + 2 * max_message +
                   64 * 1024;
}
