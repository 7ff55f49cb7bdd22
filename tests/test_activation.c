/* Socket activation with systemd-socket-activate (systemd's own tool for
 * it): morphd adopts each passed socket that is a configured endpoint --
 * TCP and UDP -- binds the other endpoints itself, closes a passed socket
 * no endpoint wants, shares an adopted socket with its other workers, and
 * keeps it over a reload. systemd-socket-activate execs morphd only at the
 * first connection or datagram, which therefore waits in the socket's
 * queue while morphd starts: it is answered, not refused -- what a socket
 * unit gives `systemctl restart`. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 10000

static char dir[64], ini[128], logfile[128];
static pid_t pid;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/morph-act-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ini, sizeof ini, "%s/morphd.ini", dir);
    snprintf(logfile, sizeof logfile, "%s/morphd.log", dir);
    pid = 0;
}

static void teardown(void)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* systemd-socket-activate ARGS... -- morphd -c ini, stderr to the log. */
static void activate(const char *const *args, size_t n)
{
    int log = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(log, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[32];
        size_t k = 0;
        argv[k++] = "systemd-socket-activate";
        for (size_t i = 0; i < n; i++)
            argv[k++] = args[i];
        argv[k++] = MORPHD_BIN;
        argv[k++] = "-c";
        argv[k++] = ini;
        if (geteuid() == 0) {
            argv[k++] = "--set";
            argv[k++] = "morphd.allow_root=yes";
        }
        argv[k] = NULL;
        dup2(log, STDERR_FILENO);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(log);
}

static char *log_text(void)
{
    static char text[16384];
    FILE *f = fopen(logfile, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    return text;
}

/* Waits (bounded) for `needle` in morphd's log. */
static bool log_has(const char *needle)
{
    for (int i = 0; i < 500; i++) {
        if (strstr(log_text(), needle) != NULL)
            return true;
        usleep(10000);
    }
    return false;
}

/* Fails the test unless the log holds the line part formatted from fmt. */
static void assert_logged(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void assert_logged(const char *fmt, ...)
{
    char want[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    ck_assert_msg(strstr(log_text(), want) != NULL, "no '%s' in:\n%s", want,
                  log_text());
}

/* Connects to a port systemd-socket-activate listens on: the connection
 * is made at once (the socket is there), whether morphd runs yet or not. */
static int connect_passed(int port)
{
    int fd = tcp_connect(port, false);
    ck_assert_msg(fd >= 0, "the passed socket %d refused", port);
    return fd;
}

static void exchange(int fd, const char *line, const char *want)
{
    ck_assert_int_eq(send_all(fd, line, strlen(line)), 0);
    char got[64] = "";
    ck_assert_uint_eq(recv_exact(fd, got, strlen(want), TIMEOUT_MS), strlen(want));
    ck_assert_str_eq(got, want);
}

START_TEST(tcp_sockets_are_adopted_others_bound_strays_closed)
{
    int adopted = free_loopback_port(), stray = free_loopback_port();
    int own = free_loopback_port();
    FILE *f = fopen(ini, "w");
    fprintf(f, "[morphd]\nplugin_dir = %s\nworkers = 2\n[service s]\n"
            "listen = tcp://127.0.0.1:%d tcp://127.0.0.1:%d\n"
            "transform = uppercase\nframing = line\n",
            PLUGIN_DIR, adopted, own);
    fclose(f);
    char l1[64], l2[64];
    snprintf(l1, sizeof l1, "127.0.0.1:%d", adopted);
    snprintf(l2, sizeof l2, "127.0.0.1:%d", stray);
    const char *args[] = {"-l", l1, "-l", l2};
    activate(args, 4);
    /* the first connection, before morphd exists: queued, then answered */
    int first = -1;
    for (int i = 0; i < 500 && first < 0; i++) { /* until it listens */
        first = tcp_connect(adopted, false);
        if (first < 0)
            usleep(10000);
    }
    ck_assert_int_ge(first, 0);
    exchange(first, "before\n", "BEFORE\n");
    ck_assert(log_has("started"));
    assert_logged("listening on tcp://127.0.0.1:%d (line framing, "
                  "worker 0, from systemd)", adopted);
    assert_logged("listening on tcp://127.0.0.1:%d (line framing, "
                  "worker 0)\n", own);
    assert_logged("the passed socket tcp://127.0.0.1:%d (fd 4) "
                  "is no configured endpoint; closed", stray);
    assert_logged("listening on tcp://127.0.0.1:%d (line framing, "
                  "worker 1)", adopted);
    /* both endpoints serve; the stray port is gone */
    int fd = tcp_connect(own, false);
    exchange(fd, "own\n", "OWN\n");
    close(fd);
    ck_assert_int_lt(tcp_connect(stray, false), 0);
    /* many connections on the adopted socket, shared by the two workers */
    for (int i = 0; i < 50; i++) {
        fd = connect_passed(adopted);
        exchange(fd, "x\n", "X\n");
        close(fd);
    }
    /* a reload hands the adopted socket over: still served */
    kill(pid, SIGHUP);
    ck_assert(log_has("configuration reloaded"));
    fd = connect_passed(adopted);
    exchange(fd, "after\n", "AFTER\n");
    close(fd);
    exchange(first, "still\n", "STILL\n");
    close(first);
    ck_assert_int_eq(stop_morphd_pid(pid), 0);
    pid = 0;
}
END_TEST

START_TEST(udp_socket_is_adopted)
{
    int port = free_loopback_port();
    FILE *f = fopen(ini, "w");
    fprintf(f, "[morphd]\nplugin_dir = %s\n[service s]\n"
            "listen = udp://127.0.0.1:%d\ntransform = uppercase\n",
            PLUGIN_DIR, port);
    fclose(f);
    char l1[64];
    snprintf(l1, sizeof l1, "127.0.0.1:%d", port);
    const char *args[] = {"--datagram", "-l", l1};
    activate(args, 3);
    /* the first datagram waits in the socket while morphd starts */
    char reply[32];
    ssize_t n = -1;
    for (int i = 0; i < 50 && n < 0; i++)
        n = udp_roundtrip(port, false, "first", 5, reply, sizeof reply, 200);
    ck_assert_int_eq(n, 5);
    ck_assert(log_has("started"));
    assert_logged("listening on udp://127.0.0.1:%d (datagrams, "
                  "worker 0, from systemd)", port);
    ck_assert_int_eq(udp_roundtrip(port, false, "again", 5, reply, sizeof reply,
                                   TIMEOUT_MS), 5);
    ck_assert_int_eq(stop_morphd_pid(pid), 0);
    pid = 0;
}
END_TEST

/* morphd reads LISTEN_FDS and matches sockets itself (activation.c, not
 * libsystemd): a unix:// socket by its path, an IPv6 one by address and
 * port; a socket on the same port of another address is not the
 * endpoint's. */
START_TEST(unix_and_ipv6_sockets_are_matched_by_address)
{
    int port = free_loopback_port();
    char path[96];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    FILE *f = fopen(ini, "w");
    fprintf(f, "[morphd]\nplugin_dir = %s\n[service s]\n"
            "listen = unix://%s tcp://[::1]:%d\n"
            "transform = uppercase\nframing = line\n", PLUGIN_DIR, path, port);
    fclose(f);
    char l6[64], l4[64];
    snprintf(l6, sizeof l6, "[::1]:%d", port);
    snprintf(l4, sizeof l4, "127.0.0.1:%d", port); /* same port, not ::1 */
    const char *args[] = {"-l", path, "-l", l6, "-l", l4};
    activate(args, 6);
    int fd = -1;
    for (int i = 0; i < 500 && fd < 0; i++) { /* until it listens */
        fd = tcp_connect(port, true);
        if (fd < 0)
            usleep(10000);
    }
    ck_assert_int_ge(fd, 0);
    exchange(fd, "six\n", "SIX\n");
    close(fd);
    ck_assert(log_has("started"));
    assert_logged("listening on unix://%s (line framing, "
                  "worker 0, from systemd)", path);
    assert_logged("listening on tcp://[::1]:%d (line framing, "
                  "worker 0, from systemd)", port);
    assert_logged("the passed socket tcp://127.0.0.1:%d (fd 5) "
                  "is no configured endpoint; closed", port);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(connect(u, (struct sockaddr *)&sa, sizeof sa), 0);
    exchange(u, "unix\n", "UNIX\n");
    close(u);
    ck_assert_int_eq(stop_morphd_pid(pid), 0);
    pid = 0;
}
END_TEST

/* The variables are read as sd_listen_fds(3) reads them: LISTEN_FDS alone
 * (or for another pid) passes nothing and says nothing; a LISTEN_PID that
 * is no number is reported, and every endpoint is bound as usual. */
START_TEST(malformed_or_foreign_listen_variables_bind_as_usual)
{
    static morphd_proc_t p;
    char svc[512];
    snprintf(svc, sizeof svc, "[morphd]\nplugin_dir = %s\n[service s]\n"
             "listen = tcp://127.0.0.1:0\ntransform = uppercase\n", PLUGIN_DIR);
    const char *cases[][3] = {
        {NULL, "1", ""},           /* LISTEN_FDS alone */
        {"1", "1", ""},            /* for pid 1, not this morphd */
        {"x", "1", "LISTEN_FDS is not usable"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        if (cases[k][0])
            setenv("LISTEN_PID", cases[k][0], 1);
        else
            unsetenv("LISTEN_PID");
        setenv("LISTEN_FDS", cases[k][1], 1);
        ck_assert_int_eq(morphd_proc_start(&p, svc), 0);
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        int fd = tcp_connect(morphd_proc_need_port(&p, "s", "tcp", false), false);
        exchange(fd, "ok", "OK");
        close(fd);
        ck_assert_int_eq(morphd_proc_log_count(&p, "socket activation"),
                         cases[k][2][0] ? 1 : 0);
        if (cases[k][2][0])
            ck_assert_int_eq(morphd_proc_log_count(&p, cases[k][2]), 1);
        morphd_proc_finish(&p);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("activation");
    TCase *tc = tcase_create("activation");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tcp_sockets_are_adopted_others_bound_strays_closed);
    tcase_add_test(tc, udp_socket_is_adopted);
    tcase_add_test(tc, unix_and_ipv6_sockets_are_matched_by_address);
    tcase_add_test(tc, malformed_or_foreign_listen_variables_bind_as_usual);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
