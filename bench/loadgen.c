/*
 * loadgen.c -- the benchmark load generator. One thread, epoll, every
 * reply checked against the transform the server is expected to apply.
 *
 *   loadgen tcp-rr     PORT [-c CONNS] [-p PIPELINE] [-s SIZE] [-d SECONDS] [-x EXPECT] [-P]
 *                      [-f FRAMING]
 *   loadgen udp-rr     PORT [-c CLIENTS] [-s SIZE] [-d SECONDS] [-x EXPECT]
 *   loadgen tcp-stream PORT [-d SECONDS]
 *   loadgen idle       PORT [-c CONNS] [-d SECONDS] [-f FRAMING] [-s SIZE]
 *   loadgen first-reply PORT -- SERVER-COMMAND...
 *
 * -P: each connection starts with a PROXY protocol v2 header (a client at
 * 192.0.2.1), as from a load balancer.
 * EXPECT: upper (default), reverse, upper-reverse, echo. Messages are
 * SIZE bytes ending in '\n', so line and stream framing both answer them
 * with a reply of the same size. FRAMING (tcp-rr): line (the default),
 * length (a u32be length, then the body), netstring, delimiter (the body,
 * then a NUL): each message SIZE bytes on the wire, its frame included;
 * http (tcp-rr, idle): a POST whose body is SIZE bytes to an http://
 * endpoint, each 200 checked but its Date; ws (tcp-rr, idle): a WebSocket
 * to an http:// endpoint, each message a masked text frame whose payload
 * is SIZE bytes, each reply the server's unmasked frame.
 *
 * Prints one line of key=value pairs: requests, errors, seconds, rps,
 * mbps, p50_us, p99_us, p999_us (and ms for first-reply).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int port;
static int conns = 100, pipeline = 1, size = 64, seconds = 5;
static const char *expect = "upper";
/* the framing of tcp-rr: bytes before and after each message's body */
static int head = 0, tail = 1;
/* -f http (tcp-rr, idle): each request a POST whose body is -s bytes; the
 * reply's size (its head: morphd's 200, whose Date has a fixed length) */
static int reply_size;
#define HTTP_REQ_HEAD "POST / HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n"
#define HTTP_REPLY_HEAD "HTTP/1.1 200 OK\r\nServer: morphd\r\n" \
    "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n" \
    "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
static const char *framing = "line";
/* -f ws: the WebSocket's handshake, done before the load starts */
static bool ws;
static const unsigned char ws_mask[4] = {0x37, 0xfa, 0x21, 0x3d};
#define WS_HANDSHAKE "GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\n" \
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
    "Sec-WebSocket-Version: 13\r\n\r\n"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- latency histogram: 1 us buckets up to 1 s ------------------------------ */

#define HIST_MAX 1000000
static uint32_t *hist;
static uint64_t hist_n;

static void record(uint64_t ns)
{
    uint64_t us = ns / 1000;
    hist[us < HIST_MAX ? us : HIST_MAX - 1]++;
    hist_n++;
}

static uint64_t percentile(double p)
{
    uint64_t want = (uint64_t)(p * (double)hist_n), seen = 0;
    for (uint64_t us = 0; us < HIST_MAX; us++) {
        seen += hist[us];
        if (seen > want)
            return us;
    }
    return HIST_MAX;
}

/* --- messages ------------------------------------------------------------------ */

/* Sets head and tail for the framing; false for one it does not know. */
static bool set_framing(const char *name)
{
    framing = name;
    if (strcmp(name, "line") == 0)
        head = 0, tail = 1;
    else if (strcmp(name, "length") == 0)
        head = 4, tail = 0;
    else if (strcmp(name, "delimiter") == 0)
        head = 0, tail = 1;
    else if (strcmp(name, "netstring") == 0) {
        /* "N:" + N bytes + ",": the digits of N depend on N */
        int digits = 1;
        while (digits < 5) {
            int n = size - digits - 2, d = 1;
            for (int v = n; v >= 10; v /= 10)
                d++;
            if (d == digits)
                break;
            digits++;
        }
        head = digits + 1, tail = 1;
    } else if (strcmp(name, "ws") == 0) {
        int body = size;
        if (body > 125)
            return false; /* one-byte lengths: 2 bytes of header, 4 of mask */
        ws = true;
        head = 6, tail = 0;
        size = head + body;
        reply_size = 2 + body;
    } else if (strcmp(name, "http") == 0) {
        char h[256];
        int body = size;
        head = snprintf(h, sizeof h, HTTP_REQ_HEAD, body), tail = 0;
        size = head + body; /* from here on, the request's bytes */
        reply_size = snprintf(h, sizeof h, HTTP_REPLY_HEAD, body) + body;
    } else
        return false;
    if (reply_size == 0)
        reply_size = size;
    return true;
}

