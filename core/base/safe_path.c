/*
 * safe_path.c -- see safe_path.h. The attack these steps close: a user who
 * can write a folder where root makes a socket or opens a log renames a
 * link over the name between root's bind() (or open) and its chown(),
 * chmod() or write, and root then changes or fills the file the link
 * names. Every step here acts on a descriptor, or on a name inside a
 * folder that nobody else can write.
 */
#include "base/safe_path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uid_t trusted_user; /* 0: root alone */

int morphd_path_check_writers(const char *path, uid_t allowed,
                              int sticky_from, char *why, size_t why_size)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(why, why_size, "path too long");
        return -1;
    }
    for (int level = 0;; level++) {
        struct stat sb;
        const char *what = buf[0] ? buf : "/";
        if (stat(what, &sb) != 0) {
            snprintf(why, why_size, "%.300s: %s", what, strerror(errno));
            return -1;
        }
        bool sticky_ok = S_ISDIR(sb.st_mode) && (sb.st_mode & S_ISVTX) &&
                         level >= sticky_from;
        if (sb.st_uid != 0 && sb.st_uid != allowed) {
            snprintf(why, why_size, "%.300s is owned by uid %u, not by root or "
                     "the user morphd runs as (uid %u)", what,
                     (unsigned)sb.st_uid, (unsigned)allowed);
            return -1;
        }
        if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_ok) {
            snprintf(why, why_size, "%.300s is writable by %s (mode %03o%s); "
                     "run chmod go-w on it", what,
                     (sb.st_mode & S_IWOTH) ? "everyone" : "its group",
                     (unsigned)(sb.st_mode & 0777),
                     (sb.st_mode & S_ISVTX) ? ", sticky: others can still add "
                                              "files to it" : "");
            return -1;
        }
        if (buf[0] == '\0')
            return 0; /* "/" was the last one */
        char *slash = strrchr(buf, '/');
        if (slash == NULL)
            return 0; /* a relative path: checked up to its first part */
        *slash = '\0';
    }
}

/* The folder part of `path` into `dir` ("." for a bare name), and where
 * its last part starts. */
static const char *split(const char *path, char *dir, size_t dir_size)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, dir_size, ".");
        return path;
    }
    if (slash == path)
        snprintf(dir, dir_size, "/");
    else
        snprintf(dir, dir_size, "%.*s", (int)(slash - path), path);
    return slash + 1;
}

void morphd_path_trust_user(uid_t uid) { trusted_user = uid; }

int morphd_path_check_folder(const char *path, char *why, size_t why_size)
{
    if (geteuid() != 0)
        return 0; /* what it does, it can only do to its own files */
    char dir[4096], reason[512];
    split(path, dir, sizeof dir);
    struct stat sb;
    if (stat(dir, &sb) != 0 && errno == ENOENT)
        return 0; /* nothing to make there yet: the open or bind says so */
    /* a sticky folder (/tmp) is fine: nobody else can rename or remove
     * what morphd puts there, and the steps of this file follow no name
     * that someone else made */
    if (morphd_path_check_writers(dir, trusted_user, 0, reason,
                                  sizeof reason) != 0) {
        snprintf(why, why_size, "%s: refused while morphd runs as root: %s "
                 "(someone who can write the folder could plant a link for "
                 "root to follow; use a folder only root or the service user "
                 "can write, such as /run/morph, or a sticky one)", path, reason);
        return -1;
    }
    return 0;
}

/* Makes a private folder in `parent`: a random name, mode 0700, opened and
 * checked to be the one made. Its name goes into `name`. */
static int make_private_folder(int parent, char *name, size_t name_size)
{
    for (int tries = 0; tries < 16; tries++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(name, name_size, ".morphd-%d-%lx", (int)getpid(),
                 (unsigned long)(ts.tv_nsec ^ ((unsigned long)rand() << 8)));
        if (mkdirat(parent, name, 0700) != 0) {
            if (errno == EEXIST)
                continue;
            return -1;
        }
        int fd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
                                          O_CLOEXEC);
        struct stat sb;
        if (fd >= 0 && fstat(fd, &sb) == 0 && sb.st_uid == geteuid() &&
            (sb.st_mode & 0777) == 0700)
            return fd;
        /* renamed away and replaced in the meantime: not ours */
        if (fd >= 0)
            close(fd);
        errno = EEXIST;
        return -1;
    }
    errno = EEXIST;
    return -1;
}

static int bind_at(int fd, const char *path, int *err)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        *err = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int rc = bind(fd, (const struct sockaddr *)&sun, sizeof sun);
    *err = rc == 0 ? 0 : errno;
    return rc;
}

