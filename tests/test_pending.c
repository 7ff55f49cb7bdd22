/* Replies that come later: a plugin that defers (delay.mode = timer) or
 * blocks on the thread pool (delay.mode = sleep), over TCP and UDP, with
 * morphd as a process on loopback. Order per connection, everyone else
 * served meanwhile, clients that leave while their message waits, reload
 * and shutdown with messages in flight, and the bound on UDP messages in
 * flight. Orderings are asserted, not durations. */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 8000

static morphd_proc_t proc;
static char admin[128];

/* Starts morphd with the given services (INI text after [morphd]). */
static void start(const char *plugin_dir, const char *services)
{
    morphd_proc_serve(&proc, plugin_dir, "shutdown_timeout = 5s\n", services,
                      admin, sizeof admin);
}

static void stop(void) { morphd_proc_finish(&proc); }

static int port(const char *svc, const char *proto)
{
    return morphd_proc_need_port(&proc, svc, proto, false);
}

/* Whether fd has something to read within ms. */
static bool readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Waits until a counter reaches `want` (bounded). A message's arrival is
 * waited for on messages_in, which stays: messages_pending goes back to 0
 * once a short delay ends, and a slow machine (valgrind) may miss it. */
static long long wait_stat(const char *svc, const char *counter, long long want)
{
    return morph_stat_wait(admin, svc, counter, want);
}

START_TEST(timer_mode_answers_in_order)
{
    start(PLUGIN_DIR, "[service d]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = delay | uppercase\nframing = line\n"
                      "delay.ms = 100\n");
    int fd = tcp_connect(port("d", "tcp"), false);
    long t0 = now_ms();
    ck_assert_int_eq(send_all(fd, "a\nbb\nccc\n", 9), 0);
    char buf[32] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 9, TIMEOUT_MS), 9);
    ck_assert_str_eq(buf, "A\nBB\nCCC\n");
    /* one at a time: the third waited for the two before it */
    ck_assert_int_ge(now_ms() - t0, 250);
    close(fd);
    ck_assert_int_eq(wait_stat("d", "messages_pending", 0), 0);
    ck_assert_int_eq(morph_plugin_stat(admin, "d", "delay", "calls"), 3);
    ck_assert_int_eq(morph_plugin_stat(admin, "d", "uppercase", "calls"), 3);
    ck_assert_int_ge(morph_plugin_stat(admin, "d", "delay", "time_us"), 250000);
    stop();
}
END_TEST

/* While one client's message waits -- on the loop (timer) or on the pool
 * (sleep) -- another client of the same worker is answered first. */
static void others_served(const char *mode)
{
    char svcs[512];
    snprintf(svcs, sizeof svcs,
             "[service slow]\nlisten = tcp://127.0.0.1:0\ntransform = delay\n"
             "framing = line\ndelay.ms = 1500\ndelay.mode = %s\n\n"
             "[service fast]\nlisten = tcp://127.0.0.1:0\n"
             "transform = uppercase\nframing = line\n", mode);
    start(PLUGIN_DIR, svcs);
    int slow = tcp_connect(port("slow", "tcp"), false);
    int fast = tcp_connect(port("fast", "tcp"), false);
    ck_assert_int_eq(send_all(slow, "wait\n", 5), 0);
    ck_assert_int_eq(wait_stat("slow", "messages_in", 1), 1); /* in flight */
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(send_all(fast, "go\n", 3), 0);
        char buf[8] = "";
        ck_assert_uint_eq(recv_exact(fast, buf, 3, TIMEOUT_MS), 3);
        ck_assert_str_eq(buf, "GO\n");
        ck_assert_msg(!readable(slow, 0), "the slow reply came first");
    }
    char buf[8] = "";
    ck_assert_uint_eq(recv_exact(slow, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "wait\n");
    close(slow);
    close(fast);
    stop();
}

START_TEST(timer_mode_others_served_meanwhile) { others_served("timer"); }
END_TEST

START_TEST(sleep_mode_runs_off_the_loop) { others_served("sleep"); }
END_TEST