static void make_request(char *buf, uint64_t seq)
{
    int body = size - head - tail;
    for (int i = 0; i < body; i++)
        buf[head + i] = (char)('a' + (seq + (uint64_t)i * 7) % 26);
    if (ws) {
        buf[0] = (char)0x81;
        buf[1] = (char)(0x80 | body);
        memcpy(buf + 2, ws_mask, 4);
        for (int i = 0; i < body; i++)
            buf[head + i] ^= (char)ws_mask[i & 3];
    } else if (strcmp(framing, "http") == 0) {
        char h[256];
        snprintf(h, sizeof h, HTTP_REQ_HEAD, body);
        memcpy(buf, h, (size_t)head);
    } else if (strcmp(framing, "length") == 0) {
        uint32_t n = htonl((uint32_t)body);
        memcpy(buf, &n, 4);
    } else if (strcmp(framing, "netstring") == 0) {
        char digits[16];
        snprintf(digits, sizeof digits, "%d:", body);
        memcpy(buf, digits, (size_t)head);
        buf[size - 1] = ',';
    } else {
        buf[size - 1] = strcmp(framing, "delimiter") == 0 ? '\0' : '\n';
    }
}

/* The reply: the request's frame around the transformed body (http: a
 * 200's head of reply_size - body bytes before it). */
