/*
 * sandbox = on (issue 14): a plugin that tries to read files under /etc,
 * write under /tmp, fork, exec, connect out, open a netlink socket, trace
 * or signal another process is refused by the kernel -- EACCES from
 * Landlock, EPERM from the seccomp filter, each logged with the plugin and
 * service -- while the service goes on serving; the same plugin without
 * the sandbox does all of it (so each refusal is the sandbox's). Reload
 * works inside the sandbox, and a kernel without Landlock or seccomp gets
 * a warning, not a refusal to start.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static int listener = -1, listener_port; /* where "connect" goes */

static void setup(void)
{
    /* LeakSanitizer's exit check traces the process, which the sandbox
     * refuses by design: under ASan, leaks are checked by the other tests */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%sdetect_leaks=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    ck_assert_int_eq(bind(listener, (struct sockaddr *)&sin, sizeof sin), 0);
    ck_assert_int_eq(listen(listener, 16), 0);
    getsockname(listener, (struct sockaddr *)&sin, &len);
    listener_port = ntohs(sin.sin_port);
}

static void teardown(void)
{
    close(listener);
}

static void start(const char *sandbox, const char *transform)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s %s\nsandbox = %s\n\n[service s]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = %s\nframing = line\n",
             TEST_PLUGIN_DIR, PLUGIN_DIR, sandbox, transform);
    if (morphd_proc_start(&proc, ini) != 0) {
        char *log = morphd_proc_log(&proc);
        ck_abort_msg("morphd did not start:\n%s", log);
    }
}

/* Sends one line on a new connection; returns the reply without its
 * newline (static). */
static const char *ask(const char *line)
{
    static char reply[600];
    int fd = tcp_connect(morphd_proc_port(&proc, "s", "tcp", false), false);
    char msg[600];
    int n = snprintf(msg, sizeof msg, "%s\n", line);
    ck_assert_int_eq(send_all(fd, msg, (size_t)n), 0);
    const char *got = recv_line(fd, reply, sizeof reply, TIMEOUT_MS);
    close(fd);
    return got ? got : "";
}

#define ASK_EQ(line, expected)                                                 \
    do {                                                                       \
        const char *r_ = ask(line);                                            \
        ck_assert_msg(strcmp(r_, expected) == 0, "'%s' answered '%s', not "    \
                      "'%s'", line, r_, expected);                             \
    } while (0)

static char tmp_file[128];

static void attempts(bool sandboxed)
{
    char line[256];
    snprintf(tmp_file, sizeof tmp_file, "/tmp/morph-sandbox-%d", (int)getpid());
    ASK_EQ("open /etc/hostname", sandboxed ? "open: EACCES" : "open: ok");
    ASK_EQ("open /etc/passwd", sandboxed ? "open: EACCES" : "open: ok");
    snprintf(line, sizeof line, "write %s", tmp_file);
    ASK_EQ(line, sandboxed ? "write: EACCES" : "write: ok");
    /* a plugin folder is read-only */
    snprintf(line, sizeof line, "open %s/escape.so", TEST_PLUGIN_DIR);
    ASK_EQ(line, "open: ok");
    snprintf(line, sizeof line, "write %s/dropped.so", TEST_PLUGIN_DIR);
    ASK_EQ(line, sandboxed ? "write: EACCES" : "write: ok");
    ASK_EQ("fork", sandboxed ? "fork: EPERM" : "fork: ok");
    ASK_EQ("exec", sandboxed ? "exec: EPERM" : "exec: ENOENT");
    snprintf(line, sizeof line, "connect %d", listener_port);
    ASK_EQ(line, sandboxed ? "connect: EACCES" : "connect: ok");
    ASK_EQ("netlink", sandboxed ? "netlink: EPERM" : "netlink: ok");
    ASK_EQ("ptrace", sandboxed ? "ptrace: EPERM" : "ptrace: ESRCH");
    if (geteuid() == 0) /* signalling init needs root without the sandbox */
        ASK_EQ("kill", sandboxed ? "kill: EPERM" : "kill: ok");
    /* and the service goes on */
    ASK_EQ("still here", "still here");
    char buf[32] = "";
    ck_assert_int_eq(udp_roundtrip(morphd_proc_port(&proc, "s", "udp", false),
                                   false, "fork", 4, buf, sizeof buf,
                                   TIMEOUT_MS),
                     sandboxed ? 11 : 8);
    ck_assert_str_eq(buf, sandboxed ? "fork: EPERM" : "fork: ok");
}

