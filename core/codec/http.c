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
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec/codec.h"
#include "codec/http.h"
#include "codec/http1.h"
#include "codec/ws.h"

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

/* --- a response's head -------------------------------------------------------- */

/* What a response's head says. */
typedef struct head {
    int status;
    const char *extra;                 /* the codec's own lines ("Allow:") */
    morphd_http1_span_t allow_headers; /* a preflight's, echoed */
    const morphd_http_exchange_t *x;   /* CORS, and what plugins set */
    bool plugin_fields;                /* x's extra lines and status apply */
    const char *type;                  /* NULL: no body is described */
    size_t type_len;
    size_t body_len;
    bool close;
    int body;                          /* BODY_*: how its length is told */
} head_t;

enum {
    BODY_LENGTH,  /* Content-Length */
    BODY_CHUNKED, /* Transfer-Encoding: chunked (framing = stream) */
    BODY_TO_CLOSE, /* neither: to the close (an HTTP/1.0 client's stream) */
};

/* Bytes written at p[0, cap) -- or only counted, past cap. */
typedef struct text {
    unsigned char *p;
    size_t n, cap;
} text_t;

static inline void put(text_t *t, const void *s, size_t len)
{
    if (len > 0 && t->n + len <= t->cap)
        memcpy(t->p + t->n, s, len);
    t->n += len;
}

static inline void puts_(text_t *t, const char *s)
{
    put(t, s, __builtin_strlen(s));
}