static void expected_reply(const char *req, char *out)
{
    int body = size - head - tail;
    bool up = strstr(expect, "upper") != NULL;
    bool rev = strstr(expect, "reverse") != NULL;
    int at = head;
    if (ws) {
        at = 2;
        out[0] = (char)0x81;
        out[1] = (char)body;
    } else if (reply_size != size) {
        at = reply_size - body;
        snprintf(out, (size_t)at + 1, HTTP_REPLY_HEAD, body);
    } else {
        memcpy(out, req, (size_t)size);
    }
    for (int i = 0; i < body; i++) {
        int k = rev ? body - 1 - i : i;
        char c = (char)(req[head + k] ^ (ws ? ws_mask[k & 3] : 0));
        out[at + i] = up && c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
}

/* Whether a reply is the one wanted: all of it, but an HTTP response's
 * Date, which is the time's ("Date: " at a fixed place, 29 bytes). */
static bool reply_ok(const char *got, const char *want)
{
    if (reply_size == size || ws)
        return memcmp(got, want, (size_t)reply_size) == 0;
    size_t date = sizeof "HTTP/1.1 200 OK\r\nServer: morphd\r\nDate: " - 1;
    return memcmp(got, want, date) == 0 &&
           memcmp(got + date + 29, want + date + 29,
                  (size_t)reply_size - date - 29) == 0;
}

static int tcp_connect_nb(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ws) { /* the handshake first, blocking: its 101 up to the blank line */
        char r[1024];
        size_t n = 0;
        if (send(fd, WS_HANDSHAKE, sizeof WS_HANDSHAKE - 1, MSG_NOSIGNAL) !=
            (ssize_t)(sizeof WS_HANDSHAKE - 1)) {
            close(fd);
            return -1;
        }
        while (n < 4 || memcmp(r + n - 4, "\r\n\r\n", 4) != 0) {
            if (n + 1 >= sizeof r || recv(fd, r + n, 1, 0) != 1) {
                close(fd);
                return -1;
            }
            n++;
        }
        if (strncmp(r, "HTTP/1.1 101 ", 13) != 0) {
            close(fd);
            errno = EPROTO;
            return -1;
        }
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void report(uint64_t requests, uint64_t errors, double secs, double bytes)
{
    printf("requests=%llu errors=%llu seconds=%.3f rps=%.0f mbps=%.1f "
           "p50_us=%llu p99_us=%llu p999_us=%llu\n",
           (unsigned long long)requests, (unsigned long long)errors, secs,
           requests / secs, bytes / secs / 1e6,
           (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.99),
           (unsigned long long)percentile(0.999));
}

/* --- TCP request/response ---------------------------------------------------- */

typedef struct conn {
    int fd;
    uint64_t next_seq;         /* next request to send */
    uint64_t sent_at[64];      /* per in-flight request (ring) */
    uint64_t first_unanswered; /* seq of the oldest request in flight */
    char rbuf[8192];
    size_t rlen;
} conn_t;

static int send_request(conn_t *c)
{
    char req[4096];
    make_request(req, c->next_seq);
    ssize_t w = send(c->fd, req, (size_t)size, MSG_NOSIGNAL);
    if (w != size)
        return -1; /* small messages: a short write means trouble */
    c->sent_at[c->next_seq % 64] = now_ns();
    c->next_seq++;
    return 0;
}

static bool proxy_header;

/* A PROXY v2 header for the client 192.0.2.1:(1000 + i) (28 bytes). */
static int send_proxy_header(int fd, int i)
{
    static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                          0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    unsigned char h[28];
    memcpy(h, sig, 12);
    h[12] = 0x21; /* version 2, PROXY */
    h[13] = 0x11; /* IPv4, stream */
    h[14] = 0;
    h[15] = 12;
    uint32_t src = htonl(0xc0000201), dst = htonl(INADDR_LOOPBACK);
    uint16_t sport = htons((uint16_t)(1000 + i)), dport = htons((uint16_t)port);
    memcpy(h + 16, &src, 4);
    memcpy(h + 20, &dst, 4);
    memcpy(h + 24, &sport, 2);
    memcpy(h + 26, &dport, 2);
    return send(fd, h, sizeof h, MSG_NOSIGNAL) == (ssize_t)sizeof h ? 0 : -1;
}

static int tcp_rr(void)
{
    conn_t *cs = calloc((size_t)conns, sizeof *cs);
    int ep = epoll_create1(0);
    for (int i = 0; i < conns; i++) {
        cs[i].fd = tcp_connect_nb();
        if (cs[i].fd < 0) {
            fprintf(stderr, "loadgen: connect: %s\n", strerror(errno));
            return 1;
        }
        if (proxy_header && send_proxy_header(cs[i].fd, i) != 0) {
            fprintf(stderr, "loadgen: PROXY header: %s\n", strerror(errno));
            return 1;
        }
        cs[i].next_seq = (uint64_t)i * 1000003u;
        cs[i].first_unanswered = cs[i].next_seq;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        for (int k = 0; k < pipeline; k++)
            send_request(&cs[i]);
    }
    uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000u;
    uint64_t done = 0, errors = 0;
    struct epoll_event evs[256];
    char want[4096], req[4096];
    while (now_ns() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < n; e++) {
            conn_t *c = evs[e].data.ptr;
            ssize_t r = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
            if (r <= 0) {
                errors++;
                continue;
            }
            c->rlen += (size_t)r;
            while (c->rlen >= (size_t)reply_size) {
                make_request(req, c->first_unanswered);
                expected_reply(req, want);
                if (!reply_ok(c->rbuf, want))
                    errors++;
                record(now_ns() - c->sent_at[c->first_unanswered % 64]);
                c->first_unanswered++;
                done++;
                memmove(c->rbuf, c->rbuf + reply_size,
                        c->rlen - (size_t)reply_size);
                c->rlen -= (size_t)reply_size;
                if (send_request(c) != 0)
                    errors++;
            }
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    report(done, errors, secs, (double)done * size);
    return errors ? 2 : 0;
}

/* --- UDP request/response ---------------------------------------------------- */

static int udp_rr(void)
{
    int ep = epoll_create1(0);
    int *fds = calloc((size_t)conns, sizeof *fds);
    uint64_t *seq = calloc((size_t)conns, sizeof *seq);
    uint64_t *sent_at = calloc((size_t)conns, sizeof *sent_at);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char req[4096], want[4096], got[65536];
    for (int i = 0; i < conns; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        connect(fds[i], (struct sockaddr *)&a, sizeof a);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        seq[i] = (uint64_t)i * 1000003u;
        make_request(req, seq[i]);
        send(fds[i], req, (size_t)size, 0);
        sent_at[i] = now_ns();
    }
    uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000u;
    uint64_t done = 0, errors = 0;
    struct epoll_event evs[256];
    while (now_ns() < end) {
        int n = epoll_wait(ep, evs, 256, 20);
        for (int e = 0; e < n; e++) {
            int i = (int)evs[e].data.u32;
            ssize_t r;
            while ((r = recv(fds[i], got, sizeof got, 0)) > 0) {
                make_request(req, seq[i]);
                expected_reply(req, want);
                if (r != size || memcmp(got, want, (size_t)size) != 0) {
                    errors++;
                    continue; /* a stale reply to a retried request */
                }
                record(now_ns() - sent_at[i]);
                done++;
                seq[i]++;
                make_request(req, seq[i]);
                send(fds[i], req, (size_t)size, 0);
                sent_at[i] = now_ns();
            }
        }
        uint64_t t = now_ns();
        for (int i = 0; i < conns; i++) /* lost datagram: retry after 200 ms */
            if (t > sent_at[i] + 200000000u) {
                errors++;
                make_request(req, seq[i]);
                send(fds[i], req, (size_t)size, 0);
                sent_at[i] = t;
            }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    report(done, errors, secs, (double)done * size);
    return 0;
}

/* --- TCP streaming ------------------------------------------------------------ */

static int tcp_stream(void)
{
    int fd = tcp_connect_nb();
    if (fd < 0)
        return 1;
    static char out[65536], in[65536];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)('a' + i % 26); /* 65536 % 26 != 0: offsets vary */
    uint64_t sent = 0, received = 0, errors = 0;
    uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000u;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    while (now_ns() < end) {
        struct epoll_event evs[1];
        if (epoll_wait(ep, evs, 1, 100) <= 0)
            continue;
        if ((evs[0].events & EPOLLOUT) && sent - received < (8u << 20)) {
            size_t off = sent % 26;
            ssize_t w = send(fd, out + off, sizeof out - 26, MSG_NOSIGNAL);
            if (w > 0)
                sent += (uint64_t)w;
        }
        if (evs[0].events & EPOLLIN) {
            ssize_t r = recv(fd, in, sizeof in, 0);
            for (ssize_t k = 0; k < r; k++)
                if (in[k] != (char)('A' + (received + (uint64_t)k) % 26))
                    errors++;
            if (r > 0)
                received += (uint64_t)r;
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    printf("requests=0 errors=%llu seconds=%.3f rps=0 mbps=%.1f p50_us=0 "
           "p99_us=0 p999_us=0\n", (unsigned long long)errors, secs,
           (double)received / secs / 1e6);
    return errors ? 2 : 0;
}

/* --- idle connections ---------------------------------------------------------- */

static int idle(void)
{
    int *fds = calloc((size_t)conns, sizeof *fds);
    char req[4096], want[4096], got[4096];
    uint64_t errors = 0;
    for (int i = 0; i < conns; i++) {
        fds[i] = tcp_connect_nb();
        if (fds[i] < 0) {
            fprintf(stderr, "loadgen: connect %d: %s\n", i, strerror(errno));
            return 1;
        }
        fcntl(fds[i], F_SETFL, 0);
        make_request(req, (uint64_t)i);
        send(fds[i], req, (size_t)size, MSG_NOSIGNAL);
    }
    for (int i = 0; i < conns; i++) { /* every one is served... */
        make_request(req, (uint64_t)i);
        expected_reply(req, want);
        ssize_t r = recv(fds[i], got, (size_t)reply_size, MSG_WAITALL);
        if (r != reply_size || !reply_ok(got, want))
            errors++;
    }
    printf("ready conns=%d errors=%llu\n", conns, (unsigned long long)errors);
    fflush(stdout);
    sleep((unsigned)seconds); /* ...then idle while the driver measures */
    return errors ? 2 : 0;
}

/* --- exec to first correct reply ------------------------------------------------ */

static int first_reply(char **cmd)
{
    char req[4096], want[4096], got[4096];
    make_request(req, 1);
    expected_reply(req, want);
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execvp(cmd[0], cmd);
        _exit(127);
    }
    int fd = -1;
    while (now_ns() - t0 < 5000000000u) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            break;
        close(fd);
        fd = -1;
        usleep(50);
    }
    int ok = fd >= 0 && send(fd, req, (size_t)size, MSG_NOSIGNAL) == size &&
             recv(fd, got, (size_t)size, MSG_WAITALL) == size &&
             memcmp(got, want, (size_t)size) == 0;
    uint64_t t1 = now_ns();
    if (fd >= 0)
        close(fd);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    printf("ms=%.3f errors=%d\n", (double)(t1 - t0) / 1e6, !ok);
    return ok ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of bench/loadgen.c\n");
        return 64;
    }
    const char *mode = argv[1];
    port = atoi(argv[2]);
    int opt;
    optind = 3;
    const char *framing_arg = "line";
    while ((opt = getopt(argc, argv, "c:p:s:d:x:Pf:")) != -1) {
        switch (opt) {
        case 'c': conns = atoi(optarg); break;
        case 'p': pipeline = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'd': seconds = atoi(optarg); break;
        case 'x': expect = optarg; break;
        case 'P': proxy_header = true; break;
        case 'f': framing_arg = optarg; break;
        default: return 64;
        }
    }
    if (size < 2 || size > 4096 || pipeline < 1 || pipeline > 64 || conns < 1)
        return 64;
    if (!set_framing(framing_arg) || size < head + tail + 1) {
        fprintf(stderr, "loadgen: -f takes line, length, netstring, http, ws "
                "(-s up to 125) or delimiter, with room for a body in -s\n");
        return 64;
    }
    hist = calloc(HIST_MAX, sizeof *hist);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "tcp-rr") == 0)
        return tcp_rr();
    if (strcmp(mode, "udp-rr") == 0)
        return udp_rr();
    if (strcmp(mode, "tcp-stream") == 0)
        return tcp_stream();
    if (strcmp(mode, "idle") == 0)
        return idle();
    if (strcmp(mode, "first-reply") == 0 && optind < argc)
        return first_reply(argv + optind);
    fprintf(stderr, "loadgen: unknown mode %s\n", mode);
    return 64;
}
