/*
 * baseline_epoll.c -- the one-core limit: a raw epoll uppercase server.
 * TCP: level-triggered, one static read buffer, a per-connection backlog
 * only when the socket is full. UDP: recvmmsg and sendmmsg in batches.
 *
 *   baseline_epoll PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64

typedef struct conn {
    int fd;
    char *pending; /* unsent output */
    size_t len;
} conn_t;

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

static void upper(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 'a' && p[i] <= 'z')
            p[i] = (char)(p[i] - 32);
}

static void drop(int ep, conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 64;
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 511) ||
        bind(ufd, (struct sockaddr *)&a, sizeof a)) {
        perror("bind");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    static conn_t udp_marker;
    ev.data.ptr = &udp_marker;
    epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);

    static char buf[65536];
    static char dgrams[BATCH][2048];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 200);
        for (int e = 0; e < n; e++) {
            conn_t *c = evs[e].data.ptr;
            if (c == NULL) { /* the listener */
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (c == &udp_marker) {
                for (int i = 0; i < BATCH; i++) {
                    iov[i] = (struct iovec){dgrams[i], sizeof dgrams[i]};
                    msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                        .msg_namelen = sizeof from[i], .msg_iov = &iov[i], .msg_iovlen = 1};
                }
                int got = recvmmsg(ufd, msgs, BATCH, MSG_DONTWAIT, NULL);
                for (int i = 0; i < got; i++) {
                    upper(dgrams[i], msgs[i].msg_len);
                    iov[i].iov_len = msgs[i].msg_len;
                }
                if (got > 0)
                    sendmmsg(ufd, msgs, (unsigned)got, 0);
                continue;
            }
            if (evs[e].events & EPOLLOUT) { /* flush the backlog */
                ssize_t w = send(c->fd, c->pending, c->len, MSG_NOSIGNAL);
                if (w > 0) {
                    memmove(c->pending, c->pending + w, c->len - (size_t)w);
                    c->len -= (size_t)w;
                }
                if (c->len == 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
                }
                continue;
            }
            ssize_t r = recv(c->fd, buf, sizeof buf, 0);
            if (r <= 0) {
                if (r == 0 || errno != EAGAIN)
                    drop(ep, c);
                continue;
            }
            upper(buf, (size_t)r);
            ssize_t w = c->len ? 0 : send(c->fd, buf, (size_t)r, MSG_NOSIGNAL);
            if (w < 0)
                w = 0;
            if (w < r) { /* keep the rest; stop reading until it drains */
                c->pending = realloc(c->pending, c->len + (size_t)(r - w));
                memcpy(c->pending + c->len, buf + w, (size_t)(r - w));
                c->len += (size_t)(r - w);
                struct epoll_event cev = {.events = EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
            }
        }
    }
    return 0;
}
