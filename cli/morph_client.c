/*
 * morph_client.c -- `morph [--udp|--tcp] [HOST][:PORT] [MESSAGE...]`: the
 * textbook client, grown up. With a message it sends it and prints the
 * reply; with a terminal it prompts for sentences; with piped input it
 * sends every line and prints every reply, for scripts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "codec/codec.h"
#include "codec/ws.h"
#include "morph_cli.h"

#define DEFAULT_HOST "localhost"
#define DEFAULT_PORT "12000"
#define PROMPT "Input lowercase sentence: "

typedef struct client {
    bool udp;
    const char *host;
    const char *port;
    const char *unix_path; /* unix:///path: a stream socket instead */
    const char *http_path; /* http://HOST:PORT/PATH: POST to PATH */
    bool tls;              /* --tls: TLS over the TCP connection */
    bool https;            /* https://: HTTP/1.1 over TLS (tls set too) */
    bool ws;               /* ws://, wss://: a WebSocket to http_path */
    const char *ca;        /* --ca: verify the server against this */
    bool insecure;         /* --insecure: do not verify it */
    SSL_CTX *ssl_ctx;
    SSL *ssl;
    int timeout_ms;
    int tries;
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct addrinfo *addrs;   /* every address the host resolved to */
    struct addrinfo *current; /* the one fd is connected to */
    /* --framing: how a stream message is framed (NULL: a line) */
    const morphd_codec_ops_t *framing;
    morphd_codec_t codec;
} client_t;