START_TEST(udp_replies_later_in_both_modes)
{
    start(PLUGIN_DIR,
          "[service t]\nlisten = udp://127.0.0.1:0\ntransform = delay | "
          "uppercase\ndelay.ms = 50\n\n"
          "[service s]\nlisten = udp://127.0.0.1:0\ntransform = uppercase | "
          "delay\ndelay.ms = 50\ndelay.mode = sleep\n");
    const char *svcs[] = {"t", "s"};
    for (int k = 0; k < 2; k++) {
        int fd = udp_connect(port(svcs[k], "udp"), false, TIMEOUT_MS);
        ck_assert_int_ge(fd, 0);
        /* several at once: each is answered, whatever the order */
        for (int i = 0; i < 8; i++) {
            char m[16];
            int n = snprintf(m, sizeof m, "dgram %d", i);
            ck_assert_int_eq(send(fd, m, (size_t)n, 0), n);
        }
        bool seen[8] = {false};
        for (int i = 0; i < 8; i++) {
            char buf[32] = "";
            ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
            ck_assert_int_eq(n, 7);
            ck_assert_msg(strncmp(buf, "DGRAM ", 6) == 0, "%s", buf);
            seen[buf[6] - '0'] = true;
        }
        for (int i = 0; i < 8; i++)
            ck_assert(seen[i]);
        close(fd);
    }
    ck_assert_int_eq(wait_stat("t", "messages_pending", 0), 0);
    ck_assert_int_eq(wait_stat("s", "messages_pending", 0), 0);
    stop();
}
END_TEST

/* A client that leaves (resets) while its message waits: the plugin's
 * cancel() runs at once (its own counter says so), nothing is left
 * pending, and morphd goes on. Under ASan and valgrind this is also the
 * use-after-free test. */
START_TEST(client_leaves_while_pending)
{
    start(PLUGIN_DIR,
          "[service t]\nlisten = tcp://127.0.0.1:0\ntransform = delay | "
          "uppercase\nframing = line\ndelay.ms = 60000\n\n"
          "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = delay\n"
          "framing = line\ndelay.ms = 300\ndelay.mode = sleep\n");
    for (int i = 0; i < 5; i++) {
        int fd = tcp_connect(port("t", "tcp"), false);
        ck_assert_int_eq(send_all(fd, "x\ny\n", 4), 0); /* y is held back */
        ck_assert_int_eq(wait_stat("t", "bytes_in", 6 * i + 4), 6 * i + 4);
        ck_assert_int_eq(send_all(fd, "z\n", 2), 0); /* read while waiting */
        ck_assert_int_eq(wait_stat("t", "bytes_in", 6 * i + 6), 6 * i + 6);
        close_reset(fd);
    }
    ck_assert_int_eq(wait_stat("t", "messages_pending", 0), 0);
    ck_assert_int_eq(morph_plugin_stat(admin, "t", "delay", "cancelled"), 5);
    /* on the pool: the sleep ends on its own, then the job is freed */
    int fd = tcp_connect(port("s", "tcp"), false);
    ck_assert_int_eq(send_all(fd, "z\n", 2), 0);
    ck_assert_int_eq(wait_stat("s", "messages_in", 1), 1); /* sleeping */
    close_reset(fd);
    ck_assert_int_eq(wait_stat("s", "messages_pending", 0), 0);
    ck_assert_int_eq(wait_stat("s", "connections_open", 0), 0);
    /* still serving */
    fd = tcp_connect(port("s", "tcp"), false);
    ck_assert_int_eq(send_all(fd, "ok\n", 3), 0);
    char buf[8] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 3, TIMEOUT_MS), 3);
    ck_assert_str_eq(buf, "ok\n");
    close(fd);
    stop();
}
END_TEST

/* The textbook client: it sends, half-closes, and waits for the reply;
 * the end of its input does not cancel the message in flight. */
START_TEST(half_close_still_answered)
{
    start(PLUGIN_DIR, "[service d]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = delay | uppercase\nframing = line\n"
                      "delay.ms = 200\n");
    int fd = tcp_connect(port("d", "tcp"), false);
    ck_assert_int_eq(send_all(fd, "one\ntwo", 7), 0);
    shutdown(fd, SHUT_WR);
    char buf[32] = "";
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf - 1, TIMEOUT_MS), 7);
    ck_assert_str_eq(buf, "ONE\nTWO");
    close(fd);
    stop();
}
END_TEST

/* SIGTERM after SIGTERM, every millisecond until morphd has gone: none
 * of them kills it (once libuv's handler was closed at the end of a
 * stop, a SIGTERM met the default action for a moment, and a CI run
 * caught morphd dying of it: status 143). */
