/*
 * sandbox.c -- Landlock and seccomp for `sandbox = on` (sandbox.h).
 *
 * Landlock is used through its three system calls (glibc has no wrappers);
 * the constants newer than the build machine's <linux/landlock.h> are
 * spelled out, from the kernel's stable ABI. Each access right is asked for
 * only when the running kernel's Landlock ABI knows it ("best effort"), so
 * one binary works from ABI 1 on.
 */
#include "daemon/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "engine/chain.h"
#include "base/log.h"
#include "base/plugin_path.h"

/* --- Landlock ----------------------------------------------------------------- */

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define LL_NET_CONNECT_TCP (1ULL << 1) /* LANDLOCK_ACCESS_NET_CONNECT_TCP */
#define LL_SCOPE_SIGNAL (1ULL << 1)    /* LANDLOCK_SCOPE_SIGNAL */

/* struct landlock_ruleset_attr as of ABI 6; older kernels are given only
 * the part they know (its size says which). */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_FILE_RIGHTS                                                         \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |              \
     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |              \
     LANDLOCK_ACCESS_FS_IOCTL_DEV)

typedef struct ll_rules {
    int fd;            /* the ruleset */
    uint64_t handled;  /* the file-system rights the kernel enforces */
    char *err;
    size_t err_size;
} ll_rules_t;

static uint64_t fs_rights_of_abi(int abi)
{
    uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0-12 */
    if (abi >= 2)
        r |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        r |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return r;
}

/* Allows `access` beneath `path` (a folder) or on it (a file). A path that
 * does not exist is skipped: nothing there to reach. */
