/* tls:// endpoints over real sockets, with certificates the test makes
 * itself (a CA, two server certificates, client certificates from that CA
 * and from another, an expired one, a key that matches nothing): serving
 * beside tcp:// (OpenSSL and Python's ssl module as clients, TLS 1.2 and
 * 1.3), mutual TLS, session resumption, reload with a replaced
 * certificate (and a broken one), configuration errors, and hostile
 * clients -- plaintext, a stalled handshake, garbage, renegotiation, a bad
 * record -- each closed and counted while a good client goes on. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "harness.h"
#include "net/proxy_protocol.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char admin[128];
static char dir[64]; /* the certificates */

/* --- certificates --------------------------------------------------------------- */

static void make_certs(void)
{
    snprintf(dir, sizeof dir, "/tmp/morph-tls-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; cd %s\n"
             "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1; }\n"
             "ca() { key $1.key; openssl req -x509 -key $1.key -out $1.pem -days 2 -subj /CN=$1; }\n"
             "cert() { key $1.key; openssl req -new -key $1.key -out $1.csr -subj /CN=$1\n"
             "  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > $1.ext\n"
             "  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial"
             " -out $1.pem -days ${3:-2} -extfile $1.ext; }\n"
             "ca ca; ca other-ca\n"
             "cert server-a ca; cert server-b ca; cert client ca; cert stranger other-ca\n"
             "cert expired ca -1\n"
             "key lonely.key\n"
             "cp server-a.pem server.pem; cp server-a.key server.key\n",
             dir);
    char full[4200];
    snprintf(full, sizeof full, "(%s) >%s/openssl.log 2>&1", cmd, dir);
    ck_assert_msg(system(full) == 0, "openssl could not make the certificates "
                  "(see %s/openssl.log)", dir);
}

