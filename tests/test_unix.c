/* unix:// endpoints over real sockets: serving (line and stream framing,
 * beside tcp:// in one service), the socket file's mode and group, a stale
 * file replaced, a file in use or not a socket refused, the file removed
 * at shutdown (and not when another has taken its place), the client's
 * process in the plugin context, per-user limits, reload and two workers. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char dir[64];
static char path[96]; /* short enough for sun_path */

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/morph-unix-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755);
    snprintf(path, sizeof path, "%s/s.sock", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int start(const char *morphd_lines, const char *service_lines)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n%s\n[service u]\n"
             "listen = unix://%s tcp://127.0.0.1:0\n%s",
             PLUGIN_DIR, morphd_lines, path, service_lines);
    return morphd_proc_start(&proc, ini);
}

static struct sockaddr_un unix_addr(const char *p)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(p), sizeof a.sun_path);
    memcpy(a.sun_path, p, strlen(p) + 1);
    return a;
}

static int unix_connect(const char *p)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un a = unix_addr(p);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void exchange(int fd, const char *send, const char *want)
{
    ck_assert_int_eq(send_all(fd, send, strlen(send)), 0);
    char got[256] = "";
    size_t n = strlen(want);
    ck_assert_uint_eq(recv_exact(fd, got, n, TIMEOUT_MS), n);
    ck_assert_str_eq(got, want);
}

START_TEST(serves_beside_tcp_with_line_framing)
{
    ck_assert_int_eq(start("", "transform = uppercase | reverse\nframing = line\n"), 0);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "listening on unix://"), 1);
    int fd = unix_connect(path);
    ck_assert_int_ge(fd, 0);
    exchange(fd, "hello\nnoël\n", "OLLEH\nLËON\n");
    close(fd);
    int t = tcp_connect(morphd_proc_need_port(&proc, "u", "tcp", false), false);
    exchange(t, "abc\n", "CBA\n");
    close(t);
    morphd_proc_finish(&proc);
}
END_TEST

/* The textbook client's way: no newline, reply as bytes arrive. */
START_TEST(serves_stream_framing)
{
    ck_assert_int_eq(start("", "transform = uppercase\n"), 0);
    int fd = unix_connect(path);
    exchange(fd, "hello world", "HELLO WORLD");
    shutdown(fd, SHUT_WR); /* end of input: morphd closes after the reply */
    char buf[16];
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 0);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

static gid_t other_group(void)
{
    if (geteuid() == 0) {
        struct group *g = getgrnam("daemon");
        return g ? g->gr_gid : 1;
    }
    return getgid();
}

START_TEST(socket_file_mode_and_group)
{
    ck_assert_int_eq(start("", "transform = echo\n"), 0);
    struct stat sb;
    ck_assert_int_eq(lstat(path, &sb), 0);
    ck_assert(S_ISSOCK(sb.st_mode));
    ck_assert_uint_eq(sb.st_mode & 07777, 0660); /* the default */
    morphd_proc_finish(&proc);

    char lines[128];
    gid_t gid = other_group();
    snprintf(lines, sizeof lines, "transform = echo\nunix_mode = 0600\n"
             "unix_group = %u\n", (unsigned)gid);
    ck_assert_int_eq(start("", lines), 0);
    ck_assert_int_eq(lstat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 07777, 0600);
    ck_assert_uint_eq(sb.st_gid, gid);
    morphd_proc_finish(&proc);
}
END_TEST

/* A socket file nobody listens on -- left by a morphd that was killed --
 * is replaced at start. */
START_TEST(stale_socket_file_is_replaced)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = unix_addr(path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd); /* the file stays; nobody listens */
    ck_assert_int_eq(start("", "transform = uppercase\nframing = line\n"), 0);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "replaced a stale socket file"), 1);
    fd = unix_connect(path);
    exchange(fd, "x\n", "X\n");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* A socket another process listens on is a configuration error, at start
 * (78, "in use"); so is a path that is not a socket, which is left alone. */
