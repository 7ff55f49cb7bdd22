/*
 * http1.c -- an HTTP/1.1 request's line, header fields and chunked body
 * read from bytes (http1.h). Our own rather than Debian's http-parser:
 * that one is archived upstream, is lenient by default where requests are
 * smuggled (obs-fold, a bare CR: its strict mode is chosen when it is
 * built), and calls back per piece, while the codec interface hands a
 * codec the buffered bytes of a request from its start; a parser over
 * those bytes, in the manner of picohttpparser, is what fits. Its fuzz
 * target (tests/fuzz/fuzz_http1.c) checks that a request split anywhere
 * reads the same.
 */
#include <string.h>
#include <strings.h>

#include "codec/http1.h"

/* A field's name and a method are tokens (RFC 9110 5.6.2): a table, as
 * every byte of every name is looked up (strchr cost a call each). */
#define T1(c) [c] = 1
static const unsigned char tchar[256] = {
    T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'),
    T1('+'), T1('-'), T1('.'), T1('^'), T1('_'), T1('`'), T1('|'), T1('~'),
    T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'),
    T1('8'), T1('9'),
    T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'),
    T1('I'), T1('J'), T1('K'), T1('L'), T1('M'), T1('N'), T1('O'), T1('P'),
    T1('Q'), T1('R'), T1('S'), T1('T'), T1('U'), T1('V'), T1('W'), T1('X'),
    T1('Y'), T1('Z'),
    T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'),
    T1('i'), T1('j'), T1('k'), T1('l'), T1('m'), T1('n'), T1('o'), T1('p'),
    T1('q'), T1('r'), T1('s'), T1('t'), T1('u'), T1('v'), T1('w'), T1('x'),
    T1('y'), T1('z'),
};
#undef T1

static inline bool is_tchar(unsigned char c) { return tchar[c] != 0; }

/* A field's value: VCHAR, obs-text, SP and HTAB (RFC 9110 5.5). */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static morphd_http1_status_t fail(morphd_http1_request_t *req, int status,
                                  const char *reason)
{
    req->status = status;
    req->reason = reason;
    return MORPHD_HTTP1_ERROR;
}

/* The line that starts at data[at]: its LF at *lf, its content ends at
 * *end (before a CR that precedes the LF). false: no LF in data[at, len). */
static bool find_line(const unsigned char *data, size_t len, size_t at,
                      size_t *end, size_t *lf)
{
    const unsigned char *nl = memchr(data + at, '\n', len - at);
    if (nl == NULL)
        return false;
    *lf = (size_t)(nl - data);
    *end = *lf > at && data[*lf - 1] == '\r' ? *lf - 1 : *lf;
    return true;
}

/* (inline, with the word's length known where it is a literal: a name of
 * another length costs a compare, not a call) */
static inline bool span_is(morphd_http1_span_t s, const char *word)
{
    size_t n = __builtin_strlen(word);
    return s.len == n && strncasecmp((const char *)s.p, word, n) == 0;
}

static morphd_http1_span_t trim(const unsigned char *p, size_t n)
{
    while (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return (morphd_http1_span_t){p, n};
}

/* The request line in data[at, end): METHOD SP TARGET SP HTTP/1.x. */
static morphd_http1_status_t request_line(const unsigned char *data,
                                          size_t at, size_t end,
                                          morphd_http1_request_t *req)
{
    size_t i = at;
    while (i < end && is_tchar(data[i]))
        i++;
    if (i == at || i == end || data[i] != ' ')
        return fail(req, 400, "a malformed request line (its method)");
    req->method = (morphd_http1_span_t){data + at, i - at};
    size_t t = ++i;
    while (i < end && data[i] > 0x20 && data[i] < 0x7f)
        i++;
    if (i == t || i == end || data[i] != ' ')
        return fail(req, 400, "a malformed request line (its target)");
    req->target = (morphd_http1_span_t){data + t, i - t};
    i++;
    if (end - i != 8 || memcmp(data + i, "HTTP/", 5) != 0 ||
        data[i + 5] < '0' || data[i + 5] > '9' || data[i + 6] != '.' ||
        data[i + 7] < '0' || data[i + 7] > '9')
        return fail(req, 400, "a malformed request line (its version)");
    if (data[i + 5] != '1')
        return fail(req, 505, "an HTTP version other than 1.x");
    req->minor = data[i + 7] == '0' ? 0 : 1; /* a later 1.x is read as 1.1 */
    return MORPHD_HTTP1_DONE;
}

/* Content-Length: digits only; several must agree. */
static morphd_http1_status_t content_length(morphd_http1_span_t v,
                                            morphd_http1_request_t *req)
{
    if (v.len == 0)
        return fail(req, 400, "an empty Content-Length");
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned)v.p[i] - '0';
        if (d > 9)
            return fail(req, 400, "a Content-Length that is not a number");
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
    }
    if (req->has_length && req->length != n)
        return fail(req, 400, "Content-Length given twice, differently");
    req->has_length = true;
    req->length = n;
    return MORPHD_HTTP1_DONE;
}