static void remove_certs(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* --- the server ------------------------------------------------------------------- */

static void serve_with(const char *morphd_lines, const char *service_lines)
{
    char services[2048];
    snprintf(services, sizeof services,
             "[service s]\nlisten = tls://127.0.0.1:0 tcp://127.0.0.1:0\n"
             "tls_certificate = %s/server.pem\ntls_key = %s/server.key\n%s",
             dir, dir, service_lines);
    morphd_proc_serve(&proc, PLUGIN_DIR, morphd_lines, services, admin,
                      sizeof admin);
}

static void serve(const char *service_lines) { serve_with("", service_lines); }

static int tls_port(void) { return morphd_proc_need_port(&proc, "s", "tls", false); }

/* Waits (5 s at most) for a counter of the service to reach `want`. */
static long long wait_stat(const char *counter, long long want)
{
    return morph_stat_wait(admin, "s", counter, want);
}

/* --- a client ---------------------------------------------------------------------- */

static SSL_CTX *client_ctx(int version, const char *name)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    if (version != 0) {
        SSL_CTX_set_min_proto_version(ctx, version);
        SSL_CTX_set_max_proto_version(ctx, version);
    }
    char path[128], key[128];
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (name != NULL) { /* a client certificate */
        snprintf(path, sizeof path, "%s/%s.pem", dir, name);
        snprintf(key, sizeof key, "%s/%s.key", dir, name);
        ck_assert_int_eq(SSL_CTX_use_certificate_file(ctx, path, SSL_FILETYPE_PEM), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    return ctx;
}

/* Connects and shakes hands (the server's certificate verified for
 * 127.0.0.1); NULL when the handshake fails. */
static SSL *tls_connect(SSL_CTX *ctx, int port, SSL_SESSION *resume)
{
    int fd = tcp_connect(port, false);
    struct timeval tv = {TIMEOUT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    if (resume != NULL)
        SSL_set_session(ssl, resume);
    if (SSL_connect(ssl) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

static void tls_close(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);
    SSL_free(ssl);
    close(fd);
}

/* Sends `msg`, reads strlen(want) bytes; returns them (static), or NULL
 * when the connection failed. */
static const char *tls_ask(SSL *ssl, const char *msg, size_t want)
{
    static char got[256];
    memset(got, 0, sizeof got);
    if (SSL_write(ssl, msg, (int)strlen(msg)) <= 0) {
        ERR_clear_error();
        return NULL;
    }
    size_t have = 0;
    while (have < want) {
        int n = SSL_read(ssl, got + have, (int)(want - have));
        if (n <= 0) {
            ERR_clear_error();
            return NULL;
        }
        have += (size_t)n;
    }
    return got;
}

static void exchange(SSL *ssl, const char *msg, const char *want)
{
    const char *got = tls_ask(ssl, msg, strlen(want));
    ck_assert_msg(got != NULL, "no reply to '%s'", msg);
    ck_assert_str_eq(got, want);
}

/* The common name of the certificate the server showed. */
static const char *server_name(SSL *ssl)
{
    static char cn[64];
    X509 *cert = SSL_get1_peer_certificate(ssl);
    ck_assert_ptr_nonnull(cert);
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                              sizeof cn);
    X509_free(cert);
    return cn;
}

/* Whether the server closes the connection (within 10 s). */
static bool closed_by_server(int fd)
{
    char buf[512];
    struct timeval tv = {10, 0}; /* a stalled handshake: its timeout and a sweep */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false; /* timed out */
    }
}

/* --- tests -------------------------------------------------------------------------- */

START_TEST(serves_tls_1_2_and_1_3_beside_tcp)
{
    serve("transform = uppercase\nframing = line\n");
    int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    for (int i = 0; i < 2; i++) {
        SSL_CTX *ctx = client_ctx(versions[i], NULL);
        SSL *ssl = tls_connect(ctx, tls_port(), NULL);
        ck_assert_ptr_nonnull(ssl);
        ck_assert_int_eq(SSL_version(ssl), versions[i]);
        ck_assert_str_eq(server_name(ssl), "server-a");
        exchange(ssl, "hello\nnoël\n", "HELLO\nNOËL\n");
        tls_close(ssl);
        SSL_CTX_free(ctx);
    }
    int fd = tcp_connect(morphd_proc_need_port(&proc, "s", "tcp", false), false);
    ck_assert_int_eq(send_all(fd, "plain\n", 6), 0);
    char got[8] = "";
    ck_assert_uint_eq(recv_exact(fd, got, 6, TIMEOUT_MS), 6);
    ck_assert_str_eq(got, "PLAIN\n");
    close(fd);
    ck_assert_int_eq(wait_stat("tls_handshakes", 2), 2);
    morphd_proc_finish(&proc);
}
END_TEST

/* Another TLS implementation: Python's ssl module, verifying the
 * certificate for 127.0.0.1 against the test's CA. */
START_TEST(python_ssl_client)
{
    serve("transform = uppercase\nframing = line\n");
    char script[1024], port[16];
    snprintf(port, sizeof port, "%d", tls_port());
    snprintf(script, sizeof script,
             "import socket, ssl, sys\n"
             "ctx = ssl.create_default_context(cafile='%s/ca.pem')\n"
             "with socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5) as s:\n"
             "    with ctx.wrap_socket(s, server_hostname='127.0.0.1') as t:\n"
             "        t.sendall(b'from python\\n')\n"
             "        data = b''\n"
             "        while not data.endswith(b'\\n'):\n"
             "            data += t.recv(100)\n"
             "        print(t.version(), data.decode(), end='')\n",
             dir);
    const char *argv[] = {"/usr/bin/python3", "-c", script, port, NULL};
    char *out, *err;
    size_t len;
    ck_assert_int_eq(run_program(argv, "", 0, &out, &len, &err), 0);
    ck_assert_str_eq(out, "TLSv1.3 FROM PYTHON\n");
    free(out);
    free(err);
    morphd_proc_finish(&proc);
}
END_TEST

/* The plugin context says tls. */
/* Behind a balancer, the PROXY header comes first, in the clear, and the
 * handshake after it (HAProxy's send-proxy-v2 to a TLS server). */
START_TEST(proxy_header_before_the_handshake)
{
    serve("transform = whoami\nframing = line\nproxy_protocol = v2\n"
          "proxy_from = 127.0.0.1\n");
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(999)};
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(443)};
    inet_pton(AF_INET, "192.0.2.1", &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    unsigned char h[64];
    size_t n = morphd_proxy_write_v2(h, sizeof h, (struct sockaddr *)&src,
                                     (struct sockaddr *)&dst, SOCK_STREAM);
    int fd = tcp_connect(tls_port(), false);
    ck_assert_int_eq(send_all(fd, h, n), 0);
    SSL_CTX *ctx = client_ctx(0, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    ck_assert_int_eq(SSL_connect(ssl), 1);
    exchange(ssl, "x\n", "tls 192.0.2.1 999 s\n");
    tls_close(ssl);
    /* without the header, the ClientHello is not one: refused, counted */
    ck_assert_ptr_null(tls_connect(ctx, tls_port(), NULL));
    ck_assert_int_eq(wait_stat("proxy_invalid", 1), 1);
    ck_assert_int_eq(wait_stat("tls_handshakes", 1), 1);
    SSL_CTX_free(ctx);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(whoami_says_tls)
{
    serve("transform = whoami\nframing = line\n");
    SSL_CTX *ctx = client_ctx(0, NULL);
    SSL *ssl = tls_connect(ctx, tls_port(), NULL);
    ck_assert_ptr_nonnull(ssl);
    const char *got = tls_ask(ssl, "?\n", 10);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strncmp(got, "tls 127.0.", 10) == 0, "%s", got);
    tls_close(ssl);
    SSL_CTX_free(ctx);
    morphd_proc_finish(&proc);
}
END_TEST

/* tls_client_ca: a client certificate from that CA is required. */
START_TEST(mutual_tls)
{
    char lines[512];
    snprintf(lines, sizeof lines, "transform = uppercase\nframing = line\n"
             "tls_client_ca = %s/ca.pem\n", dir);
    serve(lines);
    const char *clients[] = {"client", NULL, "stranger"};
    for (int i = 0; i < 3; i++) {
        SSL_CTX *ctx = client_ctx(0, clients[i]);
        SSL *ssl = tls_connect(ctx, tls_port(), NULL);
        /* TLS 1.3: the server's verdict arrives after the client's
         * handshake, as an alert instead of the reply */
        const char *got = ssl ? tls_ask(ssl, "x\n", 2) : NULL;
        if (i == 0)
            ck_assert_msg(got && strcmp(got, "X\n") == 0, "the CA's client refused");
        else
            ck_assert_msg(got == NULL, "%s accepted", clients[i] ? clients[i] : "no certificate");
        if (ssl)
            tls_close(ssl);
        SSL_CTX_free(ctx);
    }
    ck_assert_int_eq(wait_stat("tls_handshake_failures", 2), 2);
    morphd_proc_finish(&proc);
}
END_TEST

/* Resumption with session tickets, TLS 1.3 and 1.2. */
START_TEST(sessions_resume)
{
    serve("transform = uppercase\nframing = line\n");
    int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    for (int i = 0; i < 2; i++) {
        SSL_CTX *ctx = client_ctx(versions[i], NULL);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
        SSL *ssl = tls_connect(ctx, tls_port(), NULL);
        ck_assert_ptr_nonnull(ssl);
        exchange(ssl, "a\n", "A\n"); /* TLS 1.3 tickets come after the handshake */
        SSL_SESSION *sess = SSL_get1_session(ssl);
        ck_assert_ptr_nonnull(sess);
        SSL_shutdown(ssl);
        tls_close(ssl);
        ssl = tls_connect(ctx, tls_port(), sess);
        ck_assert_ptr_nonnull(ssl);
        ck_assert_msg(SSL_session_reused(ssl) == 1, "TLS %x: not resumed", versions[i]);
        exchange(ssl, "b\n", "B\n");
        tls_close(ssl);
        SSL_SESSION_free(sess);
        SSL_CTX_free(ctx);
    }
    ck_assert_int_eq(wait_stat("tls_handshakes_resumed", 2), 2);
    morphd_proc_finish(&proc);
}
END_TEST

/* Each hostile client is closed and counted; a good client connected all
 * along is served before, between and after. */
START_TEST(hostile_clients_are_closed_and_counted)
{
    /* short enough to wait for; under valgrind a real handshake alone
     * takes longer than half a second */
    serve(getenv("MORPH_TEST_WRAPPER")
              ? "transform = uppercase\nframing = line\ntls_handshake_timeout = 4s\n"
              : "transform = uppercase\nframing = line\ntls_handshake_timeout = 500ms\n");
    SSL_CTX *ctx = client_ctx(0, NULL);
    SSL *good = tls_connect(ctx, tls_port(), NULL);
    ck_assert_ptr_nonnull(good);
    exchange(good, "before\n", "BEFORE\n");

    /* plaintext to the TLS port */
    int fd = tcp_connect(tls_port(), false);
    ck_assert_int_eq(send_all(fd, "hello world\n", 12), 0);
    ck_assert(closed_by_server(fd));
    close(fd);
    ck_assert_int_eq(wait_stat("tls_handshake_failures", 1), 1);

    /* garbage that looks like a record */
    fd = tcp_connect(tls_port(), false);
    const char junk[] = "\x16\x03\x01\x00\x20garbage garbage garbage garbage!";
    ck_assert_int_eq(send_all(fd, junk, sizeof junk - 1), 0);
    ck_assert(closed_by_server(fd));
    close(fd);
    ck_assert_int_eq(wait_stat("tls_handshake_failures", 2), 2);
    exchange(good, "between\n", "BETWEEN\n");

    /* a stalled handshake: connected, silent */
    fd = tcp_connect(tls_port(), false);
    ck_assert(closed_by_server(fd));
    close(fd);
    ck_assert_int_eq(wait_stat("tls_handshake_timeouts", 1), 1);

    /* renegotiation (TLS 1.2) */
    SSL_CTX *ctx12 = client_ctx(TLS1_2_VERSION, NULL);
    SSL *reneg = tls_connect(ctx12, tls_port(), NULL);
    ck_assert_ptr_nonnull(reneg);
    exchange(reneg, "r\n", "R\n");
    ck_assert_int_eq(SSL_renegotiate(reneg), 1);
    SSL_do_handshake(reneg); /* sends the ClientHello */
    ERR_clear_error();
    ck_assert(closed_by_server(SSL_get_fd(reneg)));
    tls_close(reneg);
    SSL_CTX_free(ctx12);
    ck_assert_int_eq(wait_stat("tls_renegotiations", 1), 1);

    /* a bad record after the handshake: an application-data record whose
     * authentication cannot check out */
    SSL *bad = tls_connect(ctx, tls_port(), NULL);
    ck_assert_ptr_nonnull(bad);
    exchange(bad, "b\n", "B\n");
    const char record[] = "\x17\x03\x03\x00\x20xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    ck_assert_int_eq(send_all(SSL_get_fd(bad), record, sizeof record - 1), 0);
    ck_assert(closed_by_server(SSL_get_fd(bad)));
    tls_close(bad);
    ck_assert_int_eq(wait_stat("tls_errors", 1), 1);

    exchange(good, "after\n", "AFTER\n");
    tls_close(good);
    SSL_CTX_free(ctx);
    morphd_proc_finish(&proc);
}
END_TEST

static void replace_file(const char *from, const char *to)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s/%s %s/%s.new && mv %s/%s.new %s/%s", dir,
             from, dir, to, dir, to, dir, to);
    ck_assert_int_eq(system(cmd), 0);
}

