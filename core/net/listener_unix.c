/*
 * listener_unix.c -- the socket file of a unix:// endpoint
 * (listener_unix.h). The listening itself is listener_stream.c's, as for
 * tcp://.
 */
#include "net/listener_unix.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/safe_path.h"


/* Whether a process listens on the socket file at `addr`. */
static int probe(const struct sockaddr_un *addr, char *why, size_t why_size)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_size, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
    int e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
        return 1; /* listening (EAGAIN: its backlog is full) */
    if (e == ECONNREFUSED)
        return 0; /* stale */
    snprintf(why, why_size, "%s", strerror(e));
    return -1;
}

int morphd_unix_listen(const morphd_endpoint_t *ep, unsigned mode,
                       const char *group, int backlog,
                       morphd_unix_file_t *file, char *err, size_t err_size)
{
    const struct sockaddr_un *addr = (const struct sockaddr_un *)&ep->addr;
    const char *path = addr->sun_path;
    memset(file, 0, sizeof *file);
    char why[768];

    long gid = -1;
    if (group != NULL && (gid = morphd_unix_group_id(group)) < 0) {
        snprintf(err, err_size, "%s: no group '%s'", ep->text, group);
        return -1;
    }
    if (morphd_path_check_folder(path, why, sizeof why) != 0) {
        snprintf(err, err_size, "%s: %s", ep->text, why);
        return -1;
    }
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            snprintf(err, err_size, "%s: %s exists and is not a socket; "
                     "not replacing it", ep->text, path);
            return -1;
        }
        int listening = probe(addr, why, sizeof why);
        if (listening != 0) {
            snprintf(err, err_size, "%s: %s", ep->text, listening > 0
                     ? "in use: another process listens on it" : why);
            return -1;
        }
        if (unlink(path) != 0 && errno != ENOENT) {
            snprintf(err, err_size, "%s: cannot remove the stale socket: %s",
                     ep->text, strerror(errno));
            return -1;
        }
        morphd_log(MORPH_LOG_INFO, "%s: replaced a stale socket file "
                   "(nobody listened on it)", ep->text);
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_size, "%s: socket: %s", ep->text, strerror(errno));
        return -1;
    }
    /* mode and group are set before the name appears, and no step acts
     * on the name after bind(): a link renamed over it is never followed */
    if (morphd_socket_file_bind(fd, path, mode, (uid_t)-1,
                                gid >= 0 ? (gid_t)gid : (gid_t)-1, &sb, why,
                                sizeof why) != 0) {
        snprintf(err, err_size, "%s: cannot bind: %s", ep->text, why);
        close(fd);
        return -1;
    }
    /* the file now exists, unconnectable until listen() */
    file->made = true;
    snprintf(file->path, sizeof file->path, "%s", path);
    file->dev = sb.st_dev;
    file->ino = sb.st_ino;
    const char *step = NULL;
    if (listen(fd, backlog) != 0)
        step = "listen";
    if (step != NULL) {
        snprintf(err, err_size, "%s: %s: %s", ep->text, step, strerror(errno));
        close(fd);
        morphd_unix_remove(file);
        return -1;
    }
    return fd;
}

void morphd_unix_remove(morphd_unix_file_t *file)
{
    if (!file->made)
        return;
    file->made = false;
    struct stat sb;
    if (lstat(file->path, &sb) != 0)
        return; /* gone already */
    if (sb.st_dev != file->dev || sb.st_ino != file->ino) {
        morphd_log(MORPH_LOG_INFO, "unix://%s: not removed: another file "
                   "has taken its place", file->path);
        return;
    }
    if (unlink(file->path) != 0)
        morphd_log(MORPH_LOG_WARN, "unix://%s: cannot remove the socket "
                   "file: %s", file->path, strerror(errno));
}