/* Connection: a list of options; close and keep-alive matter here. */
static void connection(morphd_http1_span_t v, bool *close, bool *keep)
{
    size_t i = 0;
    while (i <= v.len) {
        size_t j = i;
        while (j < v.len && v.p[j] != ',')
            j++;
        morphd_http1_span_t opt = trim(v.p + i, j - i);
        if (span_is(opt, "close"))
            *close = true;
        else if (span_is(opt, "keep-alive"))
            *keep = true;
        i = j + 1;
    }
}

/* One header field, data[at, end), without its line ending. */
static morphd_http1_status_t field(const unsigned char *data, size_t at,
                                   size_t end, morphd_http1_request_t *req,
                                   unsigned *hosts, bool *te, bool *close,
                                   bool *keep)
{
    if (data[at] == ' ' || data[at] == '\t')
        return fail(req, 400, "a header field folded onto the next line "
                    "(obs-fold)");
    size_t i = at;
    while (i < end && is_tchar(data[i]))
        i++;
    if (i == end || data[i] != ':')
        return fail(req, 400, i < end && (data[i] == ' ' || data[i] == '\t')
                                  ? "whitespace before a header field's colon"
                                  : "a malformed header field");
    if (i == at)
        return fail(req, 400, "a header field without a name");
    morphd_http1_span_t name = {data + at, i - at};
    for (size_t k = i + 1; k < end; k++)
        if (!is_value_char(data[k]))
            return fail(req, 400, data[k] == '\r'
                                      ? "a bare CR in a header field"
                                      : "a control character in a header "
                                        "field");
    morphd_http1_span_t v = trim(data + i + 1, end - i - 1);
    req->n_fields++;
    if (span_is(name, "content-length"))
        return content_length(v, req);
    if (span_is(name, "transfer-encoding")) {
        if (*te)
            return fail(req, 400, "Transfer-Encoding given twice");
        *te = true;
        if (!span_is(v, "chunked"))
            return fail(req, 400, "a Transfer-Encoding other than chunked");
        req->chunked = true;
    } else if (span_is(name, "connection")) {
        connection(v, close, keep);
    } else if (span_is(name, "expect")) {
        if (!span_is(v, "100-continue"))
            return fail(req, 417, "an Expect other than 100-continue");
        req->expect_continue = true;
    } else if (span_is(name, "host")) {
        ++*hosts;
    } else if (span_is(name, "content-type") && req->content_type.p == NULL) {
        req->content_type = v;
    }
    return MORPHD_HTTP1_DONE;
}