/* SIGHUP re-reads the certificate: new connections get the new one, open
 * ones go on; a broken new one is reported and the last good one stays. */
START_TEST(reload_replaces_the_certificate)
{
    serve("transform = uppercase\nframing = line\n");
    SSL_CTX *ctx = client_ctx(0, NULL);
    SSL *old = tls_connect(ctx, tls_port(), NULL);
    ck_assert_ptr_nonnull(old);
    ck_assert_str_eq(server_name(old), "server-a");

    replace_file("server-b.pem", "server.pem");
    replace_file("server-b.key", "server.key");
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    SSL *fresh = tls_connect(ctx, tls_port(), NULL);
    ck_assert_ptr_nonnull(fresh);
    ck_assert_str_eq(server_name(fresh), "server-b");
    exchange(fresh, "new\n", "NEW\n");
    tls_close(fresh);
    exchange(old, "old\n", "OLD\n");

    /* a certificate file that is not one; then a key that does not match */
    char path[128];
    snprintf(path, sizeof path, "%s/server.pem", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a certificate\n", f);
    fclose(f);
    ck_assert_int_eq(morphd_proc_reload(&proc), -1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "server.pem: cannot load it"), 1);
    replace_file("server-a.pem", "server.pem"); /* key is still b's */
    ck_assert_int_eq(morphd_proc_reload(&proc), -1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "does not match the certificate"), 1);
    fresh = tls_connect(ctx, tls_port(), NULL);
    ck_assert_ptr_nonnull(fresh);
    ck_assert_str_eq(server_name(fresh), "server-b");
    tls_close(fresh);
    tls_close(old);
    SSL_CTX_free(ctx);
    morphd_proc_finish(&proc);
    replace_file("server-a.key", "server.key");
}
END_TEST

