/*
 * activation.c -- systemd socket activation (activation.h), with
 * libsystemd's sd_listen_fds and sd_is_socket_*; without libsystemd
 * (MORPHD_HAVE_SYSTEMD unset) no socket is ever passed.
 */
#include "daemon/activation.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"

#ifdef MORPHD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

#define MAX_PASSED 256

static int passed[MAX_PASSED]; /* -1: taken or closed */
static int n_passed;

int morphd_activation_init(void)
{
    int n = sd_listen_fds(1);
    if (n < 0) {
        morphd_log(MORPH_LOG_WARN, "socket activation: LISTEN_FDS is not "
                   "usable (%d); binding every endpoint", n);
        return 0;
    }
    if (n > MAX_PASSED) {
        morphd_log(MORPH_LOG_WARN, "socket activation: %d sockets passed; "
                   "using the first %d", n, MAX_PASSED);
        for (int i = MAX_PASSED; i < n; i++)
            close(SD_LISTEN_FDS_START + i);
        n = MAX_PASSED;
    }
    for (int i = 0; i < n; i++)
        passed[i] = SD_LISTEN_FDS_START + i;
    n_passed = n;
    if (n > 0)
        morphd_log(MORPH_LOG_INFO, "socket activation: %d socket%s passed", n,
                   n == 1 ? "" : "s");
    return n;
}

static bool matches(int fd, const morphd_endpoint_t *ep)
{
    const struct sockaddr *sa = (const struct sockaddr *)&ep->addr;
    switch (ep->transport) {
    case MORPHD_TCP:
    case MORPHD_TLS:
        return sd_is_socket_sockaddr(fd, SOCK_STREAM, sa,
                                     (unsigned)morphd_sockaddr_len(sa), 1) > 0;
    case MORPHD_UDP:
        return sd_is_socket_sockaddr(fd, SOCK_DGRAM, sa,
                                     (unsigned)morphd_sockaddr_len(sa), -1) > 0;
    case MORPHD_UNIX:
        return sd_is_socket_unix(fd, SOCK_STREAM, 1,
                                 ((const struct sockaddr_un *)sa)->sun_path,
                                 0) > 0;
    }
    return false;
}

int morphd_activation_take(const morphd_endpoint_t *ep)
{
    if (ep->transport != MORPHD_UNIX && morphd_endpoint_port(ep) == 0)
        return -1; /* "any free port" is never a passed one */
    for (int i = 0; i < n_passed; i++)
        if (passed[i] >= 0 && matches(passed[i], ep)) {
            int fd = passed[i];
            passed[i] = -1;
            return fd;
        }
    return -1;
}

void morphd_activation_close_unused(void)
{
    for (int i = 0; i < n_passed; i++) {
        if (passed[i] < 0)
            continue;
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int type = 0;
        socklen_t tlen = sizeof type;
        char text[MORPHD_ENDPOINT_TEXT] = "an unknown address";
        if (getsockname(passed[i], (struct sockaddr *)&ss, &len) == 0 &&
            getsockopt(passed[i], SOL_SOCKET, SO_TYPE, &type, &tlen) == 0)
            morphd_endpoint_format(ss.ss_family == AF_UNIX ? MORPHD_UNIX
                                   : type == SOCK_DGRAM    ? MORPHD_UDP
                                                           : MORPHD_TCP,
                                   (struct sockaddr *)&ss, text, sizeof text);
        morphd_log(MORPH_LOG_WARN, "socket activation: the passed socket %s "
                   "(fd %d) is no configured endpoint; closed", text,
                   passed[i]);
        close(passed[i]);
        passed[i] = -1;
    }
    n_passed = 0;
}

#else

int morphd_activation_init(void) { return 0; }
int morphd_activation_take(const morphd_endpoint_t *ep)
{
    (void)ep;
    return -1;
}
void morphd_activation_close_unused(void) {}

#endif