static void put_number(text_t *t, uint64_t v)
{
    char digits[24];
    size_t i = sizeof digits;
    do
        digits[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(t, digits + i, sizeof digits - i);
}

static void write_head(text_t *t, const head_t *h)
{
    puts_(t, "HTTP/1.1 ");
    put_number(t, (uint64_t)h->status);
    put(t, " ", 1);
    puts_(t, morphd_http1_reason_phrase(h->status));
    if (h->status < 200) { /* an interim response: its line alone */
        put(t, "\r\n\r\n", 4);
        return;
    }
    puts_(t, "\r\nServer: morphd\r\nDate: ");
    puts_(t, date_now());
    put(t, "\r\n", 2);
    if (h->extra != NULL)
        puts_(t, h->extra);
    if (h->allow_headers.len > 0) {
        puts_(t, "Access-Control-Allow-Headers: ");
        put(t, h->allow_headers.p, h->allow_headers.len);
        put(t, "\r\n", 2);
    }
    const morphd_http_exchange_t *x = h->x;
    if (x != NULL && x->allow_origin.len > 0) {
        puts_(t, "Access-Control-Allow-Origin: ");
        put(t, x->allow_origin.p, x->allow_origin.len);
        puts_(t, "\r\nVary: Origin\r\n");
    }
    bool plugin = h->plugin_fields && x != NULL;
    if (plugin)
        put(t, x->extra.data, x->extra.len);
    if (h->status != 204 && h->status != 304) {
        if (h->type != NULL && !(plugin && x->typed)) {
            puts_(t, "Content-Type: ");
            put(t, h->type, h->type_len);
            put(t, "\r\n", 2);
        }
        if (h->body == BODY_LENGTH) {
            puts_(t, "Content-Length: ");
            put_number(t, h->body_len);
            put(t, "\r\n", 2);
        } else if (h->body == BODY_CHUNKED) {
            puts_(t, "Transfer-Encoding: chunked\r\n");
        }
    }
    if (h->close)
        puts_(t, "Connection: close\r\n");
    put(t, "\r\n", 2);
}

static size_t head_size(const head_t *h)
{
    text_t t = {NULL, 0, 0};
    write_head(&t, h);
    return t.n;
}

static bool closes(const morphd_frame_t *f, uint32_t reply)
{
    return (f->guess & MORPHD_HTTP_CLOSE) || (reply & MORPH_REPLY_CLOSE);
}

/* The head of a response whose body is a reply: the status the plugins
 * set (200), and the Content-Type they set, or the request's (the
 * frame's head), or application/octet-stream. */
static head_t reply_head(const morphd_frame_t *f, size_t body_len, bool close)
{
    const morphd_http_exchange_t *x = morphd_http_exchange_of(f);
    head_t h = {x != NULL && x->status != 0 ? x->status : 200, NULL,
                {NULL, 0}, x, true, octet_stream, sizeof octet_stream - 1,
                body_len, close, BODY_LENGTH};
    if (f->head_len > 0) {
        h.type = (const char *)f->head;
        h.type_len = f->head_len;
    }
    return h;
}

static void answered(const morphd_frame_t *f, int status)
{
    morphd_http_exchange_t *x = morphd_http_exchange_of(f);
    if (x != NULL)
        x->answered = status;
}

/* What a reply's head holds at most: its own lines, the echoed type, the
 * plugins' fields and an allowed origin (a preflight's echo is a status
 * response's, which has no such bound). */
#define REPLY_HEAD_MAX                                                         \
    (512 + MORPHD_FRAME_KEEP_MAX + MORPHD_HTTP_EXTRA_MAX + MORPHD_HTTP_ORIGIN_MAX)

static int chunk_frame_end(const morphd_frame_t *f, morphd_buf_t *out,
                           size_t mark, size_t body_len, uint32_t reply);

int morphd_http_frame_end(const morphd_frame_t *f, morphd_buf_t *out,
                          size_t mark, size_t body_len, uint32_t reply)
{
    if (f->shape->length == MORPHD_LEN_HTTP_CHUNK)
        return chunk_frame_end(f, out, mark, body_len, reply);
    bool close = closes(f, reply);
    head_t h = reply_head(f, body_len, close);
    /* one pass into the stack, then where it goes: the head is written
     * once per reply (a pass to measure it cost as much again) */
    unsigned char head[REPLY_HEAD_MAX];
    text_t t = {head, 0, sizeof head};
    write_head(&t, &h);
    size_t n = t.n;
    if (morphd_buf_reserve(out, out->len + n) != 0)
        return -1;
    unsigned char *at = out->data + mark;
    memmove(at + n, at, body_len);
    if (n <= sizeof head) {
        memcpy(at, head, n);
    } else { /* past the bound (never, by the limits above): in place */
        text_t in_place = {at, 0, n};
        write_head(&in_place, &h);
    }
    out->len += n;
    answered(f, h.status);
    return close ? MORPHD_FRAME_CLOSE : 0;
}

size_t morphd_http_overhead(const morphd_frame_t *f, size_t body_len)
{
    head_t h = reply_head(f, body_len, closes(f, 0));
    /* a piece: its chunk's size line and CRLFs, and the last chunk */
    return head_size(&h) + (f->shape->length == MORPHD_LEN_HTTP_CHUNK ? 32 : 0);
}

/* A response of morphd's own appended to `out`: a 1xx is its status line
 * alone; any other has the status in words as its text/plain body, as
 * nginx's (204: no body). Returns 0 or -1. */
static int status_response(morphd_buf_t *out, head_t *h)
{
    char text[96];
    size_t body = 0;
    if (h->status >= 200 && h->status != 204)
        body = (size_t)snprintf(text, sizeof text, "%d %s\n", h->status,
                                morphd_http1_reason_phrase(h->status));
    h->type = "text/plain";
    h->type_len = sizeof "text/plain" - 1;
    h->body_len = body;
    size_t n = head_size(h);
    if (morphd_buf_reserve(out, out->len + n + body) != 0)
        return -1;
    text_t t = {out->data + out->len, 0, n};
    write_head(&t, h);
    memcpy(out->data + out->len + n, text, body);
    out->len += n + body;
    return 0;
}

int morphd_http_respond(const morphd_frame_t *f, morphd_buf_t *out, int status,
                        uint32_t reply)
{
    if (f->shape->length == MORPHD_LEN_HTTP_CHUNK) {
        /* a piece of a streamed body: no reply (204) is a piece of none,
         * which still begins or ends the response; a failed piece is a
         * 500 while nothing of the response went out, and else the
         * response is cut short (the close, without its last chunk: how
         * HTTP/1.1 says a response failed midway) */
        if (status == 204)
            return f->guess & (MORPHD_HTTP_FIRST | MORPHD_HTTP_LAST) ||
                           (reply & MORPH_REPLY_CLOSE)
                       ? chunk_frame_end(f, out, out->len, 0, reply)
                       : 0;
        if (!(f->guess & MORPHD_HTTP_FIRST))
            return MORPHD_FRAME_CLOSE;
        reply |= MORPH_REPLY_CLOSE;
    }
    bool close = closes(f, reply);
    /* a 204 (no reply) keeps what the plugins set; a 500 or 408 is
     * morphd's own, with CORS alone (so a page can read its status) */
    head_t h = {status, NULL, {NULL, 0}, morphd_http_exchange_of(f),
                status == 204, NULL, 0, 0, close, BODY_LENGTH};
    if (status_response(out, &h) != 0)
        return -1;
    answered(f, status);
    return close ? MORPHD_FRAME_CLOSE : 0;
}

/* --- what plugins set --------------------------------------------------------- */

static bool is_token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int morphd_http_set_status(morphd_http_exchange_t *x, int status, char *why,
                           size_t why_size)
{
    if (status < 200 || status > 599 || status == 204 || status == 304) {
        snprintf(why, why_size, "status %d cannot carry a reply: give "
                 "200..599 but 204 and 304 (for no reply at all, 204, send "
                 "none: morph_out_no_reply)", status);
        return -1;
    }
    x->status = status;
    return 0;
}

/* The fields morphd writes itself, or that only it may (framing). */
static const char *const own_fields[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive",
    "upgrade", "te", "trailer", "date", "server", "proxy-connection",
};

/* Takes the line of field `name` out of x->extra, if there is one. */
static void drop_field(morphd_http_exchange_t *x, const char *name)
{
    size_t len = strlen(name), at = 0;
    while (at < x->extra.len) {
        unsigned char *line = x->extra.data + at;
        unsigned char *lf = memchr(line, '\n', x->extra.len - at);
        size_t n = (size_t)(lf - line) + 1;
        if (n > len && line[len] == ':' &&
            strncasecmp((const char *)line, name, len) == 0) {
            memmove(line, line + n, x->extra.len - at - n);
            x->extra.len -= n;
            return;
        }
        at += n;
    }
}

int morphd_http_add_header(morphd_http_exchange_t *x, const char *name,
                           const char *value, char *why, size_t why_size)
{
    size_t name_len = strlen(name), value_len = strlen(value);
    bool token = name_len > 0;
    for (size_t i = 0; i < name_len; i++)
        token = token && is_token_char((unsigned char)name[i]);
    if (!token) {
        snprintf(why, why_size, "'%.64s' is not a header field name (a "
                 "token: letters, digits, !#$%%&'*+-.^_`|~)", name);
        return -1;
    }
    for (size_t i = 0; i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            snprintf(why, why_size, "header field %.64s: a control "
                     "character in its value (CR and LF would split the "
                     "response)", name);
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof own_fields / sizeof *own_fields; i++)
        if (strcasecmp(name, own_fields[i]) == 0) {
            snprintf(why, why_size, "header field %s is morphd's to write",
                     name);
            return -1;
        }
    if (x->allow_origin.len > 0 &&
        strcasecmp(name, "access-control-allow-origin") == 0) {
        snprintf(why, why_size, "Access-Control-Allow-Origin is written by "
                 "http_allow_origin for this request");
        return -1;
    }
    bool type = strcasecmp(name, "content-type") == 0;
    if (type && x->typed)
        drop_field(x, "content-type"); /* a later stage's type wins */
    if (x->extra.len + name_len + value_len + 4 > MORPHD_HTTP_EXTRA_MAX) {
        snprintf(why, why_size, "more than %d bytes of header fields",
                 MORPHD_HTTP_EXTRA_MAX);
        return -1;
    }
    if (morphd_buf_append(&x->extra, name, name_len) != 0 ||
        morphd_buf_append(&x->extra, ": ", 2) != 0 ||
        morphd_buf_append(&x->extra, value, value_len) != 0 ||
        morphd_buf_append(&x->extra, "\r\n", 2) != 0) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    x->typed |= type;
    return 0;
}

/* --- the exchange ------------------------------------------------------------- */

static morphd_http1_span_t rebase(morphd_http1_span_t s,
                                  const unsigned char *from, size_t len,
                                  const unsigned char *to)
{
    if (s.p != NULL && s.p >= from && s.p < from + len)
        s.p = to + (s.p - from);
    return s; /* else outside the head: a constant ("*") */
}

morphd_http_exchange_t *
morphd_http_exchange_copy(const morphd_http_exchange_t *x)
{
    morphd_http_exchange_t *y = malloc(sizeof *y + x->head_len);
    if (y == NULL)
        return NULL;
    *y = *x;
    unsigned char *head = (unsigned char *)(y + 1);
    if (x->head_len > 0)
        memcpy(head, x->head, x->head_len);
    y->head = head;
    y->method = rebase(x->method, x->head, x->head_len, head);
    y->target = rebase(x->target, x->head, x->head_len, head);
    y->allow_origin = rebase(x->allow_origin, x->head, x->head_len, head);
    y->extra = (morphd_buf_t)MORPHD_BUF_INIT;
    if (morphd_buf_append(&y->extra, x->extra.data, x->extra.len) != 0) {
        free(y);
        return NULL;
    }
    return y;
}

void morphd_http_exchange_take(morphd_http_exchange_t *to,
                               morphd_http_exchange_t *from)
{
    if (to == NULL || from == NULL || to == from)
        return;
    to->status = from->status;
    to->typed = from->typed;
    morphd_buf_t extra = to->extra; /* the job frees what was there */
    to->extra = from->extra;
    from->extra = extra;
}

void morphd_http_exchange_free(morphd_http_exchange_t *x)
{
    if (x == NULL)
        return;
    morphd_buf_free(&x->extra);
    free(x);
}

/* --- CORS --------------------------------------------------------------------- */

bool morphd_http_origin_valid(const char *text, char *why, size_t why_size)
{
    if (strcmp(text, "*") == 0)
        return true;
    size_t at = strncmp(text, "https://", 8) == 0  ? 8
                : strncmp(text, "http://", 7) == 0 ? 7
                                                   : 0;
    size_t len = strlen(text), host = at;
    bool ok = at > 0 && len <= MORPHD_HTTP_ORIGIN_MAX;
    if (ok && text[at] == '[') { /* an IPv6 literal */
        const char *end = strchr(text + at, ']');
        ok = end != NULL && end > text + at + 1;
        at = ok ? (size_t)(end - text) + 1 : at;
    } else {
        while (ok && at < len &&
               (((text[at] | 0x20) >= 'a' && (text[at] | 0x20) <= 'z') ||
                (text[at] >= '0' && text[at] <= '9') || text[at] == '.' ||
                text[at] == '-'))
            at++;
        ok = at > host;
    }
    if (ok && text[at] == ':') {
        size_t digits = ++at;
        while (at < len && text[at] >= '0' && text[at] <= '9')
            at++;
        ok = at > digits && at - digits <= 5;
    }
    if (ok && at == len)
        return true;
    snprintf(why, why_size, "'%.80s' is not an origin: give "
             "scheme://host[:port] as a browser sends it in Origin, without "
             "a path or a trailing slash (e.g. https://app.example.com), or "
             "* alone for any", text);
    return false;
}

/* The Access-Control-Allow-Origin for a request whose head is
 * head[0, len), or an empty span: the service allows no origin, the
 * request has none, or not this one. */
static morphd_http1_span_t allowed_origin(const morphd_codec_t *c,
                                          const unsigned char *head,
                                          size_t len)
{
    morphd_http1_span_t none = {NULL, 0}, origin;
    if (c->n_http_origins == 0 ||
        !morphd_http1_field(head, len, "origin", 0, &origin))
        return none;
    if (strcmp(c->http_origins[0], "*") == 0)
        return (morphd_http1_span_t){(const unsigned char *)"*", 1};
    for (size_t i = 0; i < c->n_http_origins; i++)
        if (strlen(c->http_origins[i]) == origin.len &&
            memcmp(c->http_origins[i], origin.p, origin.len) == 0)
            return origin;
    return none;
}

/* --- requests ----------------------------------------------------------------- */

/* The exchange for a request whose head, after `skipped` empty lines,
 * ends at head_end; and, for the access log, what the codec answers it
 * itself (0: the plugins do). */
/* x made anew for the request `req`, whose head is head[0, head_len)
 * (its spans rebased there from `from`, where req read them). */
static void exchange_reset(morphd_http_exchange_t *x,
                           const morphd_http1_request_t *req,
                           const unsigned char *from,
                           const unsigned char *head, size_t head_len)
{
    x->head = head;
    x->head_len = head_len;
    x->method = rebase(req->method, from, head_len, head);
    x->target = rebase(req->target, from, head_len, head);
    x->minor = req->minor;
    x->body_len = 0;
    x->allow_origin = (morphd_http1_span_t){NULL, 0};
    x->status = 0;
    x->typed = false;
    x->extra.len = 0;
    x->answered = 0;
    x->why = NULL;
    x->sent = 0;
}

static morphd_http_exchange_t *begin(const morphd_codec_t *c,
                                     const unsigned char *data,
                                     const morphd_http1_request_t *req,
                                     size_t head_end, int answered)
{
    morphd_http_exchange_t *x = c->exchange;
    if (x == NULL)
        return NULL;
    const unsigned char *head = data + req->skipped;
    exchange_reset(x, req, head, head,
                   head_end > req->skipped ? head_end - req->skipped : 0);
    x->answered = answered;
    return x;
}

/* An answer of the codec's own, into the codec's scratch (status_response),
 * the connection closed after it when `close`. Returns `st`, what decode()
 * returns with it. */
static morphd_decode_status_t answer(const morphd_codec_t *c,
                                     morphd_decoded_t *d, head_t *h,
                                     morphd_decode_status_t st)
{
    morphd_buf_t *b = c->scratch;
    b->len = 0;
    if (status_response(b, h) != 0) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return MORPHD_DECODE_INVALID;
    }
    d->direct = b->data;
    d->direct_len = b->len;
    d->direct_close = h->close;
    return st;
}

