/* What a hostile plugin would try, one attempt per message, each answered
 * "ACTION: ok" or "ACTION: ERRNO-NAME", for the sandbox tests:
 *   open PATH        read a file
 *   write PATH       create a file (removed again when that worked)
 *   fork             make a process (it exits at once)
 *   exec             execve a program that does not exist: ENOENT when
 *                    exec is allowed, EPERM when the sandbox refuses it
 *   connect PORT     a TCP connection to 127.0.0.1:PORT
 *   netlink          a netlink socket
 *   ptrace           PTRACE_PEEKDATA on morphd's parent (never attached:
 *                    ESRCH when allowed, EPERM when refused)
 *   kill             signal 0 to process 1
 * Anything else is echoed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <morph/plugin.h>

static int attempt(const char *what, const char *arg)
{
    if (strcmp(what, "open") == 0) {
        int fd = open(arg, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -1 : close(fd);
    }
    if (strcmp(what, "write") == 0) {
        int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        close(fd);
        return unlink(arg);
    }
    if (strcmp(what, "fork") == 0) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        return pid < 0 ? -1 : (waitpid(pid, NULL, 0) < 0 ? -1 : 0);
    }
    if (strcmp(what, "exec") == 0) {
        char *const argv[] = {"morph-no-such-program", NULL};
        return execve("/morph-no-such-program", argv, environ);
    }
    if (strcmp(what, "connect") == 0) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)atoi(arg))};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
        int saved = errno;
        close(fd);
        errno = saved;
        return rc;
    }
    if (strcmp(what, "netlink") == 0) {
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        return fd < 0 ? -1 : close(fd);
    }
    if (strcmp(what, "ptrace") == 0) {
        errno = 0;
        long v = ptrace(PTRACE_PEEKDATA, getppid(), NULL, NULL);
        return v == -1 && errno != 0 ? -1 : 0;
    }
    if (strcmp(what, "kill") == 0)
        return kill(1, 0);
    errno = EINVAL;
    return -1;
}

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    char line[512];
    size_t n = m->len < sizeof line - 1 ? m->len : sizeof line - 1;
    memcpy(line, m->data, n);
    line[n] = '\0';
    char *arg = strchr(line, ' ');
    if (arg != NULL)
        *arg++ = '\0';
    static const char *const known[] = {"open", "write", "fork", "exec",
                                        "connect", "netlink", "ptrace", "kill"};
    int is_known = 0;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        is_known |= strcmp(line, known[k]) == 0;
    if (!is_known)
        return morph_out_append(out, m->data, m->len);
    int rc = attempt(line, arg ? arg : "");
    const char *result = rc == 0 ? "ok" : strerrorname_np(errno);
    char reply[600];
    int len = snprintf(reply, sizeof reply, "%s: %s", line,
                       result ? result : "?");
    return morph_out_append(out, reply, (size_t)len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "escape",
    .transform = t,
};