morphd_http1_status_t morphd_http1_parse_head(const unsigned char *data,
                                              size_t len, size_t max_head,
                                              morphd_http1_request_t *req)
{
    memset(req, 0, sizeof *req);
    size_t at = 0;
    /* empty lines before a request are ignored (RFC 9112 2.2), a few */
    while (at < len && at < 8 && (data[at] == '\n' || data[at] == '\r')) {
        if (data[at] == '\r' && at + 1 < len && data[at + 1] != '\n')
            return fail(req, 400, "a bare CR before the request line");
        at++;
    }
    if (at == len)
        return MORPHD_HTTP1_MORE;
    req->skipped = at;
    size_t end, lf;
    if (!find_line(data, len, at, &end, &lf)) /* its bytes, and a CR */
        return len - at > MORPHD_HTTP1_MAX_LINE + 1
                   ? fail(req, 414, "a request line over 8 KiB")
                   : MORPHD_HTTP1_MORE;
    if (end - at > MORPHD_HTTP1_MAX_LINE)
        return fail(req, 414, "a request line over 8 KiB");
    for (size_t k = at; k < end; k++)
        if (data[k] == '\r')
            return fail(req, 400, "a bare CR in the request line");
    morphd_http1_status_t st = request_line(data, at, end, req);
    if (st != MORPHD_HTTP1_DONE)
        return st;
    size_t fields = lf + 1; /* where the header block starts */
    unsigned hosts = 0;
    bool te = false, close = false, keep = false;
    at = fields;
    for (;;) {
        if (!find_line(data, len, at, &end, &lf))
            return len - fields > max_head
                       ? fail(req, 431, "a header block over "
                                        "http_max_header_size")
                       : MORPHD_HTTP1_MORE;
        if (lf + 1 - fields > max_head)
            return fail(req, 431, "a header block over http_max_header_size");
        if (end == at) /* the blank line */
            break;
        st = field(data, at, end, req, &hosts, &te, &close, &keep);
        if (st != MORPHD_HTTP1_DONE)
            return st;
        at = lf + 1;
    }
    req->head_len = lf + 1;
    if (req->chunked && req->has_length)
        return fail(req, 400, "both Content-Length and Transfer-Encoding");
    if (req->chunked && req->minor == 0)
        return fail(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (req->minor == 1 && hosts != 1)
        return fail(req, 400, hosts == 0 ? "an HTTP/1.1 request without Host"
                                         : "Host given twice");
    req->keep_alive = req->minor == 1 ? !close : keep && !close;
    return MORPHD_HTTP1_DONE;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Chunk extensions and trailer fields are read and ignored; their bytes
 * are bounded so that a body of tiny chunks cannot grow without end. */
#define CHUNK_LINE_MAX 4096
#define TRAILERS_MAX 16384

morphd_http1_status_t morphd_http1_chunk_size(const unsigned char *data,
                                              size_t len, uint64_t limit,
                                              size_t *used, uint64_t *size,
                                              morphd_http1_request_t *req)
{
    size_t i = 0;
    uint64_t n = 0;
    int h;
    while (i < len && (h = hex_value(data[i])) >= 0) {
        /* n <= limit before this digit: no overflow */
        n = n << 4 | (unsigned)h;
        if (n > limit)
            return fail(req, 413, "a chunked body over max_message");
        i++;
    }
    if (i == len)
        return i > CHUNK_LINE_MAX ? fail(req, 400, "a chunk size line over 4 KiB")
                                  : MORPHD_HTTP1_MORE;
    if (i == 0)
        return fail(req, 400, "a chunk without a size");
    size_t end, lf;
    if (!find_line(data, len, i, &end, &lf))
        return len > CHUNK_LINE_MAX ? fail(req, 400, "a chunk size line over 4 KiB")
                                    : MORPHD_HTTP1_MORE;
    if (lf > CHUNK_LINE_MAX)
        return fail(req, 400, "a chunk size line over 4 KiB");
    /* what follows the size: nothing, or BWS ";" extensions */
    size_t k = i;
    while (k < end && (data[k] == ' ' || data[k] == '\t'))
        k++;
    if (k < end && data[k] != ';')
        return fail(req, 400, "a malformed chunk size");
    for (; k < end; k++)
        if (!is_value_char(data[k]))
            return fail(req, 400, "a control character in a chunk extension");
    *used = lf + 1;
    *size = n;
    return MORPHD_HTTP1_DONE;
}

morphd_http1_status_t morphd_http1_chunk_end(const unsigned char *data,
                                             size_t len, size_t *used,
                                             morphd_http1_request_t *req)
{
    if (len == 0)
        return MORPHD_HTTP1_MORE;
    if (data[0] == '\n') {
        *used = 1;
        return MORPHD_HTTP1_DONE;
    }
    if (data[0] != '\r')
        return fail(req, 400, "a chunk not followed by CRLF");
    if (len < 2)
        return MORPHD_HTTP1_MORE;
    if (data[1] != '\n')
        return fail(req, 400, "a chunk not followed by CRLF");
    *used = 2;
    return MORPHD_HTTP1_DONE;
}

morphd_http1_status_t morphd_http1_trailer(const unsigned char *data,
                                           size_t len, size_t *used,
                                           bool *blank,
                                           morphd_http1_request_t *req)
{
    size_t end, lf;
    if (!find_line(data, len, 0, &end, &lf))
        return len > TRAILERS_MAX ? fail(req, 400, "trailer fields over 16 KiB")
                                  : MORPHD_HTTP1_MORE;
    for (size_t k = 0; k < end; k++)
        if (!is_value_char(data[k]))
            return fail(req, 400, "a control character in a trailer field");
    *blank = end == 0;
    if (end > 0 && (data[0] == ' ' || data[0] == '\t' ||
                    memchr(data, ':', end) == NULL))
        return fail(req, 400, "a malformed trailer field");
    *used = lf + 1;
    return MORPHD_HTTP1_DONE;
}

morphd_http1_status_t morphd_http1_chunked(const unsigned char *data,
                                           size_t len, size_t max_body,
                                           morphd_buf_t *out, size_t *used,
                                           size_t *body_len,
                                           morphd_http1_request_t *req)
{
    size_t at = 0, total = 0, n;
    size_t mark = out != NULL ? out->len : 0;
    morphd_http1_status_t st;
    for (;;) { /* chunk-size [chunk-ext] CRLF, the chunk, CRLF */
        uint64_t size;
        st = morphd_http1_chunk_size(data + at, len - at, max_body - total, &n,
                                     &size, req);
        if (st != MORPHD_HTTP1_DONE)
            goto out;
        at += n;
        if (size == 0)
            break;
        if (len - at < size + 1) {
            st = MORPHD_HTTP1_MORE;
            goto out;
        }
        size_t after = at + (size_t)size;
        st = morphd_http1_chunk_end(data + after, len - after, &n, req);
        if (st != MORPHD_HTTP1_DONE)
            goto out;
        if (out != NULL && morphd_buf_append(out, data + at, (size_t)size) != 0) {
            st = fail(req, 500, "out of memory");
            goto out;
        }
        total += (size_t)size;
        at = after + n;
    }
    /* trailer fields, then the blank line */
    size_t trailers = at;
    for (bool blank = false; !blank;) {
        st = morphd_http1_trailer(data + at, len - at, &n, &blank, req);
        if (st == MORPHD_HTTP1_DONE && at + n - trailers > TRAILERS_MAX)
            st = fail(req, 400, "trailer fields over 16 KiB");
        else if (st == MORPHD_HTTP1_MORE && len - trailers > TRAILERS_MAX)
            st = fail(req, 400, "trailer fields over 16 KiB");
        if (st != MORPHD_HTTP1_DONE)
            goto out;
        at += n;
    }
    *used = at;
    *body_len = total;
    return MORPHD_HTTP1_DONE;
out:
    if (out != NULL)
        out->len = mark;
    return st;
}

/* RFC 9110 section 15's, and RFC 6585's 428, 429, 431 and 511, RFC 7725's
 * 451, RFC 8470's 425; "" for a status none of them registers (the
 * reason phrase may be empty, RFC 9112 4). */
const char *morphd_http1_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 511: return "Network Authentication Required";
    }
    return "";
}