/* A request that cannot be served: its status, then the connection is
 * closed (what follows it in the stream cannot be trusted). */
static morphd_decode_status_t refuse(const morphd_codec_t *c,
                                     morphd_decoded_t *d, const unsigned char *data,
                                     const morphd_http1_request_t *req,
                                     int status, const char *reason)
{
    snprintf(d->reason, sizeof d->reason, "%d: %s", status, reason);
    morphd_http_exchange_t *x = begin(c, data, req, 0, status);
    if (x != NULL)
        x->why = d->reason;
    head_t h = {status, NULL, {NULL, 0}, NULL, false, NULL, 0, 0, true,
                BODY_LENGTH};
    return answer(c, d, &h, MORPHD_DECODE_INVALID);
}

/* Whether a field's value, a comma-separated list of tokens, has `token`
 * (any case): Connection's "keep-alive, Upgrade", Upgrade's "websocket". */
static bool list_has(morphd_http1_span_t v, const char *token)
{
    size_t tlen = strlen(token), at = 0;
    while (at < v.len) {
        while (at < v.len && (v.p[at] == ' ' || v.p[at] == '\t' || v.p[at] == ','))
            at++;
        size_t start = at;
        while (at < v.len && v.p[at] != ',')
            at++;
        size_t end = at;
        while (end > start && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
            end--;
        if (end - start == tlen &&
            strncasecmp((const char *)v.p + start, token, tlen) == 0)
            return true;
    }
    return false;
}

/* Whether any `name` field of the head lists `token`. */
static bool fields_list(const morphd_http_exchange_t *x, const char *name,
                        const char *token)
{
    morphd_http1_span_t v;
    for (size_t i = 0; morphd_http1_field(x->head, x->head_len, name, i, &v); i++)
        if (list_has(v, token))
            return true;
    return false;
}

/* A GET with Upgrade: websocket (RFC 6455 4.2): 101 and the switch to
 * WebSocket frames (ws.h), or the status that refuses it, then the
 * close. A handshake with an Origin (a browser's) is taken only from an
 * origin http_allow_origin allows: what CORS is to fetch(), so that a
 * page elsewhere cannot talk to a service that does not allow it. */
static morphd_decode_status_t ws_upgrade(const morphd_codec_t *c,
                                         morphd_decoded_t *d,
                                         const unsigned char *data,
                                         const morphd_http1_request_t *req)
{
    morphd_http_exchange_t *x = begin(c, data, req, req->head_len, 101);
    if (x == NULL)
        return refuse(c, d, data, req, 500, "no exchange for a handshake");
    morphd_http1_span_t v, origin;
    if (req->minor < 1)
        return refuse(c, d, data, req, 400, "a WebSocket handshake in "
                      "HTTP/1.0");
    if (req->chunked || (req->has_length && req->length > 0))
        return refuse(c, d, data, req, 400, "a WebSocket handshake with a "
                      "body");
    if (!fields_list(x, "connection", "upgrade"))
        return refuse(c, d, data, req, 400, "Upgrade: websocket without "
                      "Connection: Upgrade");
    if (!morphd_http1_field(x->head, x->head_len, "sec-websocket-version", 0,
                            &v) ||
        v.len != 2 || memcmp(v.p, "13", 2) != 0) {
        snprintf(d->reason, sizeof d->reason, "426: a WebSocket version "
                 "other than 13");
        x->answered = 426;
        x->why = d->reason;
        head_t h = {426, "Sec-WebSocket-Version: 13\r\n", {NULL, 0}, NULL,
                    false, NULL, 0, 0, true, BODY_LENGTH};
        return answer(c, d, &h, MORPHD_DECODE_INVALID);
    }
    char accept[MORPHD_WS_ACCEPT_SIZE];
    if (!morphd_http1_field(x->head, x->head_len, "sec-websocket-key", 0, &v) ||
        !morphd_ws_accept(v.p, v.len, accept))
        return refuse(c, d, data, req, 400, "a WebSocket handshake without "
                      "a valid Sec-WebSocket-Key");
    if (morphd_http1_field(x->head, x->head_len, "origin", 0, &origin) &&
        allowed_origin(c, x->head, x->head_len).len == 0)
        return refuse(c, d, data, req, 403, "a WebSocket handshake from an "
                      "origin http_allow_origin does not allow");
    morphd_buf_t *b = c->scratch;
    b->len = 0;
    char text[256];
    int n = snprintf(text, sizeof text,
                     "HTTP/1.1 101 Switching Protocols\r\nServer: morphd\r\n"
                     "Date: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     date_now(), accept);
    if (morphd_buf_append(b, text, (size_t)n) != 0) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return MORPHD_DECODE_INVALID;
    }
    d->direct = b->data;
    d->direct_len = b->len;
    d->direct_switch = true;
    d->used = req->head_len;
    return MORPHD_DECODE_SKIP;
}

/* A request of another method than POST: a CORS preflight for an origin
 * http_allow_origin allows is answered 204 with what the browser asked
 * for; any other 405 (Allow: POST), the connection closed after it when
 * it has a body. */
static morphd_decode_status_t not_post(const morphd_codec_t *c,
                                       morphd_decoded_t *d,
                                       const unsigned char *data,
                                       const morphd_http1_request_t *req)
{
    bool has_body = req->chunked || (req->has_length && req->length > 0);
    bool close = has_body || !req->keep_alive;
    morphd_decode_status_t st =
        has_body ? MORPHD_DECODE_INVALID : MORPHD_DECODE_SKIP;
    d->used = req->head_len;
    morphd_http1_span_t upgrade;
    if (req->method.len == 3 && memcmp(req->method.p, "GET", 3) == 0 &&
        morphd_http1_field(data + req->skipped, req->head_len - req->skipped,
                           "upgrade", 0, &upgrade) &&
        list_has(upgrade, "websocket"))
        return ws_upgrade(c, d, data, req);
    morphd_http_exchange_t *x = begin(c, data, req, req->head_len, 405);
    morphd_http1_span_t method;
    if (x != NULL && req->method.len == 7 &&
        memcmp(req->method.p, "OPTIONS", 7) == 0 &&
        morphd_http1_field(x->head, x->head_len,
                           "access-control-request-method", 0, &method)) {
        x->allow_origin = allowed_origin(c, x->head, x->head_len);
        if (x->allow_origin.len > 0) {
            head_t h = {204, "Access-Control-Allow-Methods: POST\r\n"
                             "Access-Control-Max-Age: 86400\r\n",
                        {NULL, 0}, x, false, NULL, 0, 0, close, BODY_LENGTH};
            morphd_http1_field(x->head, x->head_len,
                               "access-control-request-headers", 0,
                               &h.allow_headers);
            x->answered = 204;
            return answer(c, d, &h, st);
        }
    }
    /* without a body the connection goes on, as after any answer */
    snprintf(d->reason, sizeof d->reason, "405: method %.*s",
             (int)(req->method.len < 32 ? req->method.len : 32),
             (const char *)req->method.p);
    head_t h = {405, "Allow: POST\r\n", {NULL, 0}, NULL, false, NULL, 0, 0,
                close, BODY_LENGTH};
    return answer(c, d, &h, st);
}

static morphd_decode_status_t
stream_begin(const morphd_codec_t *c, morphd_http_stream_t *st,
             morphd_decoded_t *d, const unsigned char *data, size_t len,
             const morphd_http1_request_t *req, bool eof);
static morphd_decode_status_t stream_body(const morphd_codec_t *c,
                                          morphd_http_stream_t *st,
                                          morphd_decoded_t *d,
                                          const unsigned char *data,
                                          size_t len, size_t at, bool eof);

static morphd_decode_status_t http_decode(const morphd_codec_t *c,
                                          void *state,
                                          const unsigned char *data,
                                          size_t len, size_t from, bool eof,
                                          morphd_decoded_t *d)
{
    d->direct_len = 0;
    d->direct_close = false;
    d->direct_switch = false;
    morphd_http_stream_t *stream = c->http_stream ? state : NULL;
    if (stream != NULL && morphd_http_stream_in_body(stream))
        return stream_body(c, stream, d, data, len, 0, eof);
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
        return refuse(c, d, data, &req, req.status, req.reason);
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
    if (req.method.len != 4 || memcmp(req.method.p, "POST", 4) != 0)
        return not_post(c, d, data, &req);
    if (stream != NULL) /* framing = stream: the body as it arrives */
        return stream_begin(c, stream, d, data, len, &req, eof);
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
            return refuse(c, d, data, &req, req.status, req.reason);
        msg = b->data != NULL ? b->data : data;
        used = at + n;
    } else {
        uint64_t n = req.has_length ? req.length : 0;
        if (n > c->max_message)
            return refuse(c, d, data, &req, 413, "a body over max_message");
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
        if (req.expect_continue && !(from & MORPHD_HTTP_IN_BODY) &&
            len == at) {
            head_t h = {100, NULL, {NULL, 0}, NULL, false, NULL, 0, 0, false,
                        BODY_LENGTH};
            return answer(c, d, &h, MORPHD_DECODE_MORE);
        }
        return MORPHD_DECODE_MORE;
    }
    d->msg = msg;
    d->len = msg_len;
    d->used = used;
    morphd_http_exchange_t *x = begin(c, data, &req, req.head_len, 0);
    if (x != NULL) {
        x->body_len = msg_len;
        x->allow_origin = allowed_origin(c, x->head, x->head_len);
    }
    bool keep_type = req.content_type.len > 0 &&
                     req.content_type.len <= MORPHD_FRAME_KEEP_MAX;
    d->frame = (morphd_frame_t){&c->shape,
                                keep_type ? req.content_type.p : NULL,
                                keep_type ? req.content_type.len : 0,
                                req.keep_alive ? 0 : MORPHD_HTTP_CLOSE, x};
    return MORPHD_DECODE_MESSAGE;
}

