/*
 * notify.c -- sd_notify(3)'s protocol for notify.h, spoken directly: one
 * datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). systemd
 * documents it as a stable interface for daemons that do not link
 * libsystemd (sd_notify(3), "Notes"); morphd does not, because that
 * library brings six more (lzma, zstd, lz4, gcrypt, gpg-error, cap) into
 * every start, about 0.7 ms of it (docs/benchmarks.md), for four calls.
 */
#include "daemon/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return; /* not run by systemd (or not Type=notify) */
    size_t n = strlen(path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path)
        return; /* systemd names one of these two kinds only */
    memcpy(sa.sun_path, path, n);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ssize_t w;
    /* never waits: a reader whose queue is full (systemd reads at once;
     * a test harness might not) costs that one message, not serving */
    do
        w = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
                   (const struct sockaddr *)&sa, len);
    while (w < 0 && errno == EINTR);
    close(fd); /* a failed notification changes nothing for serving */
}

void morphd_notify_ready(morphd_ready_kind_t kind, const char *listening)
{
    if (getenv("NOTIFY_SOCKET") == NULL)
        return;
    const char *status = "serving";
    if (kind == MORPHD_READY_RELOADED)
        status = "serving (reloaded)\nX_MORPHD_RELOAD=ok";
    else if (kind == MORPHD_READY_RELOAD_FAILED)
        status = "serving the previous configuration: the reload failed\n"
                 "X_MORPHD_RELOAD=failed";
    size_t n = strlen(listening ? listening : "") + 256;
    char *msg = malloc(n);
    if (msg == NULL) {
        notify("READY=1"); /* what matters most, without the rest */
        return;
    }
    snprintf(msg, n, "READY=1\nSTATUS=%s\nX_MORPHD_LISTENING=%s", status,
             listening ? listening : "");
    notify(msg);
    free(msg);
}

void morphd_notify_listening_add(char *buf, size_t size, const char *service,
                                 const char *endpoint)
{
    size_t len = strnlen(buf, size);
    if (len + 1 < size)
        snprintf(buf + len, size - len, "%s%s=%s", len ? " " : "", service,
                 endpoint);
}
void morphd_notify_reloading(void) { notify("RELOADING=1"); }
void morphd_notify_stopping(void) { notify("STOPPING=1"); }