static void client_usage(FILE *out)
{
    fprintf(out,
            "Usage: morph [--tcp|--udp] [-w SECONDS] [-r TRIES] [HOST][:PORT] [MESSAGE...]\n"
            "       morph --tls [--ca FILE] [--insecure] [-w SECONDS] [HOST][:PORT] [MESSAGE...]\n"
            "       morph [-w SECONDS] unix:///PATH [MESSAGE...]\n"
            "       morph [-w SECONDS] http://HOST[:PORT][/PATH] [MESSAGE...]\n"
            "       morph [--ca FILE] [--insecure] [-w SECONDS] https://HOST[:PORT][/PATH] [MESSAGE...]\n"
            "       morph [-w SECONDS] ws://HOST[:PORT][/PATH] [MESSAGE...]\n"
            "       morph [--ca FILE] [--insecure] [-w SECONDS] wss://HOST[:PORT][/PATH] [MESSAGE...]\n"
            "       morph pipe ...      (morph pipe --help)\n"
            "       morph stats ...     (morph stats --help)\n"
            "       morph plugin info ... (morph plugin info --help)\n"
            "\n"
            "Sends text to a morph service and prints the reply. HOST defaults to\n"
            "%s, PORT to %s; IPv6 addresses go in brackets: [::1]:12000.\n"
            "The first word names the server when it has a port (host:12000,\n"
            ":12001), is an address (127.0.0.1, [::1]) or is localhost;\n"
            "otherwise it is the start of the message. unix:///PATH talks to a\n"
            "service's unix:// endpoint (a stream, like TCP); http://HOST:PORT/\n"
            "to an http:// endpoint: each message is the body of a POST (PORT\n"
            "defaults to 80), its response's body is printed on a line;\n"
            "https://HOST:PORT/ the same over TLS to an https:// endpoint (PORT\n"
            "defaults to 443; --ca and --insecure as with --tls). ws://HOST:PORT/\n"
            "opens a WebSocket to an http:// endpoint: each message is a text\n"
            "message, each reply is printed on a line; wss:// the same to an\n"
            "https:// endpoint.\n"
            "\n"
            "  MESSAGE...         send the words joined by spaces, print the reply\n"
            "  (no message)       on a terminal: prompt for sentences until end of\n"
            "                     input; otherwise: send each line of standard input\n"
            "                     and print each reply\n"
            "  -t, --tcp          use TCP (the default)\n"
            "  -u, --udp          use UDP: one datagram per message\n"
            "      --tls          use TLS over TCP, to a tls:// endpoint; the server's\n"
            "                     certificate is verified for HOST against the\n"
            "                     system's CAs\n"
            "      --ca FILE      verify it against the CA certificates in FILE\n"
            "      --insecure     do not verify it (encrypted, but to anyone)\n"
            "  -w, --timeout S    how long to wait for a reply (default 2; UDP: per try)\n"
            "  -r, --retries N    UDP: tries per message (default 3)\n"
            "  -f, --framing F    TCP, TLS, unix: frame each message as a service\n"
            "                     with that framing expects: line (the default),\n"
            "                     length, netstring or delimiter; each reply is\n"
            "                     printed on a line of its own\n"
            "      --length-field F  with --framing length: u8 u16be u16le u24be\n"
            "                     u32be (default) u32le u64be u64le varint\n"
            "      --delimiter B  with --framing delimiter: the bytes, with C\n"
            "                     escapes (default \\0)\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version\n"
            "\n"
            "Exit status: 0 every message was answered; 1 no reply in time or the\n"
            "connection failed; 64 bad usage.\n",
            DEFAULT_HOST, DEFAULT_PORT);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Splits "[HOST][:PORT]" (HOST may be "[v6]"), or takes "unix:///PATH",
 * or "http[s]://HOST[:PORT][/PATH]", or "ws[s]://HOST[:PORT][/PATH]". */
static int parse_target(char *spec, client_t *c)
{
    bool ws = strncmp(spec, "ws://", 5) == 0 || strncmp(spec, "wss://", 6) == 0;
    bool https = strncmp(spec, "https://", 8) == 0 ||
                 strncmp(spec, "wss://", 6) == 0;
    if (ws || https || strncmp(spec, "http://", 7) == 0) {
        spec += ws ? (https ? 6 : 5) : (https ? 8 : 7);
        c->ws = ws;
        char *slash = strchr(spec, '/');
        c->http_path = "/";
        if (slash != NULL) {
            /* the path keeps its '/': the host's end is marked by moving
             * the host:port one byte to the left */
            memmove(spec - 1, spec, (size_t)(slash - spec));
            slash[-1] = '\0';
            c->http_path = slash;
            spec--;
        }
        c->port = https ? "443" : "80";
        c->https = https;
        c->tls |= https;
        if (spec[0] == '\0' || strchr(c->http_path, ' ') != NULL)
            return -1;
    }
    if (strncmp(spec, "unix://", 7) == 0) {
        c->unix_path = spec + 7;
        return c->unix_path[0] == '/' &&
                       strlen(c->unix_path) < sizeof(struct sockaddr_un){0}.sun_path
                   ? 0 : -1;
    }
    if (spec[0] == '[') {
        char *close = strchr(spec, ']');
        if (close == NULL)
            return -1;
        *close = '\0';
        c->host = spec + 1;
        if (close[1] == ':')
            c->port = close + 2;
        else if (close[1] != '\0')
            return -1;
        return 0;
    }
    char *colon = strrchr(spec, ':');
    if (colon != NULL && strchr(spec, ':') != colon)
        colon = NULL; /* a bare IPv6 address without a port */
    if (colon != NULL) {
        *colon = '\0';
        c->port = colon + 1;
    }
    if (spec[0] != '\0')
        c->host = spec;
    return 0;
}

/* Whether the first word names the server rather than starting the
 * message: it has a port (":12000", "host:12000"), is bracketed IPv6, a
 * numeric address, or "localhost". Plain words are the message. */
static bool looks_like_target(const char *arg)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return strchr(arg, ':') != NULL || arg[0] == '[' || /* http:// too */
           strcmp(arg, "localhost") == 0 || inet_pton(AF_INET, arg, buf) == 1;
}

/* Connects to the first address from `from` on that takes it. Returns 0,
 * or -1 with errno's value of the last failure in *err. */
static int connect_from(client_t *c, struct addrinfo *from, int *err)
{
    struct addrinfo *ai;
    c->fd = -1;
    for (ai = from; ai != NULL; ai = ai->ai_next) {
        c->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (c->fd < 0) {
            *err = errno;
            continue;
        }
        /* UDP connect: only the server's replies reach us, and a closed
         * port shows up as ECONNREFUSED on the next receive. */
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        *err = errno;
        close(c->fd);
        c->fd = -1;
    }
    c->current = ai;
    return c->fd < 0 ? -1 : 0;
}

static int unix_connect(client_t *c)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, c->unix_path, strlen(c->unix_path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd >= 0 && connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0)
        return 0;
    fprintf(stderr, "morph: cannot connect to unix://%s: %s\n", c->unix_path,
            strerror(errno));
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return -1;
}

/* TLS over the connected socket: the server's certificate verified for
 * the host (name or address) unless --insecure. */