START_TEST(repeated_sigterm_never_kills_a_clean_exit)
{
    start(PLUGIN_DIR, "[service d]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = delay\nframing = line\ndelay.ms = 200\n");
    int fd = tcp_connect(port("d", "tcp"), false);
    ck_assert_int_eq(send_all(fd, "late\n", 5), 0);
    ck_assert_int_eq(wait_stat("d", "messages_in", 1), 1); /* read, delayed */
    int status = -1;
    for (int i = 0; i < 5000; i++) {
        if (waitpid(proc.pid, &status, WNOHANG) == proc.pid)
            break;
        kill(proc.pid, SIGTERM);
        usleep(1000);
    }
    proc.pid = 0;
    char buf[8] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 5, TIMEOUT_MS), 5);
    close(fd);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "status %d (a signal: %d)", status,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    morphd_proc_cleanup(&proc);
}
END_TEST

/* SIGTERM waits for a message in flight, up to shutdown_timeout. */
START_TEST(shutdown_waits_for_pending)
{
    start(PLUGIN_DIR, "[service d]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = delay\nframing = line\ndelay.ms = 400\n");
    int fd = tcp_connect(port("d", "tcp"), false);
    ck_assert_int_eq(send_all(fd, "late\n", 5), 0);
    ck_assert_int_eq(wait_stat("d", "messages_in", 1), 1); /* read, delayed */
    kill(proc.pid, SIGTERM);
    char buf[8] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "late\n");
    close(fd);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    morphd_proc_cleanup(&proc);
}
END_TEST

/* ... and past it, cancels: morphd ends although the plugin would wait
 * for a minute. */
START_TEST(shutdown_timeout_cancels_pending)
{
    char ini[1024];
    snprintf(admin, sizeof admin, "/tmp/morph-pending-%d.sock", (int)getpid());
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nshutdown_timeout = 300ms\n"
             "admin_socket = %s\n\n"
             "[service d]\nlisten = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = delay\nframing = line\ndelay.ms = 60000\n",
             PLUGIN_DIR, admin);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    int fd = tcp_connect(port("d", "tcp"), false);
    ck_assert_int_eq(send_all(fd, "never\n", 6), 0);
    int u = udp_connect(port("d", "udp"), false, 1000);
    ck_assert_int_eq(send(u, "never", 5, 0), 5);
    ck_assert_int_eq(wait_stat("d", "messages_pending", 2), 2);
    long t0 = now_ms();
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    ck_assert_int_lt(now_ms() - t0, 5000);
    char *log = morphd_proc_log(&proc);
    ck_assert_msg(strstr(log, "shutdown timeout"), "%s", log);
    free(log);
    close(fd);
    close(u);
    morphd_proc_cleanup(&proc);
}
END_TEST

/* A reload while a message waits: it is answered under the configuration
 * it arrived in; new connections get the new one. */
START_TEST(reload_keeps_pending)
{
    char ini[2048];
    snprintf(admin, sizeof admin, "/tmp/morph-pending-%d.sock", (int)getpid());
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nadmin_socket = %s\n\n[service d]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = delay | uppercase\nframing = line\n"
             "delay.ms = 500\n", PLUGIN_DIR, admin);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    int tp = port("d", "tcp"), up = port("d", "udp");
    int fd = tcp_connect(tp, false);
    int u = udp_connect(up, false, TIMEOUT_MS);
    ck_assert_int_eq(send_all(fd, "old\n", 4), 0);
    ck_assert_int_eq(send(u, "old dgram", 9, 0), 9);
    ck_assert_int_eq(wait_stat("d", "messages_pending", 2), 2);
    /* port 0 again: the same service keeps the ports it has */
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nadmin_socket = %s\n\n[service d]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = reverse\nframing = line\n", PLUGIN_DIR, admin);
    morphd_proc_rewrite(&proc, ini);
    if (morphd_proc_reload(&proc) != 0) {
        char *log = morphd_proc_log(&proc);
        ck_abort_msg("reload failed:\n%s", log);
    }
    char buf[32] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 4, TIMEOUT_MS), 4);
    ck_assert_str_eq(buf, "OLD\n");
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(recv(u, buf, sizeof buf, 0), 9);
    ck_assert_str_eq(buf, "OLD DGRAM");
    int fd2 = tcp_connect(tp, false);
    ck_assert_int_eq(send_all(fd2, "new\n", 4), 0);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_exact(fd2, buf, 4, TIMEOUT_MS), 4);
    ck_assert_str_eq(buf, "wen\n");
    close(fd);
    close(fd2);
    close(u);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    morphd_proc_cleanup(&proc);
}
END_TEST

/* UDP datagrams in flight take at most max_pending_output bytes per
 * listener: a flood past it is refused (counted as errors), the rest is
 * answered correctly. */
