/*
 * harness.c -- the test helpers of harness.h.
 */
#include "harness.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --- in-process chains ---------------------------------------------------- */

static void **test_states(morphd_conn_t *c) { return c->transport; }

static const morphd_conn_ops_t test_conn_ops = {
    .transport = "test",
    .states = test_states,
};

char *test_chain_try(test_chain_t *tc, const char *ini_text)
{
    memset(tc, 0, sizeof *tc);
    morphd_log_set_level(MORPH_LOG_WARN); /* no "plugin loaded" noise */
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    morphd_config_t cfg;
    char *first = NULL;
    int rc = morphd_config_load_string(ini_text, "test.ini", &cfg, &errs);
    if (rc == 0)
        rc = morphd_server_init(&tc->server, &cfg, PLUGIN_DIR, &errs);
    else
        morphd_config_free(&cfg);
    if (rc != 0) {
        first = strdup(errs.n > 0 ? errs.msgs[0] : "(no message)");
        morphd_server_free(&tc->server);
        morphd_errors_free(&errs);
        return first;
    }
    morphd_errors_free(&errs);
    tc->chain = tc->server.services[0]->chain;
    tc->conn.ops = &test_conn_ops;
    tc->conn.transport = tc->states;
    tc->conn.states = tc->chain->keeps_state ? tc->states : NULL;
    if (tc->chain->opens_conns) {
        char err[256];
        ck_assert_msg(morphd_chain_conn_open(tc->chain, &tc->conn, tc->states, err,
                                             sizeof err) == 0, "%s", err);
    }
    tc->open = tc->chain->keeps_state;
    return NULL;
}

void test_chain_init(test_chain_t *tc, const char *transform,
                     const char *extra_lines)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n[service t]\n"
             "listen = tcp://127.0.0.1:0\ntransform = %s\nframing = line\n%s",
             PLUGIN_DIR, transform, extra_lines ? extra_lines : "");
    char *err = test_chain_try(tc, ini);
    ck_assert_msg(err == NULL, "chain '%s': %s", transform, err);
}

char *test_chain_run(test_chain_t *tc, const void *in, size_t n,
                     uint32_t flags, size_t *len)
{
    morphd_result_t r;
    tc->out.len = 0;
    morphd_chain_run(tc->chain, &tc->conn, 0, in, n, flags, &morphd_frame_none,
                     &tc->out, &r);
    ck_assert_msg(r.status == MORPHD_RUN_DONE, "chain failed: %s",
                  r.status == MORPHD_RUN_FAILED ? r.error : "(not done)");
    char *copy = malloc(r.len + 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, r.data, r.len);
    copy[r.len] = '\0';
    if (len)
        *len = r.len;
    return copy;
}

int test_chain_status(test_chain_t *tc, const void *in, size_t n,
                      uint32_t flags, char *err, size_t err_size)
{
    morphd_result_t r;
    tc->out.len = 0;
    morphd_chain_run(tc->chain, &tc->conn, 0, in, n, flags, &morphd_frame_none,
                     &tc->out, &r);
    snprintf(err, err_size, "%s", r.status == MORPHD_RUN_FAILED ? r.error : "");
    return r.status;
}

char *test_chain_str(test_chain_t *tc, const char *in)
{
    return test_chain_run(tc, in, strlen(in), 0, NULL);
}

void test_chain_free(test_chain_t *tc)
{
    if (tc->open)
        morphd_chain_conn_close(tc->chain, tc->states);
    morphd_buf_free(&tc->out);
    morphd_server_free(&tc->server);
}

/* --- files ----------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

char *write_temp_file(const char *text)
{
    char *path = strdup("/tmp/morph-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, text);
    return path;
}

char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (len + 2 > cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
        }
        buf[len++] = (char)c;
    }
    fclose(f);
    if (buf == NULL)
        return strdup("");
    buf[len] = '\0';
    return buf;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- a morphd process ------------------------------------------------------ */