START_TEST(socket_in_use_or_not_a_socket_is_refused)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = unix_addr(path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(start("", "transform = echo\n"), -1);
    char *log = morphd_proc_log(&proc);
    ck_assert_msg(strstr(log, "morphd.ini:5: service 'u': unix://") &&
                      strstr(log, "in use: another process listens on it"),
                  "%s", log);
    free(log);
    ck_assert_int_eq(proc.exit_status, 78);
    morphd_proc_cleanup(&proc);
    close(fd);
    ck_assert_int_eq(unlink(path), 0);

    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("precious\n", f);
    fclose(f);
    ck_assert_int_eq(start("", "transform = echo\n"), -1);
    log = morphd_proc_log(&proc);
    ck_assert_msg(strstr(log, "exists and is not a socket; not replacing it"),
                  "%s", log);
    free(log);
    morphd_proc_cleanup(&proc);
    struct stat sb;
    ck_assert_int_eq(lstat(path, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode) && sb.st_size == 9);
}
END_TEST

START_TEST(socket_file_is_removed_at_shutdown)
{
    ck_assert_int_eq(start("", "transform = echo\n"), 0);
    ck_assert_int_eq(access(path, F_OK), 0);
    morphd_proc_finish(&proc);
    ck_assert_int_eq(access(path, F_OK), -1);

    /* one that another file has replaced meanwhile is not morphd's to
     * remove */
    ck_assert_int_eq(start("", "transform = echo\n"), 0);
    char other[160];
    snprintf(other, sizeof other, "%s/other", dir);
    FILE *f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(rename(other, path), 0);
    morphd_proc_finish(&proc);
    struct stat sb;
    ck_assert_int_eq(lstat(path, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
}
END_TEST

/* whoami: the transport, no address, the service and the client process
 * (SO_PEERCRED) -- this test's own uid, gid and pid. */
START_TEST(client_process_is_in_the_plugin_context)
{
    ck_assert_int_eq(start("", "transform = whoami\nframing = line\n"), 0);
    int fd = unix_connect(path);
    char want[160];
    snprintf(want, sizeof want, "unix - 0 u uid=%u gid=%u pid=%d\n",
             (unsigned)geteuid(), (unsigned)getegid(), (int)getpid());
    exchange(fd, "?\n", want);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* max_connections_per_source counts per user over unix:// (every client
 * has the same empty address). */
START_TEST(per_source_limit_counts_users)
{
    ck_assert_int_eq(start("", "transform = uppercase\nframing = line\n"
                               "max_connections_per_source = 1\n"), 0);
    int a = unix_connect(path);
    exchange(a, "a\n", "A\n");
    int b = unix_connect(path); /* accepted by the kernel, closed by morphd */
    ck_assert_int_ge(b, 0);
    char buf[8];
    send_all(b, "b\n", 2);
    ck_assert_uint_eq(recv_until_close(b, buf, sizeof buf, TIMEOUT_MS), 0);
    close(b);
    exchange(a, "c\n", "C\n");
    close(a);
    morphd_proc_finish(&proc);
}
END_TEST

static void reload_ok(void)
{
    if (morphd_proc_reload(&proc) != 0) {
        char *log = morphd_proc_log(&proc);
        ck_abort_msg("reload failed:\n%s", log);
    }
}

/* A reload keeps the socket (same file, nothing refused meanwhile); a
 * reload that drops the endpoint removes the file, one that adds it back
 * makes it again. */
START_TEST(reload_keeps_removes_and_remakes_the_socket)
{
    ck_assert_int_eq(start("", "transform = uppercase\nframing = line\n"), 0);
    struct stat before, after;
    ck_assert_int_eq(lstat(path, &before), 0);
    int old = unix_connect(path);
    exchange(old, "a\n", "A\n");

    char ini[1024];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\n[service u]\n"
             "listen = unix://%s\ntransform = reverse\nframing = line\n",
             PLUGIN_DIR, path);
    morphd_proc_rewrite(&proc, ini);
    reload_ok();
    ck_assert_int_eq(lstat(path, &after), 0);
    ck_assert_uint_eq(before.st_ino, after.st_ino);
    int fd = unix_connect(path);
    exchange(fd, "abc\n", "cba\n");
    close(fd);
    exchange(old, "b\n", "B\n"); /* the old connection keeps its config */
    close(old);

    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\n[service u]\n"
             "listen = tcp://127.0.0.1:0\ntransform = echo\n", PLUGIN_DIR);
    morphd_proc_rewrite(&proc, ini);
    reload_ok();
    ck_assert_int_eq(access(path, F_OK), -1);

    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\n[service u]\n"
             "listen = unix://%s\ntransform = echo\nframing = line\n",
             PLUGIN_DIR, path);
    morphd_proc_rewrite(&proc, ini);
    reload_ok();
    fd = unix_connect(path);
    exchange(fd, "same\n", "same\n");
    close(fd);
    morphd_proc_finish(&proc);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* With two workers, both listen on the one socket file. */