START_TEST(udp_in_flight_is_bounded)
{
    start(PLUGIN_DIR, "[service d]\nlisten = udp://127.0.0.1:0\n"
                      "transform = delay\ndelay.ms = 500\n"
                      "max_pending_output = 4K\n");
    int fd = udp_connect(port("d", "udp"), false, 2000);
    char m[200];
    memset(m, 'q', sizeof m);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(send(fd, m, sizeof m, 0), (ssize_t)sizeof m);
    int replies = 0;
    char buf[256];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        ck_assert_int_eq(n, (ssize_t)sizeof m);
        ck_assert(memcmp(buf, m, sizeof m) == 0);
        replies++;
    }
    ck_assert_int_gt(replies, 0);
    ck_assert_int_lt(replies, 50);
    ck_assert_int_eq(morph_stat(admin, "d", "errors"), 50 - replies);
    ck_assert_int_eq(morph_stat(admin, "d", "messages_pending"), 0);
    close(fd);
    stop();
}
END_TEST

START_TEST(stream_framing_with_a_deferring_plugin)
{
    start(PLUGIN_DIR, "[service d]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = delay | uppercase\nframing = stream\n"
                      "delay.ms = 20\n");
    int fd = tcp_connect(port("d", "tcp"), false);
    char want[4096], got[4096];
    size_t total = 0;
    for (int i = 0; i < 20; i++) {
        char chunk[64];
        int n = snprintf(chunk, sizeof chunk, "chunk %02d straße|", i);
        ck_assert_int_eq(send_all(fd, chunk, (size_t)n), 0);
        snprintf(want + total, sizeof want - total, "CHUNK %02d STRASSE|", i);
        total += strlen(want + total);
        usleep(2000);
    }
    ck_assert_uint_eq(recv_exact(fd, got, total, TIMEOUT_MS), total);
    ck_assert_mem_eq(got, want, total);
    close(fd);
    stop();
}
END_TEST

/* A plugin completes one message from inside another's transform, and one
 * inside its own: both are answered, nothing re-enters. */
START_TEST(completion_from_another_message)
{
    start(TEST_PLUGIN_DIR, "[service p]\nlisten = tcp://127.0.0.1:0\n"
                           "transform = pairup\nframing = line\n");
    int a = tcp_connect(port("p", "tcp"), false);
    int b = tcp_connect(port("p", "tcp"), false);
    ck_assert_int_eq(send_all(a, "first\n", 6), 0);
    ck_assert_int_eq(wait_stat("p", "messages_pending", 1), 1);
    ck_assert(!readable(a, 0));
    ck_assert_int_eq(send_all(b, "second\n", 7), 0);
    char buf[32] = "";
    ck_assert_uint_eq(recv_exact(a, buf, 7, TIMEOUT_MS), 7);
    ck_assert_str_eq(buf, "<first\n");
    ck_assert_int_eq(send_all(a, "now\n", 4), 0);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_exact(a, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "=now\n");
    close_reset(b); /* "second" waits: cancelled */
    close(a);
    ck_assert_int_eq(wait_stat("p", "messages_pending", 0), 0);
    stop();
}
END_TEST

START_TEST(defer_without_cancel_is_refused)
{
    start(TEST_PLUGIN_DIR, "[service n]\nlisten = tcp://127.0.0.1:0\n"
                           "transform = nocancel\nframing = line\n");
    int fd = tcp_connect(port("n", "tcp"), false);
    ck_assert_int_eq(send_all(fd, "x\n", 2), 0);
    ck_assert_int_eq(wait_stat("n", "errors", 1), 1);
    char *log = morphd_proc_log(&proc);
    ck_assert_msg(strstr(log, "plugin nocancel: cannot defer"), "%s", log);
    free(log);
    close(fd);
    stop();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pending");
    TCase *tc = tcase_create("pending");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, timer_mode_answers_in_order);
    tcase_add_test(tc, timer_mode_others_served_meanwhile);
    tcase_add_test(tc, sleep_mode_runs_off_the_loop);
    tcase_add_test(tc, udp_replies_later_in_both_modes);
    tcase_add_test(tc, client_leaves_while_pending);
    tcase_add_test(tc, half_close_still_answered);
    tcase_add_test(tc, shutdown_waits_for_pending);
    tcase_add_test(tc, repeated_sigterm_never_kills_a_clean_exit);
    tcase_add_test(tc, shutdown_timeout_cancels_pending);
    tcase_add_test(tc, reload_keeps_pending);
    tcase_add_test(tc, udp_in_flight_is_bounded);
    tcase_add_test(tc, stream_framing_with_a_deferring_plugin);
    tcase_add_test(tc, completion_from_another_message);
    tcase_add_test(tc, defer_without_cancel_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