const morphd_codec_ops_t morphd_codec_http = {"http", http_decode};

void morphd_codec_http_init(morphd_codec_t *c, size_t max_message,
                            size_t max_head, morphd_buf_t *scratch,
                            morphd_http_exchange_t *exchange,
                            morphd_http_origins_t origins)
{
    memset(c, 0, sizeof *c);
    c->ops = &morphd_codec_http;
    c->max_message = max_message;
    c->http_max_head = max_head;
    c->scratch = scratch;
    c->exchange = exchange;
    c->http_origins = origins.list;
    c->n_http_origins = origins.n;
    c->answers = true;
    c->shape.length = MORPHD_LEN_HTTP;
    /* a request: its line, its header block, its body with a chunked
     * encoding's overhead (a body of tiny chunks past this is refused as
     * too long, without a 413) */
    c->max_frame = MORPHD_HTTP1_MAX_LINE + 2 + max_head + 2 * max_message +
                   64 * 1024;
}

/* --- framing = stream ---------------------------------------------------------- */

/* Where a chunked body is, between the pieces read. */
enum { STEP_SIZE, STEP_DATA, STEP_CRLF, STEP_TRAILER };

struct morphd_http_stream {
    bool in_body;
    bool first;          /* no piece of this body handed on yet */
    bool chunked;        /* Transfer-Encoding: chunked, else Content-Length */
    int step;            /* chunked: STEP_* */
    uint64_t remaining;  /* Content-Length's bytes to come; a chunk's */
    size_t trailers;     /* chunked: the trailer fields' bytes so far */
    unsigned flags;      /* every piece's frame: MORPHD_HTTP_CLOSE, _RAW */
    morphd_buf_t head;   /* the request's head: its input is gone by the
                            second piece, the exchange points in here */
    morphd_http1_span_t type; /* its Content-Type, in head */
    morphd_http_exchange_t x;
};