bool morphd_http1_field_at(const unsigned char *head, size_t len,
                           const char *name, size_t index,
                           morphd_http1_span_t *name_out,
                           morphd_http1_span_t *value)
{
    size_t name_len = name != NULL ? strlen(name) : 0;
    const unsigned char *lf = memchr(head, '\n', len);
    if (lf == NULL)
        return false;
    size_t at = (size_t)(lf - head) + 1; /* past the request line */
    while (at < len) {
        lf = memchr(head + at, '\n', len - at);
        size_t next = lf != NULL ? (size_t)(lf - head) + 1 : len;
        size_t end = lf != NULL ? (size_t)(lf - head) : len;
        if (end > at && head[end - 1] == '\r')
            end--;
        if (end == at) /* the blank line */
            return false;
        const unsigned char *colon = memchr(head + at, ':', end - at);
        size_t n = colon != NULL ? (size_t)(colon - (head + at)) : 0;
        if (colon != NULL &&
            (name == NULL ||
             (n == name_len &&
              strncasecmp((const char *)head + at, name, name_len) == 0)) &&
            index-- == 0) {
            size_t v = (size_t)(colon - head) + 1;
            *name_out = (morphd_http1_span_t){head + at, n};
            *value = trim(head + v, end - v);
            return true;
        }
        at = next;
    }
    return false;
}

bool morphd_http1_field(const unsigned char *head, size_t len,
                        const char *name, size_t index,
                        morphd_http1_span_t *value)
{
    morphd_http1_span_t n;
    return morphd_http1_field_at(head, len, name, index, &n, value);
}