static int allow_path(ll_rules_t *rs, const char *path, uint64_t access)
{
    /* a path that does not exist, or that this user cannot reach anyway
     * (a worker process runs as `user` already), needs no rule */
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == EACCES ? 0
                                                                      : -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        access &= FS_FILE_RIGHTS; /* the rest means nothing on a file */
    struct landlock_path_beneath_attr pb = {
        .allowed_access = access & rs->handled,
        .parent_fd = fd,
    };
    int rc = pb.allowed_access == 0
                 ? 0
                 : (int)syscall(SYS_landlock_add_rule, rs->fd,
                                LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    int saved = errno;
    close(fd);
    if (rc != 0) {
        snprintf(rs->err, rs->err_size, "sandbox: allowing %s: %s", path,
                 strerror(saved));
        return -1;
    }
    return 0;
}

/* Allows `access` in the folder that holds `file`. */
static int allow_folder_of(ll_rules_t *rs, const char *file, uint64_t access)
{
    if (file == NULL || file[0] == '\0')
        return 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0'; /* a file in / */
    else
        *slash = '\0';
    return allow_path(rs, dir, access);
}

static int allow_plugin_dir(const char *folder, void *arg)
{
    return allow_path(arg, folder, FS_READ);
}

/* What morphd itself reads and writes, given its configuration. */
static int add_rules(ll_rules_t *rs, const morphd_config_t *cfg,
                     const char *config_path, const char *plugin_dirs)
{
    /* the libraries a plugin may pull in with it, and the loader's cache;
     * OpenSSL's configuration and random devices; /dev/null, which libuv
     * keeps open for when descriptors run out */
    static const char *const system_read[] = {
        "/usr/lib", "/lib", "/usr/lib64", "/lib64", "/usr/local/lib",
        "/etc/ld.so.cache", "/etc/ssl/openssl.cnf", "/etc/localtime",
        "/dev/urandom", "/dev/random",
    };
    for (size_t i = 0; i < sizeof system_read / sizeof *system_read; i++)
        if (allow_path(rs, system_read[i], FS_READ) != 0)
            return -1;
    if (allow_path(rs, "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE |
                                        LANDLOCK_ACCESS_FS_WRITE_FILE) != 0)
        return -1;

    if (morphd_plugin_path_each(plugin_dirs, allow_plugin_dir, rs) != 0)
        return -1;
    /* the folder, not the file: an editor or a deployment replaces the
     * file by renaming a new one over it */
    if (config_path != NULL && allow_folder_of(rs, config_path, FS_READ) != 0)
        return -1;

    const uint64_t sockets = LANDLOCK_ACCESS_FS_MAKE_SOCK |
                             LANDLOCK_ACCESS_FS_REMOVE_FILE;
    if (cfg->admin_socket != NULL &&
        allow_folder_of(rs, cfg->admin_socket, sockets) != 0)
        return -1;
    if (cfg->access_log != NULL && cfg->access_log[0] == '/' &&
        allow_folder_of(rs, cfg->access_log,
                        LANDLOCK_ACCESS_FS_WRITE_FILE |
                            LANDLOCK_ACCESS_FS_MAKE_REG) != 0)
        return -1;
    for (size_t i = 0; i < cfg->n_services; i++) {
        const morphd_service_conf_t *svc = &cfg->services[i];
        const char *tls[] = {svc->tls_certificate, svc->tls_key,
                             svc->tls_client_ca};
        for (size_t j = 0; j < 3; j++)
            if (tls[j] != NULL && allow_folder_of(rs, tls[j], FS_READ) != 0)
                return -1;
        for (size_t j = 0; j < svc->n_listen; j++) {
            const morphd_endpoint_t *ep = &svc->listen[j];
            if (ep->transport != MORPHD_UNIX)
                continue;
            const struct sockaddr_un *sun = (const void *)&ep->addr;
            if (allow_folder_of(rs, sun->sun_path, sockets) != 0)
                return -1;
        }
    }
    return 0;
}

static int landlock_with(const morphd_config_t *cfg, const char *config_path,
                         const char *plugin_dirs, char *err, size_t err_size);

int morphd_sandbox_landlock(const morphd_config_t *cfg,
                            const char *config_path,
                            const char *default_plugin_dir, char *err,
                            size_t err_size)
{
    char *dirs = morphd_config_plugin_dir(cfg, default_plugin_dir);
    if (dirs == NULL) {
        snprintf(err, err_size, "sandbox: out of memory");
        return -1;
    }
    int rc = landlock_with(cfg, config_path, dirs, err, err_size);
    free(dirs);
    return rc;
}

static int landlock_with(const morphd_config_t *cfg, const char *config_path,
                         const char *plugin_dirs, char *err, size_t err_size)
{
    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
                           LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0) {
        morphd_log(MORPH_LOG_WARN, "sandbox: Landlock is not available "
                   "(%s): plugins can reach every file morphd's user can; "
                   "going on without that layer", errno == EOPNOTSUPP
                   ? "disabled at boot"
                   : errno == ENOSYS ? "this kernel has none"
                   : errno == EPERM ? "refused here, e.g. by a container's "
                                      "system call filter"
                                    : strerror(errno));
        return 0;
    }
    struct ll_ruleset_attr attr = {.handled_access_fs = fs_rights_of_abi(abi)};
    size_t attr_size = offsetof(struct ll_ruleset_attr, handled_access_net);
    if (abi >= 4) {
        attr.handled_access_net = LL_NET_CONNECT_TCP; /* none allowed */
        attr_size = offsetof(struct ll_ruleset_attr, scoped);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_SIGNAL; /* no signals to other processes */
        attr_size = sizeof attr;
    }
    ll_rules_t rs = {.handled = attr.handled_access_fs, .err = err,
                     .err_size = err_size};
    err[0] = '\0';
    rs.fd = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs.fd < 0) {
        snprintf(err, err_size, "sandbox: Landlock ruleset: %s",
                 strerror(errno));
        return -1;
    }
    int rc = add_rules(&rs, cfg, config_path, plugin_dirs);
    if (rc != 0 && err[0] == '\0')
        snprintf(err, err_size, "sandbox: Landlock rules: %s", strerror(errno));
    /* Landlock asks for no_new_privs (or CAP_SYS_ADMIN): nothing morphd
     * runs may gain privileges through exec anyway */
    if (rc == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, err_size, "sandbox: no_new_privs: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0 && syscall(SYS_landlock_restrict_self, rs.fd, 0) != 0) {
        snprintf(err, err_size, "sandbox: Landlock: %s", strerror(errno));
        rc = -1;
    }
    close(rs.fd);
    if (rc == 0)
        morphd_log(MORPH_LOG_INFO, "sandbox: Landlock (ABI %d) applied: "
                   "files beyond the plugin, config, TLS and log folders are "
                   "out of reach%s", abi,
                   abi >= 4 ? ", and outbound TCP connections refused" : "");
    return rc;
}

