/*
 * http1.h -- HTTP/1.1 requests (RFC 9112) read from bytes: the request
 * line and header block, and a chunked body. No I/O and no allocation
 * but the body buffer it is given: the codec of http:// endpoints calls it
 * over the bytes a connection has buffered, from the start of a request,
 * as often as more arrive.
 *
 * Strict where leniency is how requests get smuggled past a proxy: a bare
 * CR, obs-fold, whitespace before a field's colon, Content-Length with
 * Transfer-Encoding, differing Content-Lengths, a Transfer-Encoding other
 * than chunked are errors (400), as nginx and HAProxy treat them. A line
 * may end with LF alone (RFC 9112 2.2 allows a recipient to take it).
 *
 * Errors: the functions return MORPHD_HTTP1_DONE, _MORE, or _ERROR with
 * the status code to answer (400, 413, 414, 417, 431, 501, 505) and a
 * reason for the log.
 */
#ifndef MORPHD_HTTP1_H
#define MORPHD_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* A request line longer than this is answered 414 (nginx's default
 * large_client_header_buffers is 8k too). */
#define MORPHD_HTTP1_MAX_LINE 8192

typedef enum morphd_http1_status {
    MORPHD_HTTP1_DONE,
    MORPHD_HTTP1_MORE,
    MORPHD_HTTP1_ERROR,
} morphd_http1_status_t;

typedef struct morphd_http1_span {
    const unsigned char *p;
    size_t len;
} morphd_http1_span_t;

typedef struct morphd_http1_request {
    size_t skipped;          /* empty lines before the request line */
    size_t head_len;         /* from the start: those, the request line and
                                the header block with its blank line */
    morphd_http1_span_t method, target;
    unsigned minor;          /* HTTP/1.minor: 0 or 1 (a later 1.x is 1) */
    /* what framing and answering need of the header fields */
    bool has_length;
    uint64_t length;         /* Content-Length */
    bool chunked;            /* Transfer-Encoding: chunked */
    bool keep_alive;         /* the connection stays open after the reply */
    bool expect_continue;    /* Expect: 100-continue */
    morphd_http1_span_t content_type; /* empty when none */
    unsigned n_fields;
    /* set with MORPHD_HTTP1_ERROR */
    int status;
    const char *reason;
} morphd_http1_request_t;

/* Reads a request's line and header fields from data[0, len). DONE: req
 * is filled, and the body (if any) starts at req->head_len. MORE: no
 * blank line yet, and none of the limits is passed (the request line
 * within MORPHD_HTTP1_MAX_LINE, the header block within max_head). */
morphd_http1_status_t morphd_http1_parse_head(const unsigned char *data,
                                              size_t len, size_t max_head,
                                              morphd_http1_request_t *req);

/* Reads a chunked body from data[0, len) (RFC 9112 7.1: chunk-size with
 * extensions, the chunks, the last chunk, trailer fields). DONE: *used
 * bytes made the whole body and *body_len (<= max_body) is its length;
 * when `out` is not NULL the body's bytes are appended to it. MORE: not
 * all of it yet (nothing is appended). ERROR: req->status 400, or 413 as
 * soon as the chunks' sizes pass max_body. */
morphd_http1_status_t morphd_http1_chunked(const unsigned char *data,
                                           size_t len, size_t max_body,
                                           morphd_buf_t *out, size_t *used,
                                           size_t *body_len,
                                           morphd_http1_request_t *req);

/* The pieces of a chunked body, for reading one as it arrives (framing =
 * stream): a chunk-size line at data[0, len) (*used: the line, *size: the
 * chunk's; 413 past `limit`); the CRLF after a chunk's bytes; one trailer
 * field's line, or the blank line that ends the body (*blank). Each DONE,
 * MORE (not all there yet) or ERROR (400, 413). */
morphd_http1_status_t morphd_http1_chunk_size(const unsigned char *data,
                                              size_t len, uint64_t limit,
                                              size_t *used, uint64_t *size,
                                              morphd_http1_request_t *req);
morphd_http1_status_t morphd_http1_chunk_end(const unsigned char *data,
                                             size_t len, size_t *used,
                                             morphd_http1_request_t *req);
morphd_http1_status_t morphd_http1_trailer(const unsigned char *data,
                                           size_t len, size_t *used,
                                           bool *blank,
                                           morphd_http1_request_t *req);

/* The `index`-th (from 0) header field named `name` (any case) in a head
 * that morphd_http1_parse_head has read whole: its request line, fields
 * and blank line. Sets *value to its value, trimmed; false when there is
 * no such field. */
bool morphd_http1_field(const unsigned char *head, size_t len,
                        const char *name, size_t index,
                        morphd_http1_span_t *value);

/* The same, with its name (NULL `name`: the index-th field of any
 * name, for walking them all). */
bool morphd_http1_field_at(const unsigned char *head, size_t len,
                           const char *name, size_t index,
                           morphd_http1_span_t *name_out,
                           morphd_http1_span_t *value);

/* The reason phrase of a status this server answers ("OK", "Not
 * Found"...; "" for a status no RFC registers). */
const char *morphd_http1_reason_phrase(int status);

#endif