/* Reads every notification morphd has sent so far (none waits). */
static void drain_notes(morphd_proc_t *p)
{
    char msg[16384];
    ssize_t n;
    while (p->notify_fd >= 0 &&
           (n = recv(p->notify_fd, msg, sizeof msg - 1, MSG_DONTWAIT)) >= 0) {
        msg[n] = '\0';
        size_t keep = (size_t)n + 3 < sizeof p->notes ? (size_t)n : sizeof p->notes - 3;
        if (p->notes_len + keep + 3 > sizeof p->notes) { /* the oldest go */
            size_t drop = p->notes_len + keep + 3 - sizeof p->notes;
            memmove(p->notes, p->notes + drop, p->notes_len - drop);
            p->notes_len -= drop;
        }
        memcpy(p->notes + p->notes_len, msg, keep);
        p->notes_len += keep;
        memcpy(p->notes + p->notes_len, "\n\n", 3); /* and a NUL */
        p->notes_len += 2;
        if (strstr(msg, "READY=1") == NULL)
            continue;
        p->ready++;
        p->reloads_ok += strstr(msg, "X_MORPHD_RELOAD=ok") != NULL;
        p->reloads_failed += strstr(msg, "X_MORPHD_RELOAD=failed") != NULL;
        const char *l = strstr(msg, "X_MORPHD_LISTENING=");
        snprintf(p->listening, sizeof p->listening, "%s",
                 l ? l + strlen("X_MORPHD_LISTENING=") : "");
        char *end = strchr(p->listening, '\n');
        if (end != NULL)
            *end = '\0';
    }
}

/* Waits up to ms for a notification (or morphd's end, which it notices). */
static void await_note(morphd_proc_t *p, long ms)
{
    struct pollfd pf = {p->notify_fd, POLLIN, 0};
    poll(&pf, 1, (int)(ms < 20 ? ms : 20)); /* and look at the pid between */
    drain_notes(p);
}

/* How long the harness waits for morphd: longer under a tool (valgrind). */
static long patience_ms(long ms)
{
    return getenv("MORPH_TEST_WRAPPER") ? ms * 6 : ms;
}

