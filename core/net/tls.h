/*
 * tls.h -- TLS for tls:// endpoints, with OpenSSL 3 driven entirely from
 * the event loop: no blocking call and no thread. A service's context is
 * made from its tls_* keys when the configuration is built (so -t and a
 * reload find every problem with its file:line); a connection's TLS object
 * reads its ciphertext from the loop's read buffer and writes into the
 * loop's output buffer through a BIO of ours, so an idle connection holds
 * no TLS buffer at all (SSL_MODE_RELEASE_BUFFERS does the rest).
 */
#ifndef MORPHD_TLS_H
#define MORPHD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "conf/config.h"
#include "base/errors.h"

typedef struct ssl_ctx_st morphd_tls_ctx_t; /* OpenSSL's SSL_CTX */
typedef struct ssl_st morphd_tls_t;         /* OpenSSL's SSL */

/* The context of a service with a tls:// endpoint, from its tls_* keys:
 * NULL with every problem (file:line and the path) added to errs. Logs a
 * warning for a certificate that has expired or is not yet valid. */
morphd_tls_ctx_t *morphd_tls_ctx_new(const morphd_service_conf_t *conf,
                                     const char *file, morphd_errors_t *errs);
void morphd_tls_ctx_free(morphd_tls_ctx_t *ctx);

/* What a connection's TLS object reads from and writes to. One per loop:
 * every call below runs on the connection's loop and returns before the
 * next, so the loop's buffers can be shared. */
typedef struct morphd_tls_io {
    const unsigned char *in; /* ciphertext received, not yet taken */
    size_t in_len;
    const void *in_owner;    /* the connection `in` belongs to */
    morphd_buf_t out;        /* ciphertext to send, for the caller to flush */
} morphd_tls_io_t;

/* A server-side TLS object for one connection of `ctx`; `owner` tells
 * its input apart in morphd_tls_io_t. `http`: an https:// connection,
 * which agrees on ALPN http/1.1 (a tls:// one answers no ALPN). NULL when
 * out of memory. */
morphd_tls_t *morphd_tls_new(morphd_tls_ctx_t *ctx, morphd_tls_io_t *io,
                             const void *owner, bool http);
void morphd_tls_free(morphd_tls_t *tls);

/* What a pass over received ciphertext found. */
typedef enum morphd_tls_status {
    MORPHD_TLS_MORE,     /* all taken; more ciphertext is needed */
    MORPHD_TLS_PLAIN,    /* plaintext is ready (*plain_len bytes) */
    MORPHD_TLS_EOF,      /* the client sent close_notify */
    MORPHD_TLS_FAILED,   /* a protocol error: close the connection */
    MORPHD_TLS_RENEGOTIATION, /* the client asked to renegotiate: close */
} morphd_tls_status_t;

/* Takes ciphertext from io->in (set by the caller) and decrypts into
 * plain[cap]. Call again while it returns MORPHD_TLS_PLAIN: the input may
 * hold more. Handshake messages to send are appended to io->out. Sets
 * *handshake_done the first time the handshake completes. On
 * MORPHD_TLS_FAILED, `why` says what went wrong (for the log). */
morphd_tls_status_t morphd_tls_read(morphd_tls_t *tls, unsigned char *plain,
                                    size_t cap, size_t *plain_len,
                                    bool *handshake_done, char *why,
                                    size_t why_size);

/* Encrypts plaintext into io->out. Returns 0, or -1 (the connection is
 * broken or out of memory). */
int morphd_tls_write(morphd_tls_t *tls, const unsigned char *data, size_t len);

/* Appends a close_notify alert to io->out. */
void morphd_tls_close_notify(morphd_tls_t *tls);

/* Whether the handshake resumed a session. */
bool morphd_tls_resumed(const morphd_tls_t *tls);

#endif