START_TEST(two_workers_share_the_socket)
{
    ck_assert_int_eq(start("workers = 2\n", "transform = uppercase\nframing = line\n"), 0);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "listening on unix://"), 2);
    int fds[40];
    for (int i = 0; i < 40; i++) { /* held open together: both loops serve */
        fds[i] = unix_connect(path);
        ck_assert_int_ge(fds[i], 0);
    }
    for (int i = 0; i < 40; i++) {
        exchange(fds[i], "w\n", "W\n");
        close(fds[i]);
    }
    morphd_proc_finish(&proc);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* The client: `morph unix:///PATH message`. */
START_TEST(morph_client_talks_unix)
{
    ck_assert_int_eq(start("", "transform = uppercase\nframing = line\n"), 0);
    char target[128];
    snprintf(target, sizeof target, "unix://%s", path);
    const char *argv[] = {MORPH_BIN, target, "hello", "world", NULL};
    char *out, *err;
    size_t len;
    ck_assert_int_eq(run_program(argv, "", 0, &out, &len, &err), 0);
    ck_assert_str_eq(out, "HELLO WORLD\n");
    free(out);
    free(err);
    /* lines from a pipe, each answered */
    const char *piped[] = {MORPH_BIN, target, NULL};
    ck_assert_int_eq(run_program(piped, "a\nb\n", 4, &out, &len, &err), 0);
    ck_assert_str_eq(out, "A\nB\n");
    free(out);
    free(err);
    morphd_proc_finish(&proc);

    const char *udp[] = {MORPH_BIN, "--udp", target, "x", NULL};
    ck_assert_int_eq(run_program(udp, "", 0, &out, &len, &err), 64);
    ck_assert_msg(strstr(err, "--udp does not apply"), "%s", err);
    free(out);
    free(err);
    const char *relative[] = {MORPH_BIN, "unix://s.sock", "x", NULL};
    ck_assert_int_eq(run_program(relative, "", 0, &out, &len, &err), 64);
    ck_assert_msg(strstr(err, "unix:///PATH (absolute"), "%s", err);
    free(out);
    free(err);
    /* morphd is gone, and with it the socket file */
    ck_assert_int_eq(run_program(argv, "", 0, &out, &len, &err), 1);
    ck_assert_msg(strstr(err, "cannot connect to unix://") &&
                      strstr(err, "No such file or directory"), "%s", err);
    free(out);
    free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("unix");
    TCase *tc = tcase_create("unix");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, serves_beside_tcp_with_line_framing);
    tcase_add_test(tc, serves_stream_framing);
    tcase_add_test(tc, socket_file_mode_and_group);
    tcase_add_test(tc, stale_socket_file_is_replaced);
    tcase_add_test(tc, socket_in_use_or_not_a_socket_is_refused);
    tcase_add_test(tc, socket_file_is_removed_at_shutdown);
    tcase_add_test(tc, client_process_is_in_the_plugin_context);
    tcase_add_test(tc, per_source_limit_counts_users);
    tcase_add_test(tc, reload_keeps_removes_and_remakes_the_socket);
    tcase_add_test(tc, two_workers_share_the_socket);
    tcase_add_test(tc, morph_client_talks_unix);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
