/*
 * tls_idle -- opens N TLS connections to 127.0.0.1:PORT, one after the
 * other, each shaking hands and getting one reply ("x\n"), then holds them
 * open and silent for D seconds: what `make bench` measures the server's
 * memory per idle TLS connection with. The client frees its own TLS state
 * once a connection has its reply (keeping only the socket), so 10,000 of
 * them fit in a small client.
 *
 * usage: tls_idle PORT -c N -d SECONDS
 * prints "ready conns=N errors=E" once all are open, on standard output.
 */
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

int main(int argc, char **argv)
{
    if (argc != 6 || strcmp(argv[2], "-c") != 0 || strcmp(argv[4], "-d") != 0) {
        fprintf(stderr, "usage: tls_idle PORT -c N -d SECONDS\n");
        return 64;
    }
    int port = atoi(argv[1]), n = atoi(argv[3]), seconds = atoi(argv[5]);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return 1;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* loopback, our server */
    int *fds = calloc((size_t)n, sizeof *fds);
    int conns = 0;
    unsigned long long errors = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        SSL *ssl = NULL;
        char reply[2];
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
            (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
            SSL_connect(ssl) != 1 || SSL_write(ssl, "x\n", 2) != 2 ||
            SSL_read(ssl, reply, 2) != 2) {
            errors++;
            ERR_clear_error();
            SSL_free(ssl);
            if (fd >= 0)
                close(fd);
            continue;
        }
        SSL_free(ssl); /* the socket stays open; the server keeps its TLS */
        fds[conns++] = fd;
    }
    printf("ready conns=%d errors=%llu\n", conns, errors);
    fflush(stdout);
    sleep((unsigned)seconds);
    for (int i = 0; i < conns; i++)
        close(fds[i]);
    free(fds);
    SSL_CTX_free(ctx);
    return 0;
}