static int tls_start(client_t *c)
{
    c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (c->ssl_ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
    if (!c->insecure) {
        SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
        if (c->ca != NULL
                ? SSL_CTX_load_verify_locations(c->ssl_ctx, c->ca, NULL) != 1
                : SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
            fprintf(stderr, "morph: --ca %s: cannot load it: %s\n",
                    c->ca ? c->ca : "(system)",
                    ERR_reason_error_string(ERR_peek_last_error()));
            return -1;
        }
    }
    c->ssl = SSL_new(c->ssl_ctx);
    if (c->ssl == NULL)
        goto fail;
    SSL_set_fd(c->ssl, c->fd);
    static const unsigned char http11[] = "\x08http/1.1";
    if (c->https && SSL_set_alpn_protos(c->ssl, http11, sizeof http11 - 1) != 0)
        goto fail;
    unsigned char ip[sizeof(struct in6_addr)];
    bool numeric = inet_pton(AF_INET, c->host, ip) == 1 ||
                   inet_pton(AF_INET6, c->host, ip) == 1;
    if (numeric) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host);
    } else {
        SSL_set1_host(c->ssl, c->host);
        SSL_set_tlsext_host_name(c->ssl, c->host);
    }
    /* the handshake is bounded like a reply */
    struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (SSL_connect(c->ssl) == 1)
        return 0;
    long verify = SSL_get_verify_result(c->ssl);
    if (verify != X509_V_OK)
        fprintf(stderr, "morph: %s port %s: the server's certificate is not "
                "trusted: %s (--ca FILE names the CA to trust; --insecure "
                "skips the check)\n", c->host, c->port,
                X509_verify_cert_error_string(verify));
    else
        fprintf(stderr, "morph: %s port %s: TLS handshake failed: %s\n",
                c->host, c->port,
                ERR_peek_last_error()
                    ? ERR_reason_error_string(ERR_peek_last_error())
                    : "the server closed the connection (is it tls:// or https://?)");
    return -1;
fail:
    fprintf(stderr, "morph: out of memory\n");
    return -1;
}

static int ws_send(client_t *c, unsigned op, const void *payload, size_t len);

static void client_close(client_t *c)
{
    if (c->ws && c->fd >= 0) /* the close handshake's first half */
        ws_send(c, 0x8, "\x03\xe8", 2);
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl); /* close_notify: a clean end */
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ssl_ctx);
    if (c->fd >= 0)
        close(c->fd);
}

static int client_connect(client_t *c)
{
    if (c->unix_path != NULL)
        return unix_connect(c);
    struct addrinfo hints = {0};
    hints.ai_socktype = c->udp ? SOCK_DGRAM : SOCK_STREAM;
    int rc = getaddrinfo(c->host, c->port, &hints, &c->addrs);
    if (rc != 0) {
        fprintf(stderr, "morph: %s:%s: %s\n", c->host, c->port,
                gai_strerror(rc));
        return -1;
    }
    int err = 0;
    if (connect_from(c, c->addrs, &err) != 0) {
        fprintf(stderr, "morph: cannot connect to %s port %s (%s): %s\n",
                c->host, c->port, c->udp ? "udp" : "tcp", strerror(err));
        return -1;
    }
    return 0;
}