int morphd_proc_start_args(morphd_proc_t *p, const char *ini_text,
                           const char *const *args)
{
    memset(p, 0, sizeof *p);
    strcpy(p->dir, "/tmp/morphd-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(p->dir));
    snprintf(p->ini, sizeof p->ini, "%s/morphd.ini", p->dir);
    snprintf(p->logfile, sizeof p->logfile, "%s/morphd.log", p->dir);
    snprintf(p->notify_path, sizeof p->notify_path, "%s/notify", p->dir);
    write_file(p->ini, ini_text);
    p->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(p->notify_fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p->notify_path);
    ck_assert_int_eq(bind(p->notify_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int big = 1 << 20; /* a READY=1 with many endpoints fits */
    setsockopt(p->notify_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    /* a morphd that drops root (user = ...) must reach it, as it reaches
     * systemd's /run/systemd/notify */
    chmod(p->dir, 0711);
    chmod(p->notify_path, 0666);

    /* MORPH_TEST_WRAPPER runs morphd under a tool, e.g. valgrind. */
    const char *argv[48];
    int argc = 0;
    char *wrapper = getenv("MORPH_TEST_WRAPPER")
                        ? strdup(getenv("MORPH_TEST_WRAPPER"))
                        : NULL;
    char *save = NULL;
    for (char *w = wrapper ? strtok_r(wrapper, " ", &save) : NULL;
         w != NULL && argc < 16; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc++] = MORPHD_BIN;
    argv[argc++] = "-c";
    argv[argc++] = p->ini;
    if (geteuid() == 0 && !(args && args[0] && strcmp(args[0], "--as-is") == 0)) {
        /* CI runs as root: the test configs keep root explicitly */
        argv[argc++] = "--set";
        argv[argc++] = "morphd.allow_root=yes";
    }
    if (args && args[0] && strcmp(args[0], "--as-is") == 0)
        args++;
    for (; args && *args && argc < 46; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;

    p->pid = fork();
    ck_assert_int_ge(p->pid, 0);
    if (p->pid == 0) {
        int fd = open(p->logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        close(fd);
        setenv("NOTIFY_SOCKET", p->notify_path, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    free(wrapper);
    long deadline = now_ms() + patience_ms(30000);
    while (now_ms() < deadline) {
        await_note(p, deadline - now_ms());
        if (p->ready > 0)
            return 0;
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            p->pid = 0;
            return -1;
        }
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return -1;
}

int morphd_proc_start(morphd_proc_t *p, const char *ini_text)
{
    return morphd_proc_start_args(p, ini_text, NULL);
}

char *morphd_proc_log(morphd_proc_t *p) { return read_file(p->logfile); }

void morphd_proc_serve(morphd_proc_t *p, const char *plugin_dir,
                       const char *morphd_lines, const char *services,
                       char *admin, size_t admin_size)
{
    char ini[8192];
    snprintf(admin, admin_size, "/tmp/morph-test-%d.sock", (int)getpid());
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\nadmin_socket = %s\n"
             "%s\n%s", plugin_dir, admin, morphd_lines, services);
    if (morphd_proc_start(p, ini) != 0) {
        char *log = morphd_proc_log(p);
        ck_abort_msg("morphd did not start:\n%s", log);
    }
}

int morphd_proc_need_port(morphd_proc_t *p, const char *service,
                          const char *proto, bool v6)
{
    int port = morphd_proc_port(p, service, proto, v6);
    ck_assert_msg(port > 0, "no %s port for service %s", proto, service);
    return port;
}

void morphd_proc_finish(morphd_proc_t *p)
{
    int rc = morphd_proc_stop(p);
    if (rc != 0) { /* what morphd said is the only clue to why */
        char *log = morphd_proc_log(p);
        size_t n = log != NULL ? strlen(log) : 0;
        ck_abort_msg("morphd exited %d when stopped; the end of its log:\n%s",
                     rc, log != NULL ? log + (n > 3000 ? n - 3000 : 0) : "");
    }
    morphd_proc_cleanup(p);
}

int morphd_proc_port(morphd_proc_t *p, const char *service, const char *proto,
                     bool v6)
{
    /* "SERVICE=tcp://127.0.0.1:4242 SERVICE=udp://[::1]:4242 ..." */
    drain_notes(p);
    char want[128];
    snprintf(want, sizeof want, "%s=%s://", service, proto);
    for (const char *at = p->listening; (at = strstr(at, want)) != NULL; at++) {
        if (at != p->listening && at[-1] != ' ')
            continue; /* the end of another service's name */
        const char *addr = at + strlen(want);
        const char *end = strchr(addr, ' ');
        if (end == NULL)
            end = addr + strlen(addr);
        if ((*addr == '[') != v6)
            continue;
        const char *colon = end;
        while (colon > addr && *colon != ':')
            colon--;
        if (*colon == ':')
            return atoi(colon + 1);
    }
    return -1;
}

int morphd_proc_notified(morphd_proc_t *p, const char *needle, int at_least,
                         long timeout_ms)
{
    long deadline = now_ms() + patience_ms(timeout_ms);
    for (;;) {
        drain_notes(p);
        int n = 0;
        for (const char *at = p->notes; (at = strstr(at, needle)) != NULL; at++)
            n++;
        if (n >= at_least || now_ms() >= deadline || p->notify_fd < 0)
            return n;
        await_note(p, deadline - now_ms());
    }
}

void morphd_proc_rewrite(morphd_proc_t *p, const char *ini_text)
{
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s.new", p->ini);
    write_file(tmp, ini_text);
    ck_assert_int_eq(rename(tmp, p->ini), 0);
}

int morphd_proc_log_count(morphd_proc_t *p, const char *needle)
{
    char *log = read_file(p->logfile);
    int n = 0;
    for (char *at = log; (at = strstr(at, needle)) != NULL; at++)
        n++;
    free(log);
    return n;
}

int morphd_proc_reload(morphd_proc_t *p)
{
    drain_notes(p);
    int ok = p->reloads_ok, bad = p->reloads_failed;
    kill(p->pid, SIGHUP);
    long deadline = now_ms() + patience_ms(10000);
    while (now_ms() < deadline) {
        await_note(p, deadline - now_ms());
        if (p->reloads_ok > ok)
            return 0;
        if (p->reloads_failed > bad)
            return -1;
    }
    return -1;
}

int morphd_proc_stop(morphd_proc_t *p)
{
    if (p->pid <= 0)
        return p->exit_status;
    kill(p->pid, SIGTERM);
    /* under a tool (valgrind) every process, worker processes too, ends
     * with a leak check of its own: slower */
    long deadline = now_ms() + (getenv("MORPH_TEST_WRAPPER") ? 30000 : 10000);
    int status;
    while (now_ms() < deadline) {
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            p->exit_status = WIFEXITED(status) ? WEXITSTATUS(status)
                                               : 128 + WTERMSIG(status);
            return p->exit_status;
        }
        usleep(5000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return -1;
}

long morphd_proc_rss_kib(morphd_proc_t *p)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)p->pid);
    char *status = read_file(path);
    char *line = strstr(status, "VmRSS:");
    long kib = line ? atol(line + 6) : -1;
    free(status);
    return kib;
}

void morphd_proc_cleanup(morphd_proc_t *p)
{
    if (p->pid > 0)
        morphd_proc_stop(p);
    if (p->notify_fd > 0)
        close(p->notify_fd);
    p->notify_fd = -1;
    unlink(p->ini);
    unlink(p->logfile);
    unlink(p->notify_path);
    rmdir(p->dir);
}

int run_morphd(const char *const *args, char **output)
{
    char path[] = "/tmp/morphd-out-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *argv[32] = {MORPHD_BIN};
    int argc = 1;
    for (; args && *args && argc < 30; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(MORPHD_BIN, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    int status;
    waitpid(pid, &status, 0);
    if (output)
        *output = read_file(path);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_fd_all(int fd, size_t *len_out)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    lseek(fd, 0, SEEK_SET);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 2)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

int run_program(const char *const *argv, const void *input, size_t in_len,
                char **out, size_t *out_len, char **err)
{
    char in_path[] = "/tmp/morph-in-XXXXXX", out_path[] = "/tmp/morph-out-XXXXXX",
         err_path[] = "/tmp/morph-err-XXXXXX";
    int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path),
        err_fd = mkstemp(err_path);
    ck_assert(in_fd >= 0 && out_fd >= 0 && err_fd >= 0);
    unlink(in_path);
    unlink(out_path);
    unlink(err_path);
    ck_assert_int_eq(write(in_fd, input, in_len), (ssize_t)in_len);
    lseek(in_fd, 0, SEEK_SET);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(in_fd, STDIN_FILENO);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    char *o = read_fd_all(out_fd, out_len);
    char *e = read_fd_all(err_fd, NULL);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    close(in_fd);
    close(out_fd);
    close(err_fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int free_loopback_port(void)
{
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(probe, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(probe, (struct sockaddr *)&a, &len);
    close(probe);
    return ntohs(a.sin_port);
}

pid_t spawn_morphd_on(const char *ini_path, int stderr_fd, int port)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(stderr_fd, STDERR_FILENO);
        execl(MORPHD_BIN, MORPHD_BIN, "-c", ini_path, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int fd = tcp_connect(port, false);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_abort_msg("morphd never listened on port %d", port);
    return -1;
}

int stop_morphd_pid(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long long morph_stat(const char *admin_path, const char *service,
                     const char *counter)
{
    const char *argv[] = {MORPH_BIN, "stats", "--json", "-s", admin_path, NULL};
    char *out, *err;
    ck_assert_int_eq(run_program(argv, "", 0, &out, NULL, &err), 0);
    char key[128];
    snprintf(key, sizeof key, "\"%s\":{", service);
    char *svc = strstr(out, key);
    ck_assert_msg(svc != NULL, "no service %s in %s", service, out);
    snprintf(key, sizeof key, "\"%s\":", counter);
    char *at = strstr(svc, key);
    ck_assert_msg(at != NULL, "no counter %s in %s", counter, out);
    long long v = atoll(at + strlen(key));
    free(out);
    free(err);
    return v;
}

long long morph_stat_wait(const char *admin_path, const char *service,
                          const char *counter, long long want)
{
    long long v = -1;
    long deadline = now_ms() + patience_ms(10000);
    do {
        v = morph_stat(admin_path, service, counter);
        if (v == want)
            break;
        usleep(20 * 1000);
    } while (now_ms() < deadline);
    return v;
}

long long morph_plugin_stat(const char *admin_path, const char *service,
                            const char *plugin, const char *field)
{
    const char *argv[] = {MORPH_BIN, "stats", "--json", "-s", admin_path, NULL};
    char *out, *err;
    ck_assert_int_eq(run_program(argv, "", 0, &out, NULL, &err), 0);
    long long v = -1;
    char key[160];
    snprintf(key, sizeof key, "\"%s\":{", service);
    char *svc = strstr(out, key);
    snprintf(key, sizeof key, "{\"name\":\"%s\",", plugin);
    char *pl = svc ? strstr(svc, key) : NULL;
    char *next = pl ? strstr(pl + 1, "{\"name\":") : NULL;
    snprintf(key, sizeof key, "\"%s\":", field);
    char *at = pl ? strstr(pl, key) : NULL;
    if (at != NULL && (next == NULL || at < next))
        v = atoll(at + strlen(key));
    free(out);
    free(err);
    return v;
}

/* --- sockets --------------------------------------------------------------- */

static socklen_t loopback(struct sockaddr_storage *ss, int port, bool v6)
{
    memset(ss, 0, sizeof *ss);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        return sizeof *a;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof *a;
}

int udp_connect(int port, bool v6, int timeout_ms)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(&ss, port, v6);
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void close_reset(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

int tcp_connect(int port, bool v6)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(&ss, port, v6);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

size_t recv_exact(int fd, void *buf, size_t n, int timeout_ms)
{
    size_t got = 0;
    long deadline = now_ms() + patience_ms(timeout_ms); /* valgrind: longer */
    while (got < n) {
        long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

size_t recv_until_close(int fd, void *buf, size_t cap, int timeout_ms)
{
    return recv_exact(fd, buf, cap, timeout_ms); /* stops at close too */
}

char *recv_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    for (size_t got = 0; got + 1 < cap; got++) {
        if (recv_exact(fd, buf + got, 1, timeout_ms) != 1)
            return NULL;
        if (buf[got] == '\n') {
            buf[got] = '\0';
            return buf;
        }
    }
    return NULL;
}

int tcp_connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    ck_assert_int_eq(inet_pton(AF_INET, src, &a.sin_addr), 1);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons((uint16_t)port);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    return fd;
}

ssize_t udp_roundtrip(int port, bool v6, const void *msg, size_t n,
                      void *reply, size_t cap, int timeout_ms)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(&ss, port, v6);
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    ssize_t r = -1;
    if (sendto(fd, msg, n, 0, (struct sockaddr *)&ss, len) == (ssize_t)n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, timeout_ms) == 1)
            r = recv(fd, reply, cap, 0);
    }
    close(fd);
    return r;
}

const char *ask_line(int fd, const char *line, int timeout_ms)
{
    static char reply[256];
    char msg[256];
    int n = snprintf(msg, sizeof msg, "%s\n", line);
    if (n < 0 || (size_t)n >= sizeof msg || send_all(fd, msg, (size_t)n) != 0)
        return NULL;
    return recv_line(fd, reply, sizeof reply, timeout_ms);
}

char *shell_output(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    static char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    ck_assert_int_eq(pclose(f), 0);
    return out;
}