/* Two workers serve TLS from one context; at SIGTERM every client gets a
 * close_notify after its replies (a clean end, not a truncation). */
START_TEST(two_workers_and_a_clean_end)
{
    serve_with("workers = 2\n", "transform = uppercase\nframing = line\n");
    SSL_CTX *ctx = client_ctx(0, NULL);
    SSL *ssl[16];
    for (int i = 0; i < 16; i++) {
        ssl[i] = tls_connect(ctx, tls_port(), NULL);
        ck_assert_ptr_nonnull(ssl[i]);
    }
    for (int i = 0; i < 16; i++)
        exchange(ssl[i], "w\n", "W\n");
    kill(proc.pid, SIGTERM);
    for (int i = 0; i < 16; i++) {
        char c;
        int n = SSL_read(ssl[i], &c, 1);
        ck_assert_int_le(n, 0);
        ck_assert_msg(SSL_get_error(ssl[i], n) == SSL_ERROR_ZERO_RETURN,
                      "connection %d: no close_notify", i);
        ERR_clear_error();
        tls_close(ssl[i]);
    }
    SSL_CTX_free(ctx);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    morphd_proc_cleanup(&proc);
}
END_TEST

/* Out of descriptors (ulimit -n; here prlimit, soft and hard, so morphd
 * cannot raise it): morphd says so at start; clients that hold
 * connections without a handshake push it to the limit; once they go, a
 * real client is served again (no crash, no stuck listener). */
