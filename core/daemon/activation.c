/*
 * activation.c -- systemd socket activation (activation.h). The protocol
 * is sd_listen_fds(3)'s, read directly, as notify.c speaks sd_notify's
 * (and for the same reason: not to load libsystemd at every start): the
 * sockets are descriptors 3, 4, ... $LISTEN_FDS, meant for the process
 * whose pid is $LISTEN_PID. A socket is matched to an endpoint by what the
 * kernel says of it (type, listening, address), as sd_is_socket_*() do.
 */
#include "daemon/activation.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <netinet/in.h>

#include "base/log.h"

#define LISTEN_FDS_START 3
#define MAX_PASSED 256

static int passed[MAX_PASSED]; /* -1: taken or closed */
static int n_passed;

/* A decimal number in all of `text` (no sign, no space), else -1. */
static long whole_number(const char *text)
{
    if (text == NULL || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    char *end;
    long v = strtol(text, &end, 10);
    return errno != 0 || *end != '\0' ? -1 : v;
}

/* sd_listen_fds(1): how many sockets were passed to this process (0: none,
 * or meant for another), each made close-on-exec; -errno when the
 * variables are malformed. The variables are unset either way. */
static int listen_fds(void)
{
    const char *pid_text = getenv("LISTEN_PID");
    const char *fds_text = getenv("LISTEN_FDS");
    int n = 0;
    if (pid_text != NULL && fds_text != NULL) { /* one alone: nothing passed */
        long pid = whole_number(pid_text), fds = whole_number(fds_text);
        if (pid <= 0)
            n = -EINVAL;
        else if (pid != (long)getpid())
            n = 0; /* inherited from the parent they were meant for */
        else if (fds < 0 || fds > INT_MAX - LISTEN_FDS_START)
            n = -EINVAL;
        else
            n = (int)fds;
    }
    for (int fd = LISTEN_FDS_START; n > 0 && fd < LISTEN_FDS_START + n; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
            n = -errno;
            break;
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n;
}

int morphd_activation_init(void)
{
    int n = listen_fds();
    if (n < 0) {
        morphd_log(MORPH_LOG_WARN, "socket activation: LISTEN_FDS is not "
                   "usable (%d); binding every endpoint", n);
        return 0;
    }
    if (n > MAX_PASSED) {
        morphd_log(MORPH_LOG_WARN, "socket activation: %d sockets passed; "
                   "using the first %d", n, MAX_PASSED);
        for (int i = MAX_PASSED; i < n; i++)
            close(LISTEN_FDS_START + i);
        n = MAX_PASSED;
    }
    for (int i = 0; i < n; i++)
        passed[i] = LISTEN_FDS_START + i;
    n_passed = n;
    if (n > 0)
        morphd_log(MORPH_LOG_INFO, "socket activation: %d socket%s passed", n,
                   n == 1 ? "" : "s");
    return n;
}

/* Whether socket `fd` is of `type` and, for a stream, listening. */
static bool is_socket(int fd, int type, bool stream)
{
    struct stat st;
    int t = 0, listening = 0;
    socklen_t n = sizeof t, m = sizeof listening;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &n) != 0 || t != type)
        return false;
    if (!stream)
        return true;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &m) == 0 &&
           listening != 0;
}

/* Whether the address `fd` is bound to is `want`: family, address and
 * port for IP (an IPv6 socket's flow and scope aside), the path for unix. */
static bool bound_to(int fd, const struct sockaddr *want)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        ss.ss_family != want->sa_family)
        return false;
    switch (want->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const void *)&ss, *b = (const void *)want;
        return a->sin_port == b->sin_port &&
               a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const void *)&ss, *b = (const void *)want;
        return a->sin6_port == b->sin6_port &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
    }
    case AF_UNIX: {
        const struct sockaddr_un *a = (const void *)&ss, *b = (const void *)want;
        size_t path = len > offsetof(struct sockaddr_un, sun_path)
                          ? len - offsetof(struct sockaddr_un, sun_path)
                          : 0;
        size_t want_len = strnlen(b->sun_path, sizeof b->sun_path);
        /* the kernel may count the path's NUL or not */
        if (path > 0 && a->sun_path[path - 1] == '\0')
            path--;
        return path == want_len && memcmp(a->sun_path, b->sun_path, path) == 0;
    }
    }
    return false;
}

static bool matches(int fd, const morphd_endpoint_t *ep)
{
    const struct sockaddr *sa = (const struct sockaddr *)&ep->addr;
    switch (ep->transport) {
    case MORPHD_TCP:
    case MORPHD_TLS:
    case MORPHD_HTTP:
    case MORPHD_HTTPS:
    case MORPHD_UNIX:
        return is_socket(fd, SOCK_STREAM, true) && bound_to(fd, sa);
    case MORPHD_UDP:
        return is_socket(fd, SOCK_DGRAM, false) && bound_to(fd, sa);
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