const morphd_frame_shape_t morphd_http_chunk_shape = {
    .length = MORPHD_LEN_HTTP_CHUNK};

void morphd_codec_http_stream(morphd_codec_t *c) { c->http_stream = true; }

morphd_http_stream_t *morphd_http_stream_new(void)
{
    return calloc(1, sizeof(morphd_http_stream_t));
}

void morphd_http_stream_free(morphd_http_stream_t *st)
{
    if (st == NULL)
        return;
    morphd_buf_free(&st->head);
    morphd_buf_free(&st->x.extra);
    free(st);
}

bool morphd_http_stream_in_body(const morphd_http_stream_t *st)
{
    return st != NULL && st->in_body;
}

morphd_http_exchange_t *morphd_http_stream_exchange(morphd_http_stream_t *st)
{
    return &st->x;
}

/* A piece of the body (n bytes at msg; `used` of the input), or its end
 * (last, no bytes): a message. */
static morphd_decode_status_t piece(morphd_http_stream_t *st,
                                    morphd_decoded_t *d,
                                    const unsigned char *msg, size_t n,
                                    size_t used, bool last)
{
    d->msg = msg;
    d->len = n;
    d->used = used;
    st->x.body_len += n;
    size_t guess = st->flags | (st->first ? MORPHD_HTTP_FIRST : 0) |
                   (last ? MORPHD_HTTP_LAST : 0);
    st->first = false;
    if (last)
        st->in_body = false;
    d->frame = (morphd_frame_t){&morphd_http_chunk_shape, st->type.p,
                                st->type.len, guess, &st->x};
    return MORPHD_DECODE_MESSAGE;
}

