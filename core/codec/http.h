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

/* The exchange of an http frame; NULL for any other. */
static inline morphd_http_exchange_t *
morphd_http_exchange_of(const morphd_frame_t *f)
{
    return f != NULL && f->shape != NULL &&
                   f->shape->length == MORPHD_LEN_HTTP
               ? (morphd_http_exchange_t *)f->state
               : NULL;
}

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