/* --- seccomp -------------------------------------------------------------------- */

/* What morphd, libuv, OpenSSL, ICU, libmicrohttpd, glibc and the plugins'
 * ordinary work need. Names unknown to this architecture are skipped. */
static const char *const allowed[] = {
    /* memory */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "membarrier",
    /* files and descriptors (Landlock says which files) */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
    "pwritev", "preadv2", "pwritev2", "lseek", "close", "close_range",
    "open", "openat", "openat2", "creat", "fstat", "stat", "lstat",
    "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents64", "getcwd", "fcntl",
    "dup", "dup2", "dup3", "pipe", "pipe2", "ioctl", "fsync", "fdatasync",
    "unlink", "unlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown",
    "lchown", "fchownat", "umask", "flock", "sendfile",
    /* the loader's sealed copy of a plugin file (plugin_loader.c) */
    "memfd_create",
    /* sockets (socket() itself: below, by family) */
    "socketpair", "bind", "listen", "accept", "accept4", "connect",
    "getsockname", "getpeername", "getsockopt", "setsockopt", "sendto",
    "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
    /* waiting */
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
    "epoll_pwait2", "eventfd", "eventfd2", "poll", "ppoll", "select",
    "pselect6", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    "timer_create", "timer_settime", "timer_gettime", "timer_delete",
    "timer_getoverrun",
    "futex", "futex_waitv", "nanosleep", "clock_nanosleep", "sched_yield",
    "restart_syscall",
    /* time, randomness, identity */
    "clock_gettime", "clock_getres", "gettimeofday", "time", "getrandom",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
    "getresuid", "getresgid", "getgroups", "getrlimit", "prlimit64",
    "getrusage", "sysinfo", "uname", "sched_getaffinity", "getpriority",
    /* threads and signals (clone: below, threads only) */
    "set_robust_list", "get_robust_list", "rseq", "set_tid_address",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    "rt_sigtimedwait", "exit", "exit_group", "prctl",
    "arch_prctl",
};

static const char *syscall_names[512]; /* for the SIGSYS handler */
static unsigned char denied_logged[512 / 8];

static size_t put(char *buf, size_t n, size_t size, const char *s)
{
    while (*s && n + 1 < size)
        buf[n++] = *s++;
    return n;
}

/* A system call outside the allow-list: it fails with EPERM, and the
 * first time for each one it is logged, with the plugin this thread was
 * running (async-signal-safe: a write to stderr, which is morphd's log or
 * goes to the journal). */
static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    int nr = info->si_syscall;
#if defined(__x86_64__)
    ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
    ((ucontext_t *)ctx)->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#endif
    if (nr >= 0 && nr < 512) {
        unsigned char bit = (unsigned char)(1u << (nr % 8));
        if (__atomic_fetch_or(&denied_logged[nr / 8], bit, __ATOMIC_RELAXED) &
            bit)
            return;
    }
    char msg[400], num[12];
    int k = (int)sizeof num - 1;
    num[k] = '\0';
    unsigned v = nr < 0 ? 0u : (unsigned)nr;
    do
        num[--k] = (char)('0' + v % 10);
    while ((v /= 10) != 0 && k > 0);
    const char *name = nr >= 0 && nr < 512 && syscall_names[nr] != NULL
                           ? syscall_names[nr] : "?";
    size_t n = put(msg, 0, sizeof msg, "morphd: sandbox: denied system call ");
    n = put(msg, n, sizeof msg, name);
    n = put(msg, n, sizeof msg, " (");
    n = put(msg, n, sizeof msg, num + k);
    n = put(msg, n, sizeof msg, ")");
    const morphd_stage_t *st = morphd_running_stage;
    if (st != NULL) {
        n = put(msg, n, sizeof msg, " in plugin ");
        n = put(msg, n, sizeof msg, st->plugin->name);
        n = put(msg, n, sizeof msg, " of service ");
        n = put(msg, n, sizeof msg, st->chain->service);
    }
    n = put(msg, n, sizeof msg, ": it failed with EPERM (logged once)\n");
    ssize_t w = write(STDERR_FILENO, msg, n);
    (void)w;
}

