/*
 * A plugin's own libuv handles on the worker's loop (issue 22): plugin.h
 * gives a plugin the loop (host->uv_loop) and lets it keep handles of its
 * own, their `data` pointing at its own context. morphd found its
 * connections by walking the loop's handles and took every TCP or pipe
 * handle with `data` set for one: such a plugin crashed morphd within a
 * second through the idle sweep, and at SIGTERM through the drain. Here
 * tests/plugins/own_handles.c is served through the idle sweep, a reload
 * and a stop, with worker threads and with worker processes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char admin[128];

static void teardown(void) { morphd_proc_cleanup(&proc); }

static const char *ask(int fd, const char *line)
{
    return ask_line(fd, line, TIMEOUT_MS);
}

/* Connects to the plugin's own listener (the port `fd`'s worker reports)
 * and expects its greeting; returns the connection, kept open. */
static int visit_own_listener(int fd)
{
    const char *r = ask(fd, "port");
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strncmp(r, "port ", 5) == 0, "got %s", r); /* not uppercased */
    int own = tcp_connect(atoi(r + 5), false);
    ck_assert_int_ge(own, 0);
    char line[16];
    ck_assert_ptr_nonnull(recv_line(own, line, sizeof line, TIMEOUT_MS));
    ck_assert_str_eq(line, "own");
    return own;
}

static void served_with(const char *isolation)
{
    char lines[256], svc[512];
    snprintf(lines, sizeof lines, "isolation = %s\nworkers = 2\n", isolation);
    /* proc.dir is only known once started: the unix:// socket goes in a
     * folder of its own made first */
    char sock_dir[] = "/tmp/morph-loop-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(sock_dir));
    snprintf(svc, sizeof svc,
             "[service s]\nlisten = tcp://127.0.0.1:0 unix://%s/s.sock\n"
             "transform = own_handles\nframing = line\nidle_timeout = 200ms\n",
             sock_dir);
    char dirs[512];
    snprintf(dirs, sizeof dirs, "%s %s", TEST_PLUGIN_DIR, PLUGIN_DIR);
    morphd_proc_serve(&proc, dirs, lines, svc, admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);

    /* the plugin's handles work: its timer fires, its listener greets */
    int fd = tcp_connect(port, false);
    const char *r = NULL;
    for (int i = 0; i < 500; i++) { /* bounded: 1 ms timer, 5 s at most */
        r = ask(fd, "ticks");
        ck_assert_ptr_nonnull(r);
        if (strcmp(r, "ticks yes") == 0)
            break;
        usleep(10 * 1000);
    }
    ck_assert_str_eq(r, "ticks yes");
    int own[4];
    own[0] = visit_own_listener(fd);

    /* The idle sweep runs every 50 ms: idle connections of morphd's are
     * closed by it while the plugin's listener and its open peer, each
     * with data set, are walked past. */
    int idle = tcp_connect(port, false);
    char buf[8];
    ck_assert_uint_eq(recv_until_close(idle, buf, sizeof buf, TIMEOUT_MS), 0);
    close(idle);
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 0);
    close(fd);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "connections_idle_closed", 2),
                     2);
    fd = tcp_connect(port, false);
    ck_assert_str_eq(ask(fd, "still here"), "still here");
    own[1] = visit_own_listener(fd);

    /* A reload: the old chains' instances close their handles in
     * destroy(), the new ones open theirs. */
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nadmin_socket = %s\n%s\n"
             "[service s]\nlisten = tcp://127.0.0.1:0 unix://%s/s.sock\n"
             "transform = uppercase | own_handles\nframing = line\n"
             "idle_timeout = 200ms\n",
             dirs, admin, lines, sock_dir);
    morphd_proc_rewrite(&proc, ini);
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    int fresh = -1;
    const char *got = NULL;
    /* a retiring worker process may still take a connection or two */
    for (int i = 0; i < 100; i++) {
        fresh = tcp_connect(port, false);
        got = ask(fresh, "after");
        if (got != NULL && strcmp(got, "AFTER") == 0)
            break;
        close(fresh);
        fresh = -1;
        usleep(20 * 1000);
    }
    ck_assert_int_ge(fresh, 0);
    own[2] = visit_own_listener(fresh);
    own[3] = tcp_connect(port, false); /* open, silent, at the stop */

    /* SIGTERM: the drain walks the connections, then shutdown closes the
     * rest; the plugins' handles are closed by their own destroy(). */
    int status = morphd_proc_stop(&proc);
    ck_assert_msg(status == 0, "morphd exited with %d:\n%s", status,
                  morphd_proc_log(&proc));
    ck_assert_int_eq(morphd_proc_log_count(&proc, "fatal signal"), 0);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "closed with handles open"), 0);
    for (int i = 0; i < 4; i++)
        close(own[i]);
    close(fresh);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", sock_dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(own_handles_with_worker_threads) { served_with("thread"); }
END_TEST

START_TEST(own_handles_with_worker_processes) { served_with("process"); }
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_loop");
    TCase *tc = tcase_create("own_handles");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, own_handles_with_worker_threads);
    tcase_add_test(tc, own_handles_with_worker_processes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