/* No piece in what is here: the bytes read so far are used (the decoder
 * keeps the rest, a chunk's size line cut short), or more are awaited. */
static morphd_decode_status_t wait_more(morphd_decoded_t *d, size_t at, bool eof)
{
    if (at > 0) {
        d->used = at;
        return MORPHD_DECODE_SKIP;
    }
    if (eof) {
        snprintf(d->reason, sizeof d->reason, "the client stopped sending in "
                 "a request's body");
        return MORPHD_DECODE_INVALID;
    }
    d->scanned = 0;
    return MORPHD_DECODE_MORE;
}

/* A body that goes wrong midway (a malformed chunk): its status while
 * nothing of the response went out, else the response is cut short. The
 * connection closes either way. */
static morphd_decode_status_t stream_refuse(const morphd_codec_t *c,
                                            morphd_http_stream_t *st,
                                            morphd_decoded_t *d, int status,
                                            const char *reason)
{
    snprintf(d->reason, sizeof d->reason, "%d: %s", status, reason);
    st->in_body = false;
    if (!st->first)
        return MORPHD_DECODE_INVALID;
    st->x.answered = status;
    st->x.why = d->reason;
    head_t h = {status, NULL, {NULL, 0}, NULL, false, NULL, 0, 0, true, 0};
    return answer(c, d, &h, MORPHD_DECODE_INVALID);
}