/* A comparison of the first argument (SCMP_A0 leaves datum_b out, which
 * clang's -Wmissing-field-initializers refuses). */
static struct scmp_arg_cmp arg0(enum scmp_compare op, scmp_datum_t a,
                                scmp_datum_t b)
{
    struct scmp_arg_cmp c = {.arg = 0, .op = op, .datum_a = a, .datum_b = b};
    return c;
}

int morphd_sandbox_seccomp(char *err, size_t err_size)
{
#if defined(__x86_64__) || defined(__aarch64__)
    const uint32_t deny = SCMP_ACT_TRAP; /* EPERM, logged by on_sigsys */
#else
    const uint32_t deny = SCMP_ACT_ERRNO(EPERM);
#endif
    /* libseccomp probes the kernel: below level 2 it cannot filter every
     * thread at once (TSYNC), or the kernel has no filters at all */
    unsigned api = seccomp_api_get();
    if (api < 2) {
        morphd_log(MORPH_LOG_WARN, "sandbox: seccomp filters are not "
                   "available (libseccomp API level %u): plugins may run any "
                   "system call; going on without that layer", api);
        return 0;
    }
    scmp_filter_ctx ctx = seccomp_init(deny);
    if (ctx == NULL) {
        snprintf(err, err_size, "sandbox: seccomp: out of memory");
        return -1;
    }
    /* every thread at once; the kernel's own error when loading fails */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
    for (size_t i = 0; rc == 0 && i < sizeof allowed / sizeof *allowed; i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);
        if (nr != __NR_SCMP_ERROR && nr >= 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    /* sockets of the families morphd serves (no raw, packet or netlink) */
    const int families[] = {AF_UNIX, AF_INET, AF_INET6};
    for (size_t i = 0; rc == 0 && i < 3; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                              arg0(SCMP_CMP_EQ, (scmp_datum_t)families[i], 0));
    /* threads, not processes: clone only with CLONE_THREAD; clone3's
     * flags are behind a pointer a filter cannot read, so it reports
     * ENOSYS, on which glibc falls back to clone */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              arg0(SCMP_CMP_MASKED_EQ, CLONE_THREAD,
                                   CLONE_THREAD));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* signals to this process only (raise and abort use tgkill) */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
                              arg0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              arg0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
    if (rc != 0) {
        seccomp_release(ctx);
        snprintf(err, err_size, "sandbox: seccomp rules: %s", strerror(-rc));
        return -1;
    }

    for (int nr = 0; nr < 512; nr++)
        if (syscall_names[nr] == NULL)
            syscall_names[nr] =
                seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSYS, &sa, NULL);

    rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc == -ENOSYS || rc == -EINVAL || rc == -EOPNOTSUPP) {
        morphd_log(MORPH_LOG_WARN, "sandbox: seccomp filters are not "
                   "available (%s): plugins may run any system call; going on "
                   "without that layer", strerror(-rc));
        return 0;
    }
    if (rc != 0) {
        snprintf(err, err_size, "sandbox: seccomp: %s", strerror(-rc));
        return -1;
    }
    morphd_log(MORPH_LOG_INFO, "sandbox: seccomp filter loaded on every "
               "thread: exec, fork, ptrace and other system calls outside "
               "the allow-list fail with EPERM");
    return 0;
}
