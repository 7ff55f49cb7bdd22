/*
 * tls_load -- TLS load for `make bench`: one thread per connection, each
 * blocking on its own TLS socket (the client's efficiency is not what is
 * measured; the server's CPU is), every reply checked (uppercase).
 *
 *   tls_load rr         PORT [-c CONNS] [-s SIZE] [-d SECONDS]
 *       CONNS long-lived connections, each sending SIZE-byte lines (ending
 *       in '\n') and waiting for each reply
 *   tls_load handshakes PORT [-c THREADS] [-d SECONDS]
 *       each thread: connect, a full handshake (no resumption), one
 *       2-byte request and its reply (so the server has finished its
 *       part), close; again
 *
 * Prints one line: requests=N errors=E seconds=S rps=R client_cpu=C (for
 * handshakes, a request is one whole connection; C is the client's own CPU
 * use, in CPUs: near 1 means the client, not the server, set the rate).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static int port, conns = 100, size = 64, seconds = 5;
static bool handshakes;
static SSL_CTX *ctx;
static atomic_bool stop;
static atomic_ullong requests, errors;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL *open_tls(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {5, 0};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = NULL;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
        SSL_connect(ssl) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

static void close_tls(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);
    SSL_free(ssl);
    close(fd);
}

/* One request and its reply; false when either failed or was wrong. */
static bool ask(SSL *ssl, const char *msg, const char *want, size_t n, char *buf)
{
    size_t done = 0, w;
    if (SSL_write_ex(ssl, msg, n, &w) != 1 || w != n)
        return false;
    while (done < n) {
        size_t got = 0;
        if (SSL_read_ex(ssl, buf + done, n - done, &got) != 1)
            return false;
        done += got;
    }
    return memcmp(buf, want, n) == 0;
}

static void *worker(void *arg)
{
    (void)arg;
    char *msg = malloc((size_t)size), *want = malloc((size_t)size),
         *buf = malloc((size_t)size);
    for (int i = 0; i < size - 1; i++) {
        msg[i] = (char)('a' + i % 26);
        want[i] = (char)('A' + i % 26);
    }
    msg[size - 1] = want[size - 1] = '\n';
    SSL *ssl = NULL;
    while (!atomic_load(&stop)) {
        if (ssl == NULL && (ssl = open_tls()) == NULL) {
            atomic_fetch_add(&errors, 1);
            usleep(1000);
            continue;
        }
        bool ok = handshakes ? ask(ssl, "x\n", "X\n", 2, buf)
                             : ask(ssl, msg, want, (size_t)size, buf);
        if (!ok) {
            ERR_clear_error();
            if (!atomic_load(&stop))
                atomic_fetch_add(&errors, 1);
            close_tls(ssl);
            ssl = NULL;
            continue;
        }
        if (!atomic_load(&stop))
            atomic_fetch_add(&requests, 1);
        if (handshakes) {
            close_tls(ssl);
            ssl = NULL;
        }
    }
    if (ssl != NULL)
        close_tls(ssl);
    free(msg);
    free(want);
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "rr") != 0 && strcmp(argv[1], "handshakes") != 0)) {
        fprintf(stderr, "usage: tls_load rr|handshakes PORT [-c N] [-s SIZE] [-d SECONDS]\n");
        return 64;
    }
    handshakes = strcmp(argv[1], "handshakes") == 0;
    port = atoi(argv[2]);
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-c") == 0)
            conns = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-s") == 0)
            size = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-d") == 0)
            seconds = atoi(argv[i + 1]);
    }
    if (conns < 1 || size < 2 || seconds < 1)
        return 64;
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* loopback, our servers */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* full handshakes */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    pthread_t *t = calloc((size_t)conns, sizeof *t);
    double t0 = now_s();
    for (int i = 0; i < conns; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    sleep((unsigned)seconds);
    atomic_store(&stop, true);
    double t1 = now_s();
    for (int i = 0; i < conns; i++)
        pthread_join(t[i], NULL);
    unsigned long long n = atomic_load(&requests);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("requests=%llu errors=%llu seconds=%.3f rps=%.0f client_cpu=%.2f\n",
           n, atomic_load(&errors), t1 - t0, (double)n / (t1 - t0),
           cpu / (t1 - t0));
    free(t);
    SSL_CTX_free(ctx);
    return 0;
}