static morphd_decode_status_t stream_body(const morphd_codec_t *c,
                                          morphd_http_stream_t *st,
                                          morphd_decoded_t *d,
                                          const unsigned char *data,
                                          size_t len, size_t at, bool eof)
{
    morphd_http1_request_t req; /* the reason of a malformed chunk */
    morphd_http1_status_t r;
    size_t used;
    if (!st->chunked) {
        size_t avail = len - at;
        size_t n = avail < st->remaining ? avail : (size_t)st->remaining;
        st->remaining -= n;
        if (n == 0 && st->remaining > 0)
            return wait_more(d, at, eof);
        return piece(st, d, data + at, n, at + n, st->remaining == 0);
    }
    for (;;) {
        switch (st->step) {
        case STEP_SIZE: {
            uint64_t size;
            /* (any size: 2^60 bounds the digits, not the body) */
            r = morphd_http1_chunk_size(data + at, len - at, 1ull << 60, &used,
                                        &size, &req);
            if (r != MORPHD_HTTP1_DONE)
                break;
            at += used;
            st->remaining = size;
            st->step = size == 0 ? STEP_TRAILER : STEP_DATA;
            continue;
        }
        case STEP_DATA: {
            size_t avail = len - at;
            size_t n = avail < st->remaining ? avail : (size_t)st->remaining;
            if (n == 0)
                return wait_more(d, at, eof);
            st->remaining -= n;
            if (st->remaining == 0)
                st->step = STEP_CRLF;
            return piece(st, d, data + at, n, at + n, false);
        }
        case STEP_CRLF:
            r = morphd_http1_chunk_end(data + at, len - at, &used, &req);
            if (r != MORPHD_HTTP1_DONE)
                break;
            at += used;
            st->step = STEP_SIZE;
            continue;
        default: { /* STEP_TRAILER */
            bool blank;
            r = morphd_http1_trailer(data + at, len - at, &used, &blank, &req);
            if (r != MORPHD_HTTP1_DONE)
                break;
            if ((st->trailers += used) > 16384)
                return stream_refuse(c, st, d, 400, "trailer fields over 16 KiB");
            at += used;
            if (blank)
                return piece(st, d, data + at, 0, at, true);
            continue;
        }
        }
        /* the step did not get through what is here */
        if (r == MORPHD_HTTP1_ERROR)
            return stream_refuse(c, st, d, req.status, req.reason);
        return wait_more(d, at, eof);
    }
}