static int write_all(client_t *c, const char *p, size_t n)
{
    if (c->ssl != NULL) {
        size_t w;
        return n == 0 || SSL_write_ex(c->ssl, p, n, &w) == 1 ? 0 : -1;
    }
    int fd = c->fd;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One byte of the reply, waiting until the deadline: 1, or 0 after saying
 * why there is none. */
static int read_byte(client_t *c, long deadline, char *ch)
{
    long left = deadline - now_ms();
    struct pollfd p = {c->fd, POLLIN, 0};
    bool buffered = c->ssl != NULL && SSL_pending(c->ssl) > 0;
    if (!buffered && (left <= 0 || poll(&p, 1, (int)left) <= 0)) {
        if (c->unix_path != NULL)
            fprintf(stderr, "\nmorph: no reply from unix://%s within %d ms\n",
                    c->unix_path, c->timeout_ms);
        else
            fprintf(stderr, "\nmorph: no reply from %s port %s within %d ms\n",
                    c->host, c->port, c->timeout_ms);
        return 0;
    }
    ssize_t r;
    if (c->ssl != NULL) {
        size_t got = 0;
        r = SSL_read_ex(c->ssl, ch, 1, &got) == 1 ? (ssize_t)got : -1;
        if (r < 0 && SSL_get_error(c->ssl, 0) == SSL_ERROR_ZERO_RETURN)
            r = 0;
        ERR_clear_error();
        if (r < 0)
            errno = ECONNRESET;
    } else {
        r = recv(c->fd, ch, 1, 0);
    }
    if (r <= 0) {
        fprintf(stderr, "\nmorph: the server closed the connection%s%s\n",
                r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
        return 0;
    }
    return 1;
}

/* A framed reply: printed on a line of its own; stops the decoder. */
static int print_reply(void *ctx, const unsigned char *msg, size_t len,
                       const morphd_frame_t *frame)
{
    (void)ctx, (void)frame;
    fwrite(msg, 1, len, stdout);
    putchar('\n');
    return 1;
}

/* --framing: sends the message in its frame, and reads until the decoder
 * has the reply's. */
static int framed_exchange(client_t *c, const char *msg, size_t len)
{
    morphd_buf_t out = MORPHD_BUF_INIT;
    morphd_frame_t frame = {&c->codec.shape, NULL, 0, 0, NULL};
    size_t mark;
    int rc = morphd_frame_begin(&frame, &out, &mark) != 0 ||
                     morphd_buf_append(&out, msg, len) != 0
                 ? -1
                 : morphd_frame_end(&frame, &out, mark, len);
    if (rc != 0) {
        char why[160] = "out of memory";
        if (rc > 0)
            morphd_frame_explain(&frame, len, why, sizeof why);
        fprintf(stderr, "morph: %s\n", why);
        morphd_buf_free(&out);
        return -1;
    }
    rc = write_all(c, (const char *)out.data, out.len);
    morphd_buf_free(&out);
    if (rc != 0) {
        fprintf(stderr, "morph: send: %s\n", strerror(errno));
        return -1;
    }
    long deadline = now_ms() + c->timeout_ms;
    morphd_decoder_t d = MORPHD_DECODER_INIT;
    for (rc = 0; rc == 0;) {
        char ch;
        if (!read_byte(c, deadline, &ch)) {
            rc = -1;
            break;
        }
        rc = morphd_decoder_feed(&d, &c->codec, (const unsigned char *)&ch, 1,
                                 print_reply, NULL, NULL);
        if (rc < 0)
            fprintf(stderr, "\nmorph: the reply is not framing = %s: %s\n",
                    c->codec.ops->name, d.reason);
    }
    morphd_decoder_free(&d);
    fflush(stdout);
    return rc > 0 ? 0 : -1;
}

/* A line of the response (up to its LF, which is dropped, and a CR
 * before it), appended to line. */
static int read_line(client_t *c, long deadline, morphd_buf_t *line)
{
    char ch;
    line->len = 0;
    for (;;) {
        if (line->len > 4096 || !read_byte(c, deadline, &ch))
            return -1;
        if (ch == '\n')
            break;
        if (morphd_buf_append(line, &ch, 1) != 0)
            return -1;
    }
    if (line->len > 0 && line->data[line->len - 1] == '\r')
        line->len--;
    return morphd_buf_append(line, "", 1) == 0 ? 0 : -1;
}

/* A chunked body (RFC 9112 7.1), its chunks appended to r; the trailer
 * fields read past. */
static int read_chunked(client_t *c, long deadline, morphd_buf_t *r)
{
    morphd_buf_t line = MORPHD_BUF_INIT;
    int rc = -1;
    for (;;) {
        if (read_line(c, deadline, &line) != 0)
            goto out;
        char *end;
        unsigned long long size = strtoull((const char *)line.data, &end, 16);
        if (end == (char *)line.data || size > (1ull << 32)) {
            fprintf(stderr, "morph: a malformed chunk in the response\n");
            goto out;
        }
        if (size == 0)
            break;
        for (unsigned long long i = 0; i < size; i++) {
            char ch;
            if (!read_byte(c, deadline, &ch) || morphd_buf_append(r, &ch, 1) != 0)
                goto out;
        }
        if (read_line(c, deadline, &line) != 0) /* the chunk's CRLF */
            goto out;
    }
    do { /* trailer fields, up to the blank line */
        if (read_line(c, deadline, &line) != 0)
            goto out;
    } while (line.len > 1);
    rc = 0;
out:
    morphd_buf_free(&line);
    return rc;
}

/* http://: POSTs the message and prints the response's body on a line;
 * a status other than 200 goes to standard error with its body. */
static int http_exchange(client_t *c, const char *msg, size_t len)
{
    char head[1024];
    bool v6 = strchr(c->host, ':') != NULL;
    int n = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                     "User-Agent: morph/" MORPH_VERSION "\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n\r\n", c->http_path,
                     v6 ? "[" : "", c->host, v6 ? "]" : "", c->port, len);
    if (n < 0 || (size_t)n >= sizeof head) {
        fprintf(stderr, "morph: the path is too long\n");
        return -1;
    }
    if (write_all(c, head, (size_t)n) != 0 || write_all(c, msg, len) != 0) {
        fprintf(stderr, "morph: send: %s\n", strerror(errno));
        return -1;
    }
    /* the head, byte by byte up to its blank line, then the body */
    long deadline = now_ms() + c->timeout_ms;
    morphd_buf_t r = MORPHD_BUF_INIT;
    char ch;
    int rc = -1;
    while (r.len < 4 || memcmp(r.data + r.len - 4, "\r\n\r\n", 4) != 0) {
        if (r.len > 65536 || !read_byte(c, deadline, &ch) ||
            morphd_buf_append(&r, &ch, 1) != 0)
            goto out;
    }
    morphd_buf_append(&r, "", 1); /* a C string from here */
    int status = 0;
    if (sscanf((const char *)r.data, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "morph: the reply is no HTTP response\n");
        goto out;
    }
    const char *cl = strcasestr((const char *)r.data, "\r\ncontent-length:");
    const char *te = strcasestr((const char *)r.data,
                                "\r\ntransfer-encoding: chunked\r\n");
    size_t body = cl != NULL ? strtoul(cl + 17, NULL, 10) : 0;
    size_t at = r.len;
    if (te != NULL) { /* a streamed response (framing = stream): its chunks */
        if (read_chunked(c, deadline, &r) != 0)
            goto out;
        body = r.len - at;
    }
    for (size_t i = 0; te == NULL && i < body; i++)
        if (!read_byte(c, deadline, &ch) || morphd_buf_append(&r, &ch, 1) != 0)
            goto out;
    if (status == 200 || status == 204) {
        fwrite(r.data + at, 1, body, stdout);
        putchar('\n');
        fflush(stdout);
        rc = 0;
    } else {
        const char *line = (const char *)r.data + 9;
        fprintf(stderr, "morph: HTTP %.*s: %.*s", (int)strcspn(line, "\r"), line,
                (int)body, (const char *)r.data + at);
        if (body == 0 || r.data[r.len - 1] != '\n')
            fputc('\n', stderr);
    }
out:
    morphd_buf_free(&r);
    return rc;
}

/* --- ws:// ------------------------------------------------------------------- */

/* A client's frame: FIN, `op`, the payload masked with a fresh key. */
static int ws_send(client_t *c, unsigned op, const void *payload, size_t len)
{
    unsigned char head[14], mask[4];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | op);
    if (len <= 125) {
        head[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        head[h++] = 0x80 | 126;
        head[h++] = (unsigned char)(len >> 8);
        head[h++] = (unsigned char)len;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            head[h++] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    if (RAND_bytes(mask, sizeof mask) != 1)
        return -1;
    memcpy(head + h, mask, 4);
    h += 4;
    unsigned char *masked = malloc(len + 1);
    if (masked == NULL)
        return -1;
    for (size_t i = 0; i < len; i++)
        masked[i] = ((const unsigned char *)payload)[i] ^ mask[i & 3];
    int rc = write_all(c, (const char *)head, h) != 0 ||
                     write_all(c, (const char *)masked, len) != 0
                 ? -1
                 : 0;
    free(masked);
    return rc;
}

/* The opening handshake (RFC 6455 4.1): 101, and the Sec-WebSocket-Accept
 * that answers our key. */
static int ws_handshake(client_t *c)
{
    unsigned char nonce[16];
    char key[32], want[MORPHD_WS_ACCEPT_SIZE], head[1024];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce); /* 24 + NUL */
    morphd_ws_accept((const unsigned char *)key, strlen(key), want);
    bool v6 = strchr(c->host, ':') != NULL;
    int n = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                     "User-Agent: morph/" MORPH_VERSION "\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     c->http_path, v6 ? "[" : "", c->host, v6 ? "]" : "",
                     c->port, key);
    if (n < 0 || (size_t)n >= sizeof head) {
        fprintf(stderr, "morph: the path is too long\n");
        return -1;
    }
    if (write_all(c, head, (size_t)n) != 0) {
        fprintf(stderr, "morph: send: %s\n", strerror(errno));
        return -1;
    }
    long deadline = now_ms() + c->timeout_ms;
    size_t have = 0;
    char ch;
    while (have < 4 || memcmp(head + have - 4, "\r\n\r\n", 4) != 0) {
        if (have + 1 >= sizeof head || !read_byte(c, deadline, &ch))
            return -1;
        head[have++] = ch;
    }
    head[have] = '\0';
    int status = 0;
    sscanf(head, "HTTP/1.%*d %d", &status);
    if (status != 101) {
        fprintf(stderr, "morph: the server refused the WebSocket: %.*s\n",
                (int)strcspn(head, "\r"), head);
        return -1;
    }
    const char *accept = strcasestr(head, "\r\nsec-websocket-accept:");
    if (accept != NULL)
        accept += 24;
    while (accept != NULL && *accept == ' ')
        accept++;
    if (accept == NULL || strncmp(accept, want, strlen(want)) != 0) {
        fprintf(stderr, "morph: the server's Sec-WebSocket-Accept does not "
                "answer our key: not a WebSocket server\n");
        return -1;
    }
    return 0;
}