START_TEST(without_the_sandbox_a_plugin_reaches_everything)
{
    start("off", "escape");
    attempts(false);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "sandbox"), 0);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(the_sandbox_refuses_and_logs_and_serves_on)
{
    start("on", "escape");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "sandbox: Landlock (ABI"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "sandbox: seccomp filter "
                                           "loaded on every thread"), 1);
    attempts(true);
    struct stat st;
    ck_assert_int_ne(stat(tmp_file, &st), 0); /* nothing was written */
    /* each refused system call is logged once, naming plugin and service */
    char *log = morphd_proc_log(&proc);
    ck_assert_msg(strstr(log, "denied system call execve (") &&
                      strstr(log, "denied system call clone (") &&
                      strstr(log, "denied system call ptrace ("),
                  "%s", log);
    ck_assert_msg(strstr(log, "in plugin escape of service s: it failed with "
                         "EPERM"), "%s", log);
    free(log);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "denied system call clone"),
                     1); /* asked twice (TCP and UDP), logged once */
    morphd_proc_finish(&proc);
}
END_TEST

/* SIGHUP inside the sandbox: the file is re-read, plugins in the allowed
 * folders are loaded, and the new chain serves. A plugin folder added by
 * the reload is out of reach: that reload fails with the reason, and the
 * running configuration goes on. */
START_TEST(reload_works_inside_the_sandbox)
{
    start("on", "escape");
    ASK_EQ("abc", "abc");
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s %s\nsandbox = on\n\n[service s]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = escape | uppercase\nframing = line\n",
             TEST_PLUGIN_DIR, PLUGIN_DIR);
    morphd_proc_rewrite(&proc, ini);
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    ASK_EQ("abc", "ABC");
    ASK_EQ("fork", "FORK: EPERM"); /* still sandboxed */

    /* a folder the sandbox did not allow at start */
    char dir[] = "/tmp/morph-sandbox-dir-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755);
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s %s\nsandbox = on\n\n[service s]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = reverse\nframing = line\n", dir, PLUGIN_DIR);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s/reverse.so %s/", PLUGIN_DIR, dir);
    ck_assert_int_eq(system(cmd), 0);
    morphd_proc_rewrite(&proc, ini);
    ck_assert_int_eq(morphd_proc_reload(&proc), -1);
    char *log = morphd_proc_log(&proc);
    ck_assert_msg(strstr(log, "Permission denied"), "%s", log);
    free(log);
    ASK_EQ("abc", "ABC"); /* the running configuration serves on */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    morphd_proc_finish(&proc);
}
END_TEST

/* A kernel without Landlock or seccomp filters (simulated for morphd by a
 * filter of the test's that makes those calls fail as such a kernel
 * would): morphd says so and serves, unsandboxed. */
START_TEST(a_kernel_without_them_gets_a_warning)
{
    setenv("MORPH_TEST_WRAPPER", NO_SANDBOX_KERNEL, 1);
    start("on", "escape");
    unsetenv("MORPH_TEST_WRAPPER");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "sandbox: Landlock is not "
                                           "available (this kernel has none)"),
                     1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "sandbox: seccomp filters "
                                           "are not available"), 1);
    ASK_EQ("open /etc/hostname", "open: ok");
    morphd_proc_finish(&proc);
}
END_TEST

/* The packaged way to run: a worker process that sandboxes itself
 * (seccomp and Landlock) runs Lua scripts (examples/lua/redact.lua), and
 * nothing they need is denied. (Here rather than in test_lua, which also
 * runs under valgrind: valgrind cannot run inside the sandbox.) */
START_TEST(scripts_run_in_a_sandboxed_worker_process)
{
    char dir[] = "/tmp/morph-sandbox-lua-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755);
    char path[96], cmd[256];
    snprintf(path, sizeof path, "%s/redact.lua", dir);
    snprintf(cmd, sizeof cmd, "cp %s/examples/lua/redact.lua %s", SOURCE_DIR,
             path);
    ck_assert_int_eq(system(cmd), 0);
    char admin[108];
    morphd_proc_serve(&proc, dir, "isolation = process\nsandbox = on\n",
                      "[service r]\nlisten = tcp://127.0.0.1:0 "
                      "udp://127.0.0.1:0\ntransform = redact\n",
                      admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "r", "tcp", false);
    int fd = tcp_connect(port, false);
    char buf[32] = "";
    ck_assert_int_eq(send_all(fd, "pin 1234\n", 9), 0);
    ck_assert_uint_eq(recv_exact(fd, buf, 9, 5000), 9);
    ck_assert_str_eq(buf, "pin ####\n");
    close(fd);
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(udp_roundtrip(morphd_proc_need_port(&proc, "r", "udp",
                                                         false),
                                   false, "7 up", 4, buf, sizeof buf,
                                   5000), 4);
    ck_assert_str_eq(buf, "# up");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "sandbox: denied"), 0);
    morphd_proc_finish(&proc);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("sandbox");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, without_the_sandbox_a_plugin_reaches_everything);
    tcase_add_test(tc, the_sandbox_refuses_and_logs_and_serves_on);
    tcase_add_test(tc, reload_works_inside_the_sandbox);
    tcase_add_test(tc, a_kernel_without_them_gets_a_warning);
    tcase_add_test(tc, scripts_run_in_a_sandboxed_worker_process);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