/* A POST's head: the request is kept (its exchange, for the plugins and
 * the pieces' frames), then its body is read as far as it is here. */
static morphd_decode_status_t
stream_begin(const morphd_codec_t *c, morphd_http_stream_t *st,
             morphd_decoded_t *d, const unsigned char *data, size_t len,
             const morphd_http1_request_t *req, bool eof)
{
    const unsigned char *from = data + req->skipped;
    size_t head_len = req->head_len - req->skipped;
    st->head.len = 0;
    if (morphd_buf_append(&st->head, from, head_len) != 0) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return MORPHD_DECODE_INVALID;
    }
    const unsigned char *h = st->head.data;
    exchange_reset(&st->x, req, from, h, head_len);
    st->x.allow_origin = allowed_origin(c, h, head_len);
    st->type = req->content_type.len > 0 &&
                       req->content_type.len <= MORPHD_FRAME_KEEP_MAX
                   ? rebase(req->content_type, from, head_len, h)
                   : (morphd_http1_span_t){NULL, 0};
    st->in_body = true;
    st->first = true;
    st->chunked = req->chunked;
    st->step = STEP_SIZE;
    st->remaining = req->has_length ? req->length : 0;
    st->trailers = 0;
    st->flags = (req->keep_alive ? 0 : MORPHD_HTTP_CLOSE) |
                (req->minor == 0 ? MORPHD_HTTP_RAW : 0);
    if (req->expect_continue && len == req->head_len &&
        (st->chunked || st->remaining > 0)) {
        /* 100 Continue, and the body when the client sends it (an empty
         * one ends here: its end is no piece of the input to wait for) */
        head_t hc = {100, NULL, {NULL, 0}, NULL, false, NULL, 0, 0, false, 0};
        d->used = req->head_len;
        return answer(c, d, &hc, MORPHD_DECODE_SKIP);
    }
    return stream_body(c, st, d, data, len, req->head_len, eof);
}

/* A piece's reply at out[mark, +body_len) as the response goes on: the
 * response's head before the first (Transfer-Encoding: chunked), each
 * reply a chunk (an empty one is none: it would end the body), and the
 * last chunk after the body's end, or after a reply after which the
 * plugin closes. An HTTP/1.0 client's: the head says Connection: close,
 * the replies go as they are, and the close ends the body. */
static int chunk_frame_end(const morphd_frame_t *f, morphd_buf_t *out,
                           size_t mark, size_t body_len, uint32_t reply)
{
    bool raw = (f->guess & MORPHD_HTTP_RAW) != 0;
    bool cut = (reply & MORPH_REPLY_CLOSE) != 0;
    bool end = (f->guess & MORPHD_HTTP_LAST) || cut;
    bool close = cut || raw || (f->guess & MORPHD_HTTP_CLOSE);
    unsigned char pre[REPLY_HEAD_MAX + 24];
    text_t t = {pre, 0, sizeof pre};
    head_t h = reply_head(f, 0, close);
    if (f->guess & MORPHD_HTTP_FIRST) {
        h.body = raw ? BODY_TO_CLOSE : BODY_CHUNKED;
        write_head(&t, &h);
    }
    if (!raw && body_len > 0) { /* the chunk's size, in hex */
        char hex[24];
        int n = snprintf(hex, sizeof hex, "%zx\r\n", body_len);
        put(&t, hex, (size_t)n);
    }
    if (t.n > sizeof pre) /* never, by REPLY_HEAD_MAX's bound */
        return -1;
    const char *post = raw    ? ""
                       : end  ? (body_len > 0 ? "\r\n0\r\n\r\n" : "0\r\n\r\n")
                       : body_len > 0 ? "\r\n"
                                      : "";
    size_t m = strlen(post);
    if (morphd_buf_reserve(out, out->len + t.n + m) != 0)
        return -1;
    unsigned char *at = out->data + mark;
    memmove(at + t.n, at, body_len);
    memcpy(at, pre, t.n);
    memcpy(at + t.n + body_len, post, m);
    out->len += t.n + m;
    morphd_http_exchange_t *x = morphd_http_exchange_of(f);
    if (x != NULL) {
        x->sent += t.n + body_len + m;
        if (end)
            x->answered = h.status; /* logged once the response is whole */
    }
    return end && close ? MORPHD_FRAME_CLOSE : 0;
}