/* ws://: the message as a text message; the next text or binary message
 * back is printed on a line (a ping is answered on the way; a close says
 * its code). */
static int ws_exchange(client_t *c, const char *msg, size_t len)
{
    if (ws_send(c, 0x1, msg, len) != 0) {
        fprintf(stderr, "morph: send: %s\n", strerror(errno));
        return -1;
    }
    long deadline = now_ms() + c->timeout_ms;
    morphd_buf_t payload = MORPHD_BUF_INIT;
    int rc = -1;
    for (;;) {
        unsigned char h[10];
        char ch;
        for (int i = 0; i < 2; i++) {
            if (!read_byte(c, deadline, &ch))
                goto out;
            h[i] = (unsigned char)ch;
        }
        uint64_t n = h[1] & 0x7f;
        int extra = n == 126 ? 2 : n == 127 ? 8 : 0;
        if (extra > 0)
            n = 0;
        for (int i = 0; i < extra; i++) {
            if (!read_byte(c, deadline, &ch))
                goto out;
            n = n << 8 | (unsigned char)ch;
        }
        if ((h[1] & 0x80) || n > (64u << 20)) {
            fprintf(stderr, "morph: the server sent a frame no server sends\n");
            goto out;
        }
        payload.len = 0;
        for (uint64_t i = 0; i < n; i++)
            if (!read_byte(c, deadline, &ch) ||
                morphd_buf_append(&payload, &ch, 1) != 0)
                goto out;
        unsigned op = h[0] & 0x0f;
        if (op == 0x9) { /* a ping: its pong */
            if (ws_send(c, 0xA, payload.data, payload.len) != 0)
                goto out;
            continue;
        }
        if (op == 0x8) {
            unsigned code = payload.len >= 2
                                ? (unsigned)payload.data[0] << 8 | payload.data[1]
                                : 1005;
            fprintf(stderr, "morph: the server closed the WebSocket (code %u)\n",
                    code);
            goto out;
        }
        if (op == 0x1 || op == 0x2 || op == 0x0) {
            /* (a fragmented reply is printed as its fragments come) */
            if (payload.len > 0)
                fwrite(payload.data, 1, payload.len, stdout);
            if (!(h[0] & 0x80))
                continue;
            putchar('\n');
            fflush(stdout);
            rc = 0;
            goto out;
        }
    }
out:
    morphd_buf_free(&payload);
    return rc;
}