START_TEST(out_of_descriptors_recovers)
{
    const char *wrapper = getenv("MORPH_TEST_WRAPPER");
    char *saved = wrapper ? strdup(wrapper) : NULL;
    char limited[1024];
    snprintf(limited, sizeof limited, "prlimit --nofile=%d:%d %s",
             saved ? 96 : 48, saved ? 96 : 48, saved ? saved : ""); /* valgrind keeps some */
    setenv("MORPH_TEST_WRAPPER", limited, 1);
    serve("transform = uppercase\nframing = line\n");
    if (saved)
        setenv("MORPH_TEST_WRAPPER", saved, 1);
    else
        unsetenv("MORPH_TEST_WRAPPER");
    free(saved);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "open files: the limit is"), 1);
    int hogs[200];
    for (int i = 0; i < 200; i++)
        hogs[i] = tcp_connect(tls_port(), false);
    usleep(200 * 1000);
    ck_assert_int_eq(kill(proc.pid, 0), 0); /* alive */
    for (int i = 0; i < 200; i++)
        close(hogs[i]);
    SSL_CTX *ctx = client_ctx(0, NULL);
    const char *got = NULL;
    for (int tries = 0; tries < 50 && got == NULL; tries++) {
        SSL *ssl = tls_connect(ctx, tls_port(), NULL);
        if (ssl != NULL) {
            got = tls_ask(ssl, "back\n", 5);
            tls_close(ssl);
        }
        if (got == NULL)
            usleep(100 * 1000);
    }
    ck_assert_msg(got != NULL && strcmp(got, "BACK\n") == 0,
                  "not served after the descriptors came back");
    SSL_CTX_free(ctx);
    morphd_proc_finish(&proc);
}
END_TEST

static int morph(const char *const *argv, char **out, char **err)
{
    size_t len;
    return run_program(argv, "", 0, out, &len, err);
}