int morphd_socket_file_bind(int fd, const char *path, mode_t mode, uid_t uid,
                            gid_t gid, struct stat *made, char *why,
                            size_t why_size)
{
    if (geteuid() != 0) {
        /* not root: whatever a planted link made it do, it could do with
         * its own rights anyway (and a sandboxed process may not make the
         * private folder) -- the mode still comes from the umask, never
         * from a chmod by name */
        int e = 0;
        mode_t old = umask(0777 & ~mode);
        int rc = bind_at(fd, path, &e);
        umask(old);
        bool bound = rc == 0;
        if (rc == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) &&
            fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
            rc = -1, e = errno;
        if (rc == 0 && fstatat(AT_FDCWD, path, made, AT_SYMLINK_NOFOLLOW) != 0)
            rc = -1, e = errno;
        if (rc != 0) {
            if (bound)
                unlink(path); /* ours: bound, then a later step failed */
            snprintf(why, why_size, "%s", e == EADDRINUSE
                     ? "in use (the file appeared meanwhile)" : strerror(e));
            return -1;
        }
        return 0;
    }
    char dir[4096], tmp[64], inner[4096 + 128];
    const char *base = split(path, dir, sizeof dir);
    int parent = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0) {
        snprintf(why, why_size, "%s: %s", dir, strerror(errno));
        return -1;
    }
    int priv = make_private_folder(parent, tmp, sizeof tmp);
    if (priv < 0) {
        snprintf(why, why_size, "cannot make a private folder in %s: %s", dir,
                 strerror(errno));
        close(parent);
        return -1;
    }
    const char *step = "bind";
    int e = 0;
    /* bind() takes a name: through the private folder's descriptor, so that
     * nobody can swap the folder under it; without /proc, by its name
     * (were that swapped, the steps below find no socket in the folder and
     * fail rather than act on someone else's file) */
    snprintf(inner, sizeof inner, "/proc/self/fd/%d/s", priv);
    mode_t old = umask(0777 & ~mode);
    int rc = bind_at(fd, inner, &e);
    if (rc != 0 && e == ENOENT) {
        snprintf(inner, sizeof inner, "%s/%s/s", dir, tmp);
        rc = bind_at(fd, inner, &e);
    }
    umask(old);
    if (rc == 0) {
        step = "chmod";
        /* fchmodat follows a link; nobody but us can put one in here */
        if (fchmodat(priv, "s", mode, 0) != 0)
            rc = -1, e = errno;
    }
    if (rc == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1)) {
        step = "chown";
        if (fchownat(priv, "s", uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
            rc = -1, e = errno;
    }
    if (rc == 0) {
        step = "stat";
        if (fstatat(priv, "s", made, AT_SYMLINK_NOFOLLOW) != 0)
            rc = -1, e = errno;
        else if (!S_ISSOCK(made->st_mode))
            rc = -1, e = EEXIST;
    }
    if (rc == 0) {
        step = "rename into place";
        /* never over a name: whatever appeared there since is left alone */
        if (renameat2(priv, "s", parent, base, RENAME_NOREPLACE) != 0) {
            e = errno;
            if (e == EINVAL && linkat(priv, "s", parent, base, 0) == 0)
                e = 0; /* a file system without RENAME_NOREPLACE */
            else
                rc = -1;
        }
    }
    unlinkat(priv, "s", 0);
    unlinkat(parent, tmp, AT_REMOVEDIR);
    close(priv);
    close(parent);
    if (rc != 0) {
        snprintf(why, why_size, "%s: %s", step,
                 e == EEXIST ? "a file appeared at the name meanwhile"
                             : strerror(e));
        return -1;
    }
    return 0;
}

int morphd_file_open_append(const char *path, char *why, size_t why_size)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK |
                            O_NOFOLLOW | O_NOCTTY, 0640);
    if (fd < 0) {
        int e = errno;
        snprintf(why, why_size, "%s", e == ELOOP ? "it is a symbolic link "
                 "(not followed: name the file itself)" : strerror(e));
        errno = e;
        return -1;
    }
    struct stat sb;
    const char *bad = NULL;
    if (fstat(fd, &sb) != 0)
        bad = strerror(errno);
    else if (S_ISREG(sb.st_mode) && sb.st_nlink > 1)
        bad = "the file has other names (hard links); refusing to write "
              "into it";
    else if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode) &&
             !S_ISCHR(sb.st_mode))
        bad = "not a regular file, a FIFO or a character device";
    else if (geteuid() == 0 && S_ISREG(sb.st_mode) && sb.st_uid != 0 &&
             sb.st_uid != trusted_user)
        bad = "the file belongs to someone other than root or the service "
              "user; refusing to write into it as root";
    if (bad != NULL) {
        snprintf(why, why_size, "%s", bad);
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}
