/*
 * listener_socket.c -- sockets for several workers on one port: each
 * worker binds its own socket with SO_REUSEPORT and the kernel spreads
 * connections and datagrams among them. libuv 1.44 cannot ask for
 * SO_REUSEPORT itself, so the socket is made here and handed to
 * uv_tcp_open / uv_udp_open.
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "net/listener.h"

int morphd_listener_socket(const morphd_listener_t *l, int type)
{
    const struct sockaddr *addr = (const struct sockaddr *)&l->endpoint.addr;
    int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int on = 1;
    socklen_t len = (socklen_t)morphd_sockaddr_len(addr);
    if ((type == SOCK_STREAM &&
         setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) ||
        bind(fd, addr, len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}
