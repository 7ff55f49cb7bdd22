/*
 * tls.c -- TLS for tls:// endpoints (tls.h), with OpenSSL 3.
 */
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>

#include "base/log.h"

/* --- the context --------------------------------------------------------------- */

static void init(void);

/* OpenSSL's last error as text ("unknown" when it left none), emptying its
 * queue so that the next message starts clean. */
static const char *ssl_error(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(buf, size, "unknown error");
    else
        ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

/* A path relative to the config file's folder (as plugin_dir). */
static char *resolve(const char *file, const char *path)
{
    const char *slash = strrchr(file, '/');
    char *out = NULL;
    if (path[0] == '/' || slash == NULL)
        return strdup(path);
    if (asprintf(&out, "%.*s/%s", (int)(slash - file), file, path) < 0)
        return NULL;
    return out;
}

/* Renegotiation: TLS 1.2 clients asking for a new handshake on an
 * established connection (a CPU cost attackers like) are closed and
 * counted. SSL_OP_NO_RENEGOTIATION refuses the handshake; this notices the
 * attempt: in TLS 1.2 a client sends a handshake record after the
 * handshake only to renegotiate. (No info callback fires for a refused
 * one, and by the time the ClientHello itself is reported OpenSSL no
 * longer counts the handshake as finished; the record header comes
 * first.) TLS 1.3 has no renegotiation, and handshake records after the
 * handshake are legitimate there (KeyUpdate). */
static int renegotiation_index = -1;

static void msg_callback(int write_p, int version, int content_type,
                         const void *buf, size_t len, SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    if (!write_p && content_type == SSL3_RT_HEADER && len > 0 &&
        ((const unsigned char *)buf)[0] == SSL3_RT_HANDSHAKE &&
        SSL_is_init_finished(ssl) && SSL_version(ssl) < TLS1_3_VERSION)
        SSL_set_ex_data(ssl, renegotiation_index, (void *)1);
}

/* ALPN (RFC 7301): an https:// connection (marked with alpn_index)
 * agrees on http/1.1, and refuses a client that offers only protocols it
 * does not serve (no_application_protocol), as the RFC asks; a tls://
 * connection, whose protocol is the service's framing, answers no ALPN at
 * all, which every client takes. */
static int alpn_index = -1;

static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)arg;
    if (SSL_get_ex_data(ssl, alpn_index) == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *chosen;
    if (SSL_select_next_proto(&chosen, outlen, ours, sizeof ours - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

static void warn_validity(const char *where, X509 *cert)
{
    if (cert == NULL)
        return;
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        morphd_log(MORPH_LOG_WARN, "%s: the certificate has expired: clients "
                   "that check it will refuse the connection", where);
    else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
        morphd_log(MORPH_LOG_WARN, "%s: the certificate is not valid yet",
                   where);
}

morphd_tls_ctx_t *morphd_tls_ctx_new(const morphd_service_conf_t *conf,
                                     const char *file, morphd_errors_t *errs)
{
    char why[256], where[512];
    size_t errors_before = errs->n;
    init();
    if (conf->tls_certificate == NULL) {
        morphd_errors_add(errs, "%s:%d: service '%s': a tls:// endpoint needs "
                          "tls_certificate (and tls_key, unless the key is in "
                          "the same file)", file, conf->listen_line, conf->name);
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char *cert = resolve(file, conf->tls_certificate);
    char *key = resolve(file, conf->tls_key ? conf->tls_key
                                            : conf->tls_certificate);
    char *ca = conf->tls_client_ca ? resolve(file, conf->tls_client_ca) : NULL;
    int key_line = conf->tls_key ? conf->tls_key_line
                                 : conf->tls_certificate_line;
    if (ctx == NULL || cert == NULL || key == NULL ||
        (conf->tls_client_ca != NULL && ca == NULL)) {
        morphd_errors_add(errs, "%s: service '%s': out of memory", file,
                          conf->name);
        goto done;
    }

    /* the versions: only 1.2 and 1.3 exist for us */
    SSL_CTX_set_min_proto_version(ctx, (conf->tls_protocols & MORPHD_TLS_V1_2)
                                           ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, (conf->tls_protocols & MORPHD_TLS_V1_3)
                                           ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* no buffers kept while a connection is idle; our BIO never blocks */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_msg_callback(ctx, msg_callback);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    /* resumption: tickets (stateless, OpenSSL's default), tied to this
     * service's name */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)conf->name,
                                   (unsigned)strlen(conf->name) < 32
                                       ? (unsigned)strlen(conf->name) : 32);

    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        morphd_errors_add(errs, "%s:%d: service '%s': tls_certificate %s: "
                          "cannot load it: %s", file,
                          conf->tls_certificate_line, conf->name, cert,
                          ssl_error(why, sizeof why));
    } else {
        snprintf(where, sizeof where, "%s:%d: service '%s': tls_certificate %s",
                 file, conf->tls_certificate_line, conf->name, cert);
        warn_validity(where, SSL_CTX_get0_certificate(ctx));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL compares it with the certificate as it loads it */
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            morphd_errors_add(errs, "%s:%d: service '%s': tls_key %s does not "
                              "match the certificate in %s", file, key_line,
                              conf->name, key, cert);
        } else {
            morphd_errors_add(errs, "%s:%d: service '%s': tls_key %s: cannot "
                              "load it: %s", file, key_line, conf->name, key,
                              ssl_error(why, sizeof why));
        }
    } else if (errs->n == errors_before && SSL_CTX_check_private_key(ctx) != 1)
        morphd_errors_add(errs, "%s:%d: service '%s': tls_key %s does not "
                          "match the certificate in %s", file, key_line,
                          conf->name, key, cert);
    if (ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names == NULL ||
            SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
            morphd_errors_add(errs, "%s:%d: service '%s': tls_client_ca %s: "
                              "cannot load it: %s", file,
                              conf->tls_client_ca_line, conf->name, ca,
                              ssl_error(why, sizeof why));
            sk_X509_NAME_pop_free(names, X509_NAME_free);
        } else {
            SSL_CTX_set_client_CA_list(ctx, names);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
                                        SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
    }
    if (conf->tls_ciphers != NULL &&
        SSL_CTX_set_cipher_list(ctx, conf->tls_ciphers) != 1)
        morphd_errors_add(errs, "%s:%d: service '%s': tls_ciphers: no cipher "
                          "OpenSSL knows in '%s'", file, conf->tls_ciphers_line,
                          conf->name, conf->tls_ciphers);
    if (conf->tls_groups != NULL &&
        SSL_CTX_set1_groups_list(ctx, conf->tls_groups) != 1)
        morphd_errors_add(errs, "%s:%d: service '%s': tls_groups: '%s' is not "
                          "a list of groups OpenSSL knows (e.g. X25519:P-256)",
                          file, conf->tls_groups_line, conf->name,
                          conf->tls_groups);
done:
    ERR_clear_error();
    free(cert);
    free(key);
    free(ca);
    if (errs->n != errors_before || ctx == NULL) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void morphd_tls_ctx_free(morphd_tls_ctx_t *ctx) { SSL_CTX_free(ctx); }

/* --- the BIO: the loop's buffers ------------------------------------------------ */

static int bio_write(BIO *b, const char *data, int len)
{
    morphd_tls_io_t *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (morphd_buf_append(&io->out, data, (size_t)len) != 0)
        return -1;
    return len;
}

static int bio_read(BIO *b, char *buf, int len)
{
    morphd_tls_io_t *io = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (io->in_owner != SSL_get_app_data((SSL *)BIO_get_app_data(b)) ||
        io->in_len == 0) {
        BIO_set_retry_read(b); /* more is to come from the socket */
        return -1;
    }
    size_t n = io->in_len < (size_t)len ? io->in_len : (size_t)len;
    memcpy(buf, io->in, n);
    io->in += n;
    io->in_len -= n;
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* the caller flushes io->out after each call */
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *bio_method;

static void make_bio_method(void)
{
    renegotiation_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    alpn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                              "morphd loop buffers");
    if (bio_method != NULL) {
        BIO_meth_set_write(bio_method, bio_write);
        BIO_meth_set_read(bio_method, bio_read);
        BIO_meth_set_ctrl(bio_method, bio_ctrl);
    }
}

static void init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_bio_method);
}