/* The client: morph --tls, verifying against --ca, or --insecure. */
START_TEST(morph_client_speaks_tls)
{
    serve("transform = uppercase\nframing = line\n");
    char target[32], ca[128], plain[32];
    snprintf(target, sizeof target, "127.0.0.1:%d", tls_port());
    snprintf(plain, sizeof plain, "127.0.0.1:%d",
             morphd_proc_need_port(&proc, "s", "tcp", false));
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    char *out, *err;
    /* the client's wait, scaled for a morphd under valgrind on a loaded
     * machine (its default, 2 s, failed under ctest -j8) */
    const char *w = getenv("MORPH_TEST_WRAPPER") ? "30" : "5";
    const char *good[] = {MORPH_BIN, "--tls", "-w", w, "--ca", ca, target,
                          "hello", NULL};
    ck_assert_int_eq(morph(good, &out, &err), 0);
    ck_assert_str_eq(out, "HELLO\n");
    free(out);
    free(err);
    /* not trusted without the CA (the system's do not know it) */
    const char *untrusted[] = {MORPH_BIN, "--tls", "-w", w, target, "hello",
                               NULL};
    ck_assert_int_eq(morph(untrusted, &out, &err), 1);
    ck_assert_msg(strstr(err, "certificate is not trusted") &&
                      strstr(err, "--insecure"), "%s", err);
    free(out);
    free(err);
    const char *insecure[] = {MORPH_BIN, "--tls", "-w", w, "--insecure", target,
                              "x", NULL};
    ck_assert_int_eq(morph(insecure, &out, &err), 0);
    ck_assert_str_eq(out, "X\n");
    free(out);
    free(err);
    /* by name: checked against the certificate's names (it has localhost) */
    char wrong[32];
    snprintf(wrong, sizeof wrong, "localhost:%d", tls_port());
    const char *named[] = {MORPH_BIN, "--tls", "-w", w, "--ca", ca, wrong, "x",
                           NULL};
    ck_assert_int_eq(morph(named, &out, &err), 0); /* its SAN has localhost */
    free(out);
    free(err);
    /* TLS to a plain TCP port */
    const char *to_tcp[] = {MORPH_BIN, "--tls", "--insecure", "-w", "1", plain, "x", NULL};
    ck_assert_int_eq(morph(to_tcp, &out, &err), 1);
    ck_assert_msg(strstr(err, "TLS handshake failed"), "%s", err);
    free(out);
    free(err);
    const char *usage[] = {MORPH_BIN, "--tls", "--udp", target, "x", NULL};
    ck_assert_int_eq(morph(usage, &out, &err), 64);
    free(out);
    free(err);
    const char *ca_alone[] = {MORPH_BIN, "--ca", ca, target, "x", NULL};
    ck_assert_int_eq(morph(ca_alone, &out, &err), 64);
    free(out);
    free(err);
    morphd_proc_finish(&proc);
}
END_TEST

static char *check(const char *service_lines, int *status)
{
    char ini[2048];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\nallow_root = yes\n"
             "[service s]\nlisten = tls://127.0.0.1:0\ntransform = echo\n%s",
             PLUGIN_DIR, service_lines);
    char *path = write_temp_file(ini);
    const char *args[] = {"-t", "-c", path, NULL};
    char *out;
    *status = run_morphd(args, &out);
    unlink(path);
    free(path);
    return out;
}

/* Each is a configuration error at -t, with file:line and the path. */
START_TEST(configuration_errors)
{
    int status;
    char lines[512];
    char *out = check("", &status);
    ck_assert_int_eq(status, 78);
    ck_assert_msg(strstr(out, ":5: service 's': a tls:// endpoint needs "
                              "tls_certificate"), "%s", out);
    free(out);

    snprintf(lines, sizeof lines, "tls_certificate = %s/nope.pem\n"
             "tls_key = %s/server-a.key\n", dir, dir);
    out = check(lines, &status);
    ck_assert_int_eq(status, 78);
    char want[256];
    snprintf(want, sizeof want, ":7: service 's': tls_certificate %s/nope.pem: "
             "cannot load it", dir);
    ck_assert_msg(strstr(out, want), "%s", out);
    free(out);

    snprintf(lines, sizeof lines, "tls_certificate = %s/server-a.pem\n"
             "tls_key = %s/lonely.key\n", dir, dir);
    out = check(lines, &status);
    ck_assert_int_eq(status, 78);
    snprintf(want, sizeof want, ":8: service 's': tls_key %s/lonely.key does "
             "not match the certificate in %s/server-a.pem", dir, dir);
    ck_assert_msg(strstr(out, want), "%s", out);
    free(out);

    snprintf(lines, sizeof lines, "tls_certificate = %s/server-a.pem\n"
             "tls_key = %s/server-a.key\ntls_client_ca = %s/nope-ca.pem\n"
             "tls_protocols = TLSv1.1\n", dir, dir, dir);
    out = check(lines, &status);
    ck_assert_int_eq(status, 78);
    ck_assert_msg(strstr(out, ":10: tls_protocols: 'TLSv1.1' is not TLSv1.2 or "
                              "TLSv1.3"), "%s", out);
    free(out);

    snprintf(lines, sizeof lines, "tls_certificate = %s/server-a.pem\n"
             "tls_key = %s/server-a.key\ntls_client_ca = %s/nope-ca.pem\n"
             "tls_ciphers = NOTHING-KNOWN\ntls_groups = P-7\n", dir, dir, dir);
    out = check(lines, &status);
    ck_assert_int_eq(status, 78);
    ck_assert_msg(strstr(out, ":9: service 's': tls_client_ca") &&
                      strstr(out, ":10: service 's': tls_ciphers") &&
                      strstr(out, ":11: service 's': tls_groups"), "%s", out);
    free(out);

    /* expired: a warning, not an error */
    snprintf(lines, sizeof lines, "tls_certificate = %s/expired.pem\n"
             "tls_key = %s/expired.key\n", dir, dir);
    out = check(lines, &status);
    ck_assert_int_eq(status, 0);
    ck_assert_msg(strstr(out, "expired.pem: the certificate has expired"), "%s", out);
    free(out);
}
END_TEST