/* TCP: sends one line (newline added) and prints the reply up to and
 * including its newline. */
static int tcp_exchange(client_t *c, const char *msg, size_t len)
{
    if (c->ws)
        return ws_exchange(c, msg, len);
    if (c->http_path != NULL)
        return http_exchange(c, msg, len);
    if (c->framing != NULL)
        return framed_exchange(c, msg, len);
    if (write_all(c, msg, len) != 0 || write_all(c, "\n", 1) != 0) {
        fprintf(stderr, "morph: send: %s\n", strerror(errno));
        return -1;
    }
    long deadline = now_ms() + c->timeout_ms;
    char ch;
    do {
        if (!read_byte(c, deadline, &ch))
            return -1;
        putchar(ch);
    } while (ch != '\n');
    fflush(stdout);
    return 0;
}

/* UDP: the next resolved address, after the current one refused (as
 * `localhost` may resolve to ::1 first for a service on 127.0.0.1 only --
 * TCP's connect() finds that out by itself). Returns 0 when there is one. */
static int udp_next_address(client_t *c)
{
    int err = 0;
    if (c->current == NULL || c->current->ai_next == NULL)
        return -1;
    close(c->fd);
    return connect_from(c, c->current->ai_next, &err);
}

/* UDP: sends one datagram and prints its reply, retrying on silence, and
 * trying the host's next address when one refuses. */