morphd_tls_t *morphd_tls_new(morphd_tls_ctx_t *ctx, morphd_tls_io_t *io,
                             const void *owner, bool http)
{
    init();
    if (bio_method == NULL)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    BIO *bio = BIO_new(bio_method);
    if (ssl == NULL || bio == NULL) {
        SSL_free(ssl);
        BIO_free(bio);
        return NULL;
    }
    BIO_set_data(bio, io);
    BIO_set_init(bio, 1);
    BIO_set_app_data(bio, ssl);
    SSL_set_app_data(ssl, (void *)owner);
    if (http)
        SSL_set_ex_data(ssl, alpn_index, (void *)1);
    SSL_set_bio(ssl, bio, bio); /* one BIO both ways; the SSL owns it */
    SSL_set_accept_state(ssl);
    return ssl;
}

void morphd_tls_free(morphd_tls_t *tls) { SSL_free(tls); }

bool morphd_tls_resumed(const morphd_tls_t *tls)
{
    return SSL_session_reused((SSL *)tls) == 1;
}

/* --- reading and writing -------------------------------------------------------- */

static morphd_tls_status_t failed(SSL *ssl, int rc, char *why, size_t size)
{
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_ZERO_RETURN)
        return MORPHD_TLS_EOF;
    char text[200];
    if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
        snprintf(why, size, "the connection ended mid-record");
    else
        snprintf(why, size, "%s", ssl_error(text, sizeof text));
    ERR_clear_error();
    return MORPHD_TLS_FAILED;
}