/* https://: HTTP/1.1 over the service's TLS (its tls_* keys), beside a
 * tls:// endpoint of the same service: ALPN agrees on http/1.1, a client
 * that offers only h2 is refused (no_application_protocol), a tls://
 * client's ALPN gets no answer; curl and morph https:// verify the
 * certificate and post; plugins see transport https. */
START_TEST(https_serves_http_and_agrees_on_alpn)
{
    char services[2048];
    snprintf(services, sizeof services,
             "[service s]\nlisten = https://127.0.0.1:0 tls://127.0.0.1:0\n"
             "tls_certificate = %s/server.pem\ntls_key = %s/server.key\n"
             "transform = whoami | uppercase\nframing = line\n", dir, dir);
    morphd_proc_serve(&proc, PLUGIN_DIR, "", services, admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "https", false);
    SSL_CTX *ctx = client_ctx(0, NULL);
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    ck_assert_int_eq(SSL_CTX_set_alpn_protos(ctx, both, sizeof both - 1), 0);
    SSL *ssl = tls_connect(ctx, port, NULL);
    ck_assert_ptr_nonnull(ssl);
    const unsigned char *proto;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &proto, &len);
    ck_assert_int_eq((int)len, 8);
    ck_assert(memcmp(proto, "http/1.1", 8) == 0);
    const char *req = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx";
    const char *got = tls_ask(ssl, req, 17);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, "HTTP/1.1 200 OK\r\n");
    tls_close(ssl);
    /* only protocols it does not serve: refused in the handshake */
    static const unsigned char h2[] = "\x02h2";
    ck_assert_int_eq(SSL_CTX_set_alpn_protos(ctx, h2, sizeof h2 - 1), 0);
    ck_assert_ptr_null(tls_connect(ctx, port, NULL));
    /* tls://: the service's framing, no ALPN answered */
    ck_assert_int_eq(SSL_CTX_set_alpn_protos(ctx, both, sizeof both - 1), 0);
    ssl = tls_connect(ctx, tls_port(), NULL);
    ck_assert_ptr_nonnull(ssl);
    SSL_get0_alpn_selected(ssl, &proto, &len);
    ck_assert_int_eq((int)len, 0);
    got = tls_ask(ssl, "hi\n", 4);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strncmp(got, "TLS ", 4) == 0, "%s", got);
    tls_close(ssl);
    SSL_CTX_free(ctx);
    /* curl, verifying the certificate */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "curl -sS --cacert %s/ca.pem -w ' %%{http_version}'"
             " --data-binary x https://127.0.0.1:%d/ 2>&1", dir, port);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char out[512] = "";
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    ck_assert_int_eq(pclose(f), 0);
    ck_assert_msg(strncmp(out, "HTTPS 127.0.0.1 ", 16) == 0, "%s", out);
    ck_assert_msg(strstr(out, " S 1.1") != NULL, "%s", out);
    /* morph https://, with --ca, --insecure, and untrusted without */
    char target[96], ca[128], *o, *e;
    snprintf(target, sizeof target, "https://127.0.0.1:%d/up", port);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    const char *w = getenv("MORPH_TEST_WRAPPER") ? "30" : "5";
    const char *good[] = {MORPH_BIN, "-w", w, "--ca", ca, target, "hi", NULL};
    ck_assert_int_eq(morph(good, &o, &e), 0);
    ck_assert_msg(strncmp(o, "HTTPS 127.0.0.1 ", 16) == 0, "%s", o);
    free(o);
    free(e);
    const char *insecure[] = {MORPH_BIN, "-w", w, "--insecure", target, "hi",
                              NULL};
    ck_assert_int_eq(morph(insecure, &o, &e), 0);
    free(o);
    free(e);
    const char *untrusted[] = {MORPH_BIN, "-w", w, target, "hi", NULL};
    ck_assert_int_eq(morph(untrusted, &o, &e), 1);
    ck_assert_msg(strstr(e, "certificate is not trusted"), "%s", e);
    free(o);
    free(e);
    morphd_proc_finish(&proc);
}
END_TEST