static int udp_exchange(client_t *c, const char *msg, size_t len)
{
    static char reply[65536];
    for (int attempt = 1; attempt <= c->tries; attempt++) {
        if (send(c->fd, msg, len, 0) < 0) {
            fprintf(stderr, "morph: send: %s\n", strerror(errno));
            return -1;
        }
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, c->timeout_ms) == 1) {
            ssize_t r = recv(c->fd, reply, sizeof reply, 0);
            if (r < 0 && errno == ECONNREFUSED && udp_next_address(c) == 0) {
                attempt--; /* the next address gets every try too */
                continue;
            }
            if (r < 0) {
                fprintf(stderr, "morph: no service on %s port %s (udp): %s\n",
                        c->host, c->port, strerror(errno));
                return -1;
            }
            fwrite(reply, 1, (size_t)r, stdout);
            if (r == 0 || reply[r - 1] != '\n')
                putchar('\n');
            fflush(stdout);
            return 0;
        }
    }
    fprintf(stderr, "morph: no reply from %s port %s (udp) after %d tries of "
            "%d ms (nothing listening, a plugin that answers nothing, or a "
            "reply over the service's udp_max_reply_ratio: morphd's log "
            "says which)\n", c->host, c->port, c->tries, c->timeout_ms);
    return -1;
}

static int exchange(client_t *c, const char *msg, size_t len)
{
    return c->udp ? udp_exchange(c, msg, len) : tcp_exchange(c, msg, len);
}

