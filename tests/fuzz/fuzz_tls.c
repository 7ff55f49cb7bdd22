/* The TLS read path on arbitrary bytes from a client: a fresh server-side
 * connection (the example certificate) is fed the input in chunks whose
 * sizes come from the input itself, as reads would bring it. It never
 * crashes or leaks, and keeps the protocol's order: no plaintext before
 * the handshake has completed, no more plaintext than the buffer holds,
 * nothing after a failure or the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "base/errors.h"
#include "base/log.h"
#include "net/tls.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static morphd_tls_ctx_t *ctx;
static morphd_tls_io_t io;

static void make_ctx(void)
{
    morphd_service_conf_t conf;
    memset(&conf, 0, sizeof conf);
    conf.name = (char *)"fuzz";
    conf.tls_certificate = (char *)SOURCE_DIR "/config/tls/example-cert.pem";
    conf.tls_key = (char *)SOURCE_DIR "/config/tls/example-key.pem";
    conf.tls_protocols = MORPHD_TLS_V1_2 | MORPHD_TLS_V1_3;
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    morphd_log_set_level(MORPH_LOG_ERROR);
    ctx = morphd_tls_ctx_new(&conf, "fuzz.ini", &errs);
    if (ctx == NULL) {
        fprintf(stderr, "fuzz_tls: %s\n", errs.n ? errs.msgs[0] : "no context");
        abort();
    }
    morphd_errors_free(&errs);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (ctx == NULL)
        make_ctx();
    static const char owner;
    /* Odd-sized inputs come as an https:// connection, whose ALPN
     * callback then sees whatever the ClientHello offers. */
    bool http = size % 2 == 1;
    morphd_tls_t *tls = morphd_tls_new(ctx, &io, &owner, http);
    if (tls == NULL)
        return 0;
    unsigned char plain[512];
    bool ready = false, ended = false;
    size_t at = 0;
    while (at < size && !ended) {
        size_t chunk = 1 + data[at] % 97; /* the first byte of a read: its size */
        at++;
        if (chunk > size - at)
            chunk = size - at;
        io.in = data + at;
        io.in_len = chunk;
        io.in_owner = &owner;
        at += chunk;
        for (;;) {
            size_t n;
            bool done;
            char why[256];
            morphd_tls_status_t st = morphd_tls_read(tls, plain, sizeof plain,
                                                     &n, &done, why, sizeof why);
            if (done) {
                if (ready)
                    abort(); /* the handshake completes once */
                ready = true;
            }
            if (n > sizeof plain || (n > 0 && (st != MORPHD_TLS_PLAIN || !ready)))
                abort();
            if (st == MORPHD_TLS_PLAIN)
                continue;
            if (st != MORPHD_TLS_MORE)
                ended = true;
            break;
        }
        if (!ended && io.in_len != 0)
            abort(); /* every byte of a read is taken */
        io.out.len = 0; /* what would go back to the client */
    }
    io.in = NULL;
    io.in_len = 0;
    morphd_tls_free(tls);
    return 0;
}
