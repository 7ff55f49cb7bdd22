/*
 * http.h -- the codec of http:// endpoints (http.c) and its exchange: the
 * request a message came in, as the plugins may read it (its method,
 * target and header fields), and the response they may shape (its status
 * and header fields), which the codec writes around the reply.
 *
 * One exchange per service and worker serves the message being
 * transformed now: a request's head is still in the connection's input
 * then, so nothing is copied. A message that goes in flight (a job) takes
 * a copy of its own (morphd_http_exchange_copy), head and all.
 */
#ifndef MORPHD_HTTP_H
#define MORPHD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "codec/codec.h"
#include "codec/http1.h"

/* The header bytes the plugins may add to one response, in all. */
#define MORPHD_HTTP_EXTRA_MAX 4096
/* The longest origin http_allow_origin takes (scheme://host:port). */
#define MORPHD_HTTP_ORIGIN_MAX 255

struct morphd_http_exchange {
    /* the request: its line, header fields and blank line, and spans in it */
    const unsigned char *head;
    size_t head_len;
    morphd_http1_span_t method, target;
    unsigned minor;
    uint64_t body_len;
    /* CORS: the Access-Control-Allow-Origin to send (the request's Origin,
     * or "*"); empty: none */
    morphd_http1_span_t allow_origin;
    /* the response as the plugins shape it */
    int status;         /* 0: 200 */
    bool typed;         /* `extra` has a Content-Type: the echo is dropped */
    morphd_buf_t extra; /* "Name: value\r\n" lines */
    /* what was answered, for the access log (0: nothing yet), and why
     * the codec refused the request (during its answer's callback) */
    int answered;
    const char *why;
    uint64_t sent; /* framing = stream: the response's bytes so far */
};

/* http_allow_origin, as http.c reads it. */
typedef struct morphd_http_origins {
    char *const *list; /* exact origins, or the one "*" */
    size_t n;
} morphd_http_origins_t;

/* Sets up `c` for http:// endpoints: requests' bodies up to max_message,
 * header blocks up to max_head, chunked bodies decoded into `scratch`,
 * the request being served in `exchange` (both the owner's), and CORS
 * answered for `origins` (n = 0: none). */
void morphd_codec_http_init(morphd_codec_t *c, size_t max_message,
                            size_t max_head, morphd_buf_t *scratch,
                            morphd_http_exchange_t *exchange,
                            morphd_http_origins_t origins);

/* Whether `text` is an origin http_allow_origin takes: "*", or
 * http[s]://HOST[:PORT] with no path. Sets why (a sentence) when not. */
bool morphd_http_origin_valid(const char *text, char *why, size_t why_size);

/* morphd_frame_end for http's frames: the reply at out[mark, +body_len)
 * becomes the body of the response (200 unless a plugin set another). */
int morphd_http_frame_end(const morphd_frame_t *f, morphd_buf_t *out,
                          size_t mark, size_t body_len, uint32_t reply);

/* The bytes of a response's head for a body of body_len bytes. */
size_t morphd_http_overhead(const morphd_frame_t *f, size_t body_len);

/* morphd's own HTTP response of `status` to a request of an http frame
 * (its words as a text/plain body; 204: none), appended to out. Returns
 * 0, -1 or MORPHD_FRAME_CLOSE. */
int morphd_http_respond(const morphd_frame_t *f, morphd_buf_t *out, int status,
                        uint32_t reply);

/* The exchange of an http frame (a response's, or a piece's); NULL for
 * any other. */
static inline morphd_http_exchange_t *
morphd_http_exchange_of(const morphd_frame_t *f)
{
    return f != NULL && f->shape != NULL &&
                   f->shape->length >= MORPHD_LEN_HTTP
               ? (morphd_http_exchange_t *)f->state
               : NULL;
}

/* --- framing = stream -------------------------------------------------------- */

/* A service with framing = stream takes a POST's body as it arrives: each
 * piece the connection reads is a message (MORPH_MSG_CHUNK), the body's
 * end one more (MORPH_MSG_CHUNK | MORPH_MSG_END, no bytes), and the
 * response goes out as they are answered, with chunked encoding (an
 * HTTP/1.0 client's without, to the close). A body of any length; the
 * memory it takes is the read buffer and max_pending_output. The
 * connection's state between pieces is a morphd_http_stream_t, its
 * decoder's state. */
typedef struct morphd_http_stream morphd_http_stream_t;
morphd_http_stream_t *morphd_http_stream_new(void);
void morphd_http_stream_free(morphd_http_stream_t *st);
/* Whether a body is streaming through now (its response under way). */
bool morphd_http_stream_in_body(const morphd_http_stream_t *st);
/* The request being streamed (the one its messages' frames refer to). */
morphd_http_exchange_t *morphd_http_stream_exchange(morphd_http_stream_t *st);

/* Sets up `c` (morphd_codec_http_init's) for framing = stream. */
void morphd_codec_http_stream(morphd_codec_t *c);

/* A piece's frame (morphd_frame_t.guess, with MORPHD_HTTP_CLOSE): the
 * first of a body (its reply begins the response), the last (the body's
 * end: the response ends after its reply), an HTTP/1.0 request's (no
 * chunked encoding: the body to the close). */
#define MORPHD_HTTP_FIRST 2u
#define MORPHD_HTTP_LAST 4u
#define MORPHD_HTTP_RAW 8u
extern const morphd_frame_shape_t morphd_http_chunk_shape;

/* A copy of its own, for a message in flight; NULL when out of memory. */
morphd_http_exchange_t *
morphd_http_exchange_copy(const morphd_http_exchange_t *x);
void morphd_http_exchange_free(morphd_http_exchange_t *x);
/* What a job's copy `from` was given (status, fields) goes back to `to`,
 * the exchange its run goes on with: a message deferred and completed
 * inside the same transform() call. */
void morphd_http_exchange_take(morphd_http_exchange_t *to,
                               morphd_http_exchange_t *from);

/* What a plugin may set (the ABI's http_status and http_header_add).
 * Return 0, or -1 with the reason in why: a status outside 200..599, or
 * 204 and 304 (which have no body); a field name that is no token, a
 * value with a control character, one of the fields morphd writes itself
 * (Content-Length, Transfer-Encoding, Connection, Date...), or more than
 * MORPHD_HTTP_EXTRA_MAX bytes of them. A Content-Type replaces the
 * request's, which is echoed otherwise. */
int morphd_http_set_status(morphd_http_exchange_t *x, int status, char *why,
                           size_t why_size);
int morphd_http_add_header(morphd_http_exchange_t *x, const char *name,
                           const char *value, char *why, size_t why_size);

#endif