int morph_client_main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"tcp", no_argument, NULL, 't'},
        {"udp", no_argument, NULL, 'u'},
        {"tls", no_argument, NULL, 'T'},
        {"ca", required_argument, NULL, 'C'},
        {"insecure", no_argument, NULL, 'K'},
        {"timeout", required_argument, NULL, 'w'},
        {"retries", required_argument, NULL, 'r'},
        {"framing", required_argument, NULL, 'f'},
        {"length-field", required_argument, NULL, 'L'},
        {"delimiter", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    client_t c = {.host = DEFAULT_HOST, .port = DEFAULT_PORT,
                  .timeout_ms = 2000, .tries = 3, .fd = -1};
    int opt;
    /* "+": stop at the first non-option, so messages may start with '-'
     * after "--" and words after the target are never options */
    morphd_length_kind_t length_field = MORPHD_LEN_U32BE;
    unsigned char delimiter[MORPHD_FRAME_TAIL_MAX] = {0};
    size_t delimiter_len = 1;
    char err[160];
    while ((opt = getopt_long(argc, argv, "+tuw:r:f:hV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 't':
            c.udp = false;
            break;
        case 'u':
            c.udp = true;
            break;
        case 'T':
            c.tls = true;
            break;
        case 'C':
            c.ca = optarg;
            break;
        case 'K':
            c.insecure = true;
            break;
        case 'w': {
            char *end;
            double s = strtod(optarg, &end);
            if (*end != '\0' || s <= 0 || s > 3600) {
                fprintf(stderr, "morph: --timeout takes seconds, 0 < S <= 3600\n");
                return MORPH_EXIT_USAGE;
            }
            c.timeout_ms = (int)(s * 1000);
            break;
        }
        case 'r':
            c.tries = atoi(optarg);
            if (c.tries < 1 || c.tries > 100) {
                fprintf(stderr, "morph: --retries takes 1..100\n");
                return MORPH_EXIT_USAGE;
            }
            break;
        case 'f':
            c.framing = morphd_codec_builtin(optarg);
            if (c.framing == &morphd_codec_line)
                c.framing = NULL; /* the client's own line path */
            else if (c.framing == NULL || c.framing == &morphd_codec_stream) {
                fprintf(stderr, "morph: --framing takes line, length, "
                        "netstring or delimiter\n");
                return MORPH_EXIT_USAGE;
            }
            break;
        case 'L':
            if (morph_option_length_field("morph", optarg, &length_field) != 0)
                return MORPH_EXIT_USAGE;
            break;
        case 'D':
            if (morph_option_delimiter("morph", optarg, delimiter,
                                       sizeof delimiter, &delimiter_len) != 0)
                return MORPH_EXIT_USAGE;
            break;
        case 'h':
            client_usage(stdout);
            return 0;
        case 'V':
            printf("morph %s\n", MORPH_VERSION);
            return 0;
        default:
            client_usage(stderr);
            return MORPH_EXIT_USAGE;
        }
    }
    char *target = NULL;
    if (optind < argc && looks_like_target(argv[optind])) {
        target = strdup(argv[optind++]);
        if (target == NULL || parse_target(target, &c) != 0) {
            fprintf(stderr, "morph: '%s' is not [HOST][:PORT], "
                    "http[s]://HOST[:PORT][/PATH], ws[s]://HOST[:PORT][/PATH] "
                    "or unix:///PATH (absolute, "
                    "at most 107 bytes)\n",
                    argv[optind - 1]);
            free(target);
            return MORPH_EXIT_USAGE;
        }
        if (c.unix_path != NULL && c.udp) {
            fprintf(stderr, "morph: unix:// endpoints are streams; --udp "
                    "does not apply\n");
            free(target);
            return MORPH_EXIT_USAGE;
        }
    }
    if ((c.ca != NULL || c.insecure) && !c.tls) {
        fprintf(stderr, "morph: --ca and --insecure go with --tls, "
                "https:// or wss://\n");
        free(target);
        return MORPH_EXIT_USAGE;
    }
    if (c.tls && (c.udp || c.unix_path != NULL)) {
        fprintf(stderr, "morph: --tls is TLS over TCP; not with %s\n",
                c.udp ? "--udp" : "unix://");
        free(target);
        return MORPH_EXIT_USAGE;
    }
    if (c.http_path != NULL &&
        (c.udp || (c.tls && !c.https) || c.framing != NULL)) {
        fprintf(stderr, "morph: http:// is HTTP/1.1 over TCP; not with %s\n",
                c.udp ? "--udp" : c.tls ? "--tls (for TLS, https://)"
                                        : "--framing");
        free(target);
        return MORPH_EXIT_USAGE;
    }
    if (c.framing != NULL && c.udp) {
        fprintf(stderr, "morph: --framing is for streams; UDP keeps one "
                "message per datagram\n");
        free(target);
        return MORPH_EXIT_USAGE;
    }
    if (c.framing != NULL &&
        morphd_codec_init(&c.codec, c.framing, 64u << 20, length_field, 0, 0,
                          delimiter, delimiter_len, err, sizeof err) != 0) {
        fprintf(stderr, "morph: %s\n", err);
        free(target);
        return MORPH_EXIT_USAGE;
    }
    if (optind < argc && strcmp(argv[optind], "--") == 0)
        optind++; /* what follows is the message, even if it starts with - */
    if (client_connect(&c) != 0 || (c.tls && tls_start(&c) != 0) ||
        (c.ws && ws_handshake(&c) != 0)) {
        c.ws = false; /* no close handshake for what never opened */
        client_close(&c);
        if (c.addrs != NULL)
            freeaddrinfo(c.addrs);
        free(target);
        return MORPH_EXIT_FAILURE;
    }

    int rc = 0;
    if (optind < argc) {
        /* the words of the message, joined by spaces */
        size_t len = 0;
        for (int i = optind; i < argc; i++)
            len += strlen(argv[i]) + 1;
        char *msg = malloc(len);
        msg[0] = '\0';
        for (int i = optind; i < argc; i++) {
            strcat(msg, argv[i]);
            if (i + 1 < argc)
                strcat(msg, " ");
        }
        rc = exchange(&c, msg, strlen(msg));
        free(msg);
    } else {
        bool tty = isatty(STDIN_FILENO);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        for (;;) {
            if (tty) {
                fputs(PROMPT, stdout);
                fflush(stdout);
            }
            if ((n = getline(&line, &cap, stdin)) < 0)
                break;
            if (n > 0 && line[n - 1] == '\n')
                line[--n] = '\0';
            if (exchange(&c, line, (size_t)n) != 0) {
                rc = -1;
                break;
            }
        }
        if (tty && n < 0)
            putchar('\n');
        free(line);
    }
    client_close(&c);
    if (c.addrs != NULL)
        freeaddrinfo(c.addrs);
    free(target);
    return rc == 0 ? 0 : 1;
}