morphd_tls_status_t morphd_tls_read(morphd_tls_t *ssl, unsigned char *plain,
                                    size_t cap, size_t *plain_len,
                                    bool *handshake_done, char *why,
                                    size_t why_size)
{
    *plain_len = 0;
    *handshake_done = false;
    if (!SSL_is_init_finished(ssl)) {
        int rc = SSL_do_handshake(ssl);
        if (rc != 1) {
            int e = SSL_get_error(ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return MORPHD_TLS_MORE;
            return failed(ssl, rc, why, why_size);
        }
        *handshake_done = true;
    }
    size_t got = 0;
    while (got < cap) {
        size_t n = 0;
        int rc = SSL_read_ex(ssl, plain + got, cap - got, &n);
        if (SSL_get_ex_data(ssl, renegotiation_index) != NULL)
            return MORPHD_TLS_RENEGOTIATION;
        if (rc != 1) {
            int e = SSL_get_error(ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            if (got > 0 && e == SSL_ERROR_ZERO_RETURN)
                break; /* the plaintext first; EOF on the next call */
            return failed(ssl, rc, why, why_size);
        }
        got += n;
    }
    *plain_len = got;
    return got > 0 ? MORPHD_TLS_PLAIN : MORPHD_TLS_MORE;
}

int morphd_tls_write(morphd_tls_t *ssl, const unsigned char *data, size_t len)
{
    while (len > 0) {
        size_t n = 0;
        if (SSL_write_ex(ssl, data, len, &n) != 1) {
            ERR_clear_error();
            return -1;
        }
        data += n;
        len -= n;
    }
    return 0;
}

void morphd_tls_close_notify(morphd_tls_t *ssl)
{
    if (SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);
    ERR_clear_error();
}