/* An https:// endpoint needs the tls_* keys as tls:// does. */
/* WebSocket over https:// (wss://): Python's websockets verifying the
 * certificate, and morph wss:// with --ca. */
START_TEST(wss_serves_websockets_over_https)
{
    char services[2048];
    snprintf(services, sizeof services,
             "[service s]\nlisten = https://127.0.0.1:0\n"
             "tls_certificate = %s/server.pem\ntls_key = %s/server.key\n"
             "transform = whoami | uppercase\n", dir, dir);
    morphd_proc_serve(&proc, PLUGIN_DIR, "", services, admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "https", false);
    char script[1024], p[16];
    snprintf(p, sizeof p, "%d", port);
    snprintf(script, sizeof script,
             "import asyncio, ssl, sys, websockets\n"
             "ctx = ssl.create_default_context(cafile='%s/ca.pem')\n"
             "async def main():\n"
             "    async with websockets.connect('wss://127.0.0.1:%%s/' %% sys.argv[1], ssl=ctx) as ws:\n"
             "        await ws.send('hi'); print((await ws.recv()).split()[0])\n"
             "asyncio.run(main())\n", dir);
    const char *argv[] = {"/usr/bin/python3", "-c", script, p, NULL};
    char *out, *err;
    size_t len;
    ck_assert_int_eq(run_program(argv, "", 0, &out, &len, &err), 0);
    ck_assert_str_eq(out, "HTTPS\n"); /* whoami: the transport is https */
    free(out);
    free(err);
    char target[96], ca[128];
    snprintf(target, sizeof target, "wss://127.0.0.1:%d/", port);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    const char *w = getenv("MORPH_TEST_WRAPPER") ? "30" : "5";
    const char *good[] = {MORPH_BIN, "-w", w, "--ca", ca, target, "hi", NULL};
    ck_assert_int_eq(morph(good, &out, &err), 0);
    ck_assert_msg(strncmp(out, "HTTPS 127.0.0.1 ", 16) == 0, "%s", out);
    free(out);
    free(err);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(https_without_a_certificate_is_a_config_error)
{
    char ini[512];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\nallow_root = yes\n"
             "[service s]\nlisten = https://127.0.0.1:0\ntransform = echo\n",
             PLUGIN_DIR);
    ck_assert_int_ne(morphd_proc_start(&proc, ini), 0);
    char *log = morphd_proc_log(&proc);
    bool said = strstr(log, "tls_certificate") != NULL;
    if (!said)
        fprintf(stderr, "%s", log);
    free(log);
    ck_assert_msg(said, "morphd's log does not name tls_certificate");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, make_certs, remove_certs);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, serves_tls_1_2_and_1_3_beside_tcp);
    tcase_add_test(tc, python_ssl_client);
    tcase_add_test(tc, whoami_says_tls);
    tcase_add_test(tc, mutual_tls);
    tcase_add_test(tc, sessions_resume);
    tcase_add_test(tc, hostile_clients_are_closed_and_counted);
    tcase_add_test(tc, reload_replaces_the_certificate);
    tcase_add_test(tc, configuration_errors);
    tcase_add_test(tc, morph_client_speaks_tls);
    tcase_add_test(tc, proxy_header_before_the_handshake);
    tcase_add_test(tc, two_workers_and_a_clean_end);
    tcase_add_test(tc, out_of_descriptors_recovers);
    tcase_add_test(tc, https_serves_http_and_agrees_on_alpn);
    tcase_add_test(tc, https_without_a_certificate_is_a_config_error);
    tcase_add_test(tc, wss_serves_websockets_over_https);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
