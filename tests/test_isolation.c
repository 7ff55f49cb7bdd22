/*
 * isolation = process (issue 14): a crashing or hanging plugin costs one
 * worker process, not the service. Each test runs morphd with worker
 * processes over real sockets and the `crash` test plugin, which crashes
 * its process on "crash" and answers "pid" with the process it runs in.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char admin[128];

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* morphd with `workers` worker processes and service s on TCP and UDP. */
static void start(unsigned workers, const char *morphd_lines,
                  const char *transform, const char *service_lines)
{
    char lines[512], svc[1024];
    snprintf(lines, sizeof lines, "isolation = process\nworkers = %u\n%s",
             workers, morphd_lines);
    bool own_listen = strncmp(service_lines, "listen", 6) == 0;
    snprintf(svc, sizeof svc, "[service s]\n%stransform = %s\nframing = line\n%s",
             own_listen ? "" : "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0\n",
             transform, service_lines);
    char dirs[512];
    snprintf(dirs, sizeof dirs, "%s %s", TEST_PLUGIN_DIR, PLUGIN_DIR);
    morphd_proc_serve(&proc, dirs, lines, svc, admin, sizeof admin);
}

static int tcp_port(void) { return morphd_proc_need_port(&proc, "s", "tcp", false); }
static int udp_port(void) { return morphd_proc_need_port(&proc, "s", "udp", false); }

static int connect_from(const char *src) { return tcp_connect_from(src, tcp_port()); }

static const char *ask(int fd, const char *line)
{
    return ask_line(fd, line, TIMEOUT_MS);
}

static int pid_of(int fd)
{
    const char *r = ask(fd, "pid");
    ck_assert_ptr_nonnull(r);
    return atoi(r + 4);
}

/* The log names how a worker died: its signal and, where the crash logger
 * runs (not under the sanitizers, which take SIGSEGV themselves), the
 * plugin and service. */
static void expect_death_logged(const char *signame)
{
#ifdef MORPH_SANITIZE
    (void)signame;
    ck_assert_int_ge(morphd_proc_log_count(&proc, ") was killed by signal") +
                         morphd_proc_log_count(&proc, ") exited with status"),
                     1);
#else
    char needle[128];
    snprintf(needle, sizeof needle, "(%s) in plugin crash of service s", signame);
    ck_assert_int_ge(morphd_proc_log_count(&proc, needle), 1);
#endif
}

/* Connections on the other worker are untouched by a crash; the crashed
 * worker's connections end; new clients are all served, none refused,
 * while the replacement starts. */
START_TEST(a_crash_costs_only_that_workers_connections)
{
    start(2, "", "crash", "");
    int fds[64], pids[64], n = 0, a = 0, b = 0, pid_a = 0;
    for (int i = 0; i < 200 && n < 64 && (a < 3 || b < 3); i++) {
        int fd = tcp_connect(tcp_port(), false);
        int pid = pid_of(fd);
        if (pid_a == 0)
            pid_a = pid;
        if (pid == pid_a)
            a++;
        else
            b++;
        fds[n] = fd;
        pids[n++] = pid;
    }
    ck_assert_msg(a >= 3 && b >= 3, "connections not spread: %d and %d", a, b);
    int victim = -1;
    for (int i = 0; i < n && victim < 0; i++)
        if (pids[i] == pid_a)
            victim = i;
    ck_assert_ptr_null(ask(fds[victim], "crash")); /* worker a is gone */
    /* new clients meanwhile: all served */
    for (int i = 0; i < 20; i++) {
        int fd = tcp_connect(tcp_port(), false);
        const char *r = ask(fd, "hello");
        ck_assert_msg(r != NULL && strcmp(r, "hello") == 0,
                      "client %d after the crash not served", i);
        close(fd);
    }
    for (int i = 0; i < n; i++) {
        const char *r = ask(fds[i], "still");
        if (pids[i] == pid_a)
            ck_assert_msg(r == NULL, "a connection of the crashed worker "
                          "answered");
        else
            ck_assert_msg(r != NULL && strcmp(r, "still") == 0,
                          "a connection of the other worker was lost");
        close(fds[i]);
    }
    expect_death_logged("SIGSEGV");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "; starting a new one"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* Datagrams sent while the only worker is dead wait in its socket, which
 * the main process holds, and the replacement answers them. */
START_TEST(datagrams_queued_during_a_restart_are_answered)
{
    start(1, "", "crash", "");
    int fd = udp_connect(udp_port(), false, TIMEOUT_MS);
    char buf[64] = "";
    /* two crashes: the second replacement waits 100 ms, and no worker
     * reads the socket meanwhile (datagrams a worker had already read
     * when it crashed go with it) */
    for (int i = 0; i < 2; i++) {
        int t = tcp_connect(tcp_port(), false);
        ck_assert_ptr_nonnull(ask(t, "ping"));
        ck_assert_ptr_null(ask(t, "crash"));
        close(t);
    }
    long t0 = now_ms();
    while (morphd_proc_log_count(&proc, "crash 2 in a row") == 0 &&
           now_ms() - t0 < TIMEOUT_MS)
        usleep(2000);
    for (int i = 0; i < 20; i++) { /* while nobody reads */
        char msg[16];
        int len = snprintf(msg, sizeof msg, "d%02d", i);
        ck_assert_int_eq(send(fd, msg, (size_t)len, 0), len);
    }
    int answered = 0;
    for (int i = 0; i < 20; i++) {
        memset(buf, 0, sizeof buf);
        if (recv(fd, buf, sizeof buf - 1, 0) <= 0)
            break;
        answered += buf[0] == 'd';
    }
    ck_assert_int_eq(answered, 20);
    /* and it was the replacement that answered them, after its back-off */
    ck_assert_int_ge(now_ms() - t0, 50);
    close(fd);
    expect_death_logged("SIGSEGV");
    morphd_proc_finish(&proc);
}
END_TEST

/* Five crashes in a row: each is replaced, the first at once, then after
 * 100, 200, 400 and 800 ms -- counted and logged, never a busy loop. */
START_TEST(crash_loops_back_off)
{
    start(1, "", "crash", "");
    long t0 = now_ms();
    for (int i = 0; i < 5; i++) {
        int fd = -1;
        const char *r = NULL;
        /* the replacement may not be there yet: its socket waits */
        fd = tcp_connect(tcp_port(), false);
        r = ask(fd, "ping");
        ck_assert_msg(r != NULL, "not served before crash %d", i + 1);
        ck_assert_ptr_null(ask(fd, "crash"));
        close(fd);
    }
    int fd = tcp_connect(tcp_port(), false);
    ck_assert_str_eq(ask(fd, "back"), "back");
    close(fd);
    long took = now_ms() - t0;
    ck_assert_msg(took >= 100 + 200 + 400 + 800, "5 crashes replaced in %ld "
                  "ms: no back-off", took);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "crash 5 in a row: starting "
                                           "a new one in 800 ms"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "crash 2 in a row: starting "
                                           "a new one in 100 ms"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* After a worker dies, what it held is taken out of the shared counters
 * (connections_open, and the per-source counts of
 * max_connections_per_source), and the rest carry on counting. */
/* GET /metrics from the main process (metrics_listen on port 0: the port
 * from the log); the body (static), or "" */
static const char *scrape(void)
{
    static char body[65536];
    body[0] = '\0';
    char *log = morphd_proc_log(&proc);
    char *at = strstr(log, "metrics on http://127.0.0.1:");
    int port = at ? atoi(at + strlen("metrics on http://127.0.0.1:")) : -1;
    free(log);
    ck_assert_int_gt(port, 0);
    int fd = tcp_connect(port, false);
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    ck_assert_int_eq(send_all(fd, req, strlen(req)), 0);
    size_t n = recv_until_close(fd, body, sizeof body - 1, TIMEOUT_MS);
    body[n] = '\0';
    close(fd);
    return body;
}

START_TEST(stats_after_a_restart)
{
    start(1, "metrics_listen = http://127.0.0.1:0\n", "crash",
          "max_connections_per_source = 2\n");
    int a = connect_from("127.0.0.1"), b = connect_from("127.0.0.1");
    ck_assert_str_eq(ask(a, "one"), "one");
    ck_assert_str_eq(ask(b, "two"), "two");
    ck_assert_int_eq(morph_stat(admin, "s", "connections_open"), 2);
    int c = connect_from("127.0.0.1"); /* a third from the same source */
    ck_assert_ptr_null(ask(c, "three"));
    close(c);
    int d = connect_from("127.0.0.2");
    ck_assert_ptr_null(ask(d, "crash"));
    close(d);
    ck_assert_ptr_null(ask(a, "gone")); /* died with the worker */
    ck_assert_ptr_null(ask(b, "gone"));
    close(a);
    close(b);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "connections_open", 0), 0);
    /* 127.0.0.1 may have two again: the dead worker's are forgotten */
    a = connect_from("127.0.0.1");
    b = connect_from("127.0.0.1");
    ck_assert_str_eq(ask(a, "x"), "x");
    ck_assert_str_eq(ask(b, "y"), "y");
    ck_assert_int_eq(morph_stat(admin, "s", "connections_open"), 2);
    ck_assert_int_eq(morph_stat(admin, "s", "messages_in"), 2 + 1 + 2);
    ck_assert_int_eq(morph_stat(admin, "s", "connections_rejected"), 1);
    /* /metrics, served by the main process, sums the same shared counters
     * and counts the replacement */
    const char *m = scrape();
    ck_assert_msg(strstr(m, "morph_worker_restarts_total 1\n") &&
                      strstr(m, "morph_messages_in_total{service=\"s\"} 5\n") &&
                      strstr(m, "morph_connections_open{service=\"s\"} 2\n"),
                  "%s", m);
    close(a);
    close(b);
    morphd_proc_finish(&proc);
}
END_TEST

/* SIGHUP: new workers start on the new configuration; a connection of an
 * old worker keeps its chain until it ends, new ones get the new chain. A
 * broken file, and a plugin that crashes at start, leave the old workers
 * serving. */
/* The port of the endpoint on `host` morphd logged (-1: none). */
static int port_on(const char *host)
{
    char *log = morphd_proc_log(&proc), needle[64];
    snprintf(needle, sizeof needle, "listening on tcp://%s:", host);
    char *at = strstr(log, needle);
    int port = at ? atoi(at + strlen(needle)) : -1;
    free(log);
    return port;
}

START_TEST(reload_replaces_the_workers)
{
    start(2, "", "crash", "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0 "
                          "tcp://127.0.0.3:0\n");
    int gone_port = port_on("127.0.0.3");
    ck_assert_int_gt(gone_port, 0);
    int old = tcp_connect(tcp_port(), false);
    ck_assert_str_eq(ask(old, "abc"), "abc");
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s %s\nadmin_socket = %s\n"
             "isolation = process\nworkers = 2\n\n[service s]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = crash | uppercase\nframing = line\n",
             TEST_PLUGIN_DIR, PLUGIN_DIR, admin);
    morphd_proc_rewrite(&proc, ini);
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    ck_assert_str_eq(ask(old, "abc"), "abc"); /* its worker drains */
    /* an endpoint the new file dropped is closed -- once the old workers
     * have taken their SIGUSR2, so within moments -- and not left
     * listening in a worker forked while it was still open */
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)gone_port)};
    inet_pton(AF_INET, "127.0.0.3", &to.sin_addr);
    bool refused = false;
    for (int i = 0; i < 200 && !refused; i++) {
        int probe = socket(AF_INET, SOCK_STREAM, 0);
        refused = connect(probe, (struct sockaddr *)&to, sizeof to) != 0;
        close(probe);
        if (!refused)
            usleep(10000);
    }
    ck_assert_msg(refused, "the dropped endpoint still takes connections");
    for (int i = 0; i < 10; i++) {
        int fd = tcp_connect(tcp_port(), false);
        ck_assert_str_eq(ask(fd, "abc"), "ABC");
        close(fd);
    }
    close(old);

    /* a plugin that crashes its worker at start: the reload fails */
    char bad[2048];
    snprintf(bad, sizeof bad,
             "[morphd]\nplugin_dir = %s %s\nadmin_socket = %s\n"
             "isolation = process\nworkers = 2\n\n[service s]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = crash_create\nframing = line\n",
             TEST_PLUGIN_DIR, PLUGIN_DIR, admin);
    morphd_proc_rewrite(&proc, bad);
    ck_assert_int_eq(morphd_proc_reload(&proc), -1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "the new workers did not "
                                           "start"), 1);
    for (int i = 0; i < 10; i++) {
        int fd = tcp_connect(tcp_port(), false);
        ck_assert_str_eq(ask(fd, "abc"), "ABC");
        close(fd);
    }
    /* a file that does not parse */
    morphd_proc_rewrite(&proc, "[service s\n");
    ck_assert_int_eq(morphd_proc_reload(&proc), -1);
    int fd = tcp_connect(tcp_port(), false);
    ck_assert_str_eq(ask(fd, "abc"), "ABC");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* The workers of generations before the current one (hold_both_workers):
 * READY=1 of a reload can come before they stop accepting, so the first
 * connections after it may still reach one of them. */
static int retired[16];
static int n_retired;

static bool is_retired(int pid)
{
    for (int i = 0; i < n_retired; i++)
        if (retired[i] == pid)
            return true;
    return false;
}

/* Opens connections until both workers of the current generation hold
 * one (so that they stay, retired, after a reload); returns how many.
 * Connections that reached a retired worker are held too. */
static int hold_both_workers(int *fds, int max)
{
    int n = 0, pids[2] = {0, 0};
    while (n < max && (pids[0] == 0 || pids[1] == 0)) {
        fds[n] = tcp_connect(tcp_port(), false);
        int pid = pid_of(fds[n++]);
        if (is_retired(pid))
            continue;
        if (pids[0] == 0)
            pids[0] = pid;
        else if (pid != pids[0])
            pids[1] = pid;
    }
    ck_assert_msg(pids[1] != 0, "one worker took %d connections", n);
    ck_assert_int_le(n_retired + 2, (int)(sizeof retired / sizeof *retired));
    retired[n_retired++] = pids[0];
    retired[n_retired++] = pids[1];
    return n;
}

/* Each worker process counts the messages it serves in a lane of its own
 * in the shared mapping (no locked instruction per message); morph stats
 * and /metrics sum the lanes of every slot, those of workers a reload
 * retired included. */
START_TEST(counters_of_every_worker_process_add_up)
{
    start(2, "metrics_listen = http://127.0.0.1:0\n", "crash", "");
    n_retired = 0;
    int fds[2][40], n[2];
    n[0] = hold_both_workers(fds[0], 40); /* one "pid" message each */
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    n[1] = hold_both_workers(fds[1], 40);
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < n[g]; i++) {
            ck_assert_str_eq(ask(fds[g][i], "abc"), "abc");
            close(fds[g][i]);
        }
    long long msgs = 2LL * (n[0] + n[1]);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "connections_open", 0), 0);
    ck_assert_int_eq(morph_stat(admin, "s", "messages_in"), msgs);
    ck_assert_int_eq(morph_stat(admin, "s", "messages_out"), msgs);
    ck_assert_int_eq(morph_stat(admin, "s", "bytes_in"), msgs * 4);
    char want[96];
    snprintf(want, sizeof want, "morph_messages_in_total{service=\"s\"} %lld\n", msgs);
    const char *m = scrape();
    ck_assert_msg(strstr(m, want) != NULL, "%s", m);
    morphd_proc_finish(&proc);
}
END_TEST

/* Issue 21: a reload without a free worker slot slept 2 s per worker in
 * the main process: morph stats took 3.96 s, SIGTERM 4.04 s. Now the
 * reload waits for slots on a timer: morph stats is answered while it
 * waits, and the reload then fails, saying why. */
START_TEST(a_reload_waiting_for_slots_does_not_stop_the_main_loop)
{
    start(2, "", "crash", "");
    n_retired = 0;
    int fds[4][40], n[4];
    n[0] = hold_both_workers(fds[0], 40);
    for (int g = 1; g < 4; g++) { /* 2 workers x 4 generations: 8 slots */
        ck_assert_int_eq(morphd_proc_reload(&proc), 0);
        n[g] = hold_both_workers(fds[g], 40);
    }
    int outcomes = morphd_proc_notified(&proc, "X_MORPHD_RELOAD=", 0, 0);
    ck_assert_int_eq(kill(proc.pid, SIGHUP), 0);
    /* a moment into the 2 s the reload waits for slots: nothing says it
     * waits (RELOADING=1 comes once it has them), and that is the point */
    usleep(50 * 1000);
    long long in = morph_stat(admin, "s", "messages_in"); /* answered... */
    ck_assert_int_ge(in, 8);
    /* ...before the reload gave up (it waits up to 2 s for slots) */
    ck_assert_int_eq(morphd_proc_log_count(&proc, "no free worker slot"), 0);
    /* the reload's outcome (READY=1 says it), however slow the machine */
    ck_assert_int_eq(morphd_proc_notified(&proc, "X_MORPHD_RELOAD=", outcomes + 1,
                                          10000), outcomes + 1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "no free worker slot"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "reload failed"), 1);
    int fd = tcp_connect(tcp_port(), false); /* the last generation serves */
    ck_assert_str_eq(ask(fd, "abc"), "abc");
    close(fd);
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < n[g]; i++)
            close(fds[g][i]);
    morphd_proc_finish(&proc);
}
END_TEST

/* A second SIGTERM while the main process exits (systemd's, after its
 * first; a test's stop) must not turn a clean exit into "killed by
 * SIGTERM": closing its signal handles restored the default action. */
START_TEST(sigterms_while_exiting_leave_a_clean_exit)
{
    for (int round = 0; round < 3; round++) {
        start(1, "", "uppercase", "");
        pid_t pid = proc.pid;
        int status = -1;
        long deadline = now_ms() + TIMEOUT_MS;
        for (unsigned k = 0; now_ms() < deadline; k++) { /* a storm of them */
            kill(pid, SIGTERM);
            if (waitpid(pid, &status, WNOHANG) == pid)
                break;
            if (k > 100000)
                usleep(1000);
        }
        proc.pid = 0;
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "round %d: status %d (signal %d)", round, status,
                      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        morphd_proc_cleanup(&proc);
    }
}
END_TEST

/* Issue 21: a worker stopped with SIGSTOP for 8 s went unnoticed, and its
 * share of new connections timed out. The main process sees that its
 * loop has not turned (a heartbeat in shared memory) for plugin_timeout
 * and a second more, kills it, and a new worker serves. */
START_TEST(a_stopped_worker_is_replaced)
{
    start(2, "plugin_timeout = 2s\n", "crash", "");
    int fd = tcp_connect(tcp_port(), false);
    int victim = pid_of(fd);
    close(fd);
    ck_assert_int_eq(kill(victim, SIGSTOP), 0);
    char want[64];
    snprintf(want, sizeof want, "(pid %d) has not turned its loop", victim);
    /* plugin_timeout and a second; generous for a loaded sanitizer run */
    for (int i = 0; i < 300 && morphd_proc_log_count(&proc, want) == 0; i++)
        usleep(50 * 1000);
    ck_assert_msg(morphd_proc_log_count(&proc, want) == 1, "%s not in:\n%s",
                  want, morphd_proc_log(&proc));
    /* every new connection is served again, none by the stopped one */
    for (int i = 0; i < 100 && morph_stat(admin, "s", "connections_open") >= 0; i++) {
        if (morphd_proc_log_count(&proc, "worker process serving") >= 3)
            break;
        usleep(50 * 1000);
    }
    for (int i = 0; i < 20; i++) {
        fd = tcp_connect(tcp_port(), false);
        ck_assert_int_ne(pid_of(fd), victim);
        close(fd);
    }
    morphd_proc_finish(&proc);
}
END_TEST

/* SIGTERM while a replacement waits out its back-off: morphd exits 0 at
 * once, starting nothing more. */
START_TEST(sigterm_during_a_restart)
{
    start(1, "", "crash", "");
    for (int i = 0; i < 3; i++) { /* the third waits 200 ms */
        int fd = tcp_connect(tcp_port(), false);
        ck_assert_ptr_nonnull(ask(fd, "ping"));
        ck_assert_ptr_null(ask(fd, "crash"));
        close(fd);
    }
    long t0 = now_ms();
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    ck_assert_int_lt(now_ms() - t0, 3000);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "morphd stopped"), 1);
    morphd_proc_cleanup(&proc);
}
END_TEST

/* A plugin call that never returns: after plugin_timeout the worker is
 * aborted, logged with the plugin, and replaced; the other worker serves
 * throughout. */
START_TEST(a_hung_plugin_costs_one_worker)
{
    start(2, "plugin_timeout = 2s\n", "hang", "");
    int hung = tcp_connect(tcp_port(), false);
    ck_assert_int_eq(send_all(hung, "hang\n", 5), 0);
    long t0 = now_ms();
    int served = 0, queued = 0;
    /* rounds of 8 clients at once: those the kernel gives the stuck
     * worker's socket wait there (for its replacement), the others are
     * served at once */
    while (now_ms() - t0 < 8000 &&
           morphd_proc_log_count(&proc, "; starting a new one") == 0) {
        int fds[8];
        for (int i = 0; i < 8; i++) {
            fds[i] = tcp_connect(tcp_port(), false);
            ck_assert_int_eq(send_all(fds[i], "ok\n", 3), 0);
        }
        for (int i = 0; i < 8; i++) {
            char b[4] = "";
            if (recv_exact(fds[i], b, 3, 500) == 3)
                served++;
            else
                queued++;
            close(fds[i]);
        }
    }
    ck_assert_int_ge(morphd_proc_log_count(&proc, "watchdog: plugin hang of "
                                           "service s has not returned"), 1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "aborting this worker "
                                           "process"), 1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "in plugin hang of service s; "
                                           "starting a new one"), 1);
    ck_assert_msg(served > 0, "nobody served while one worker hung "
                  "(%d waited)", queued);
    close(hung);
    for (int i = 0; i < 10; i++) { /* both workers serve again */
        int fd = tcp_connect(tcp_port(), false);
        ck_assert_str_eq(ask(fd, "fine"), "fine");
        close(fd);
    }
    morphd_proc_finish(&proc);
}
END_TEST

/* shutdown_timeout is a hard limit with worker processes too: a worker
 * stuck in a plugin call (the watchdog off) is killed 1.5 s after it, and
 * morphd exits 1, as with threads. */
START_TEST(sigterm_ends_morphd_despite_a_stuck_worker)
{
    start(1, "plugin_timeout = 0\nshutdown_timeout = 1s\n", "hang", "");
    int fd = tcp_connect(tcp_port(), false);
    ck_assert_int_eq(send_all(fd, "hang\n", 5), 0);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "messages_in", 1), 1); /* in its call */
    long t0 = now_ms();
    ck_assert_int_eq(morphd_proc_stop(&proc), 1);
    long took = now_ms() - t0;
    ck_assert_msg(took >= 2000 && took < 6000, "stopped in %ld ms", took);
    /* the main process kills it, and says so with the limit */
    ck_assert_int_ge(morphd_proc_log_count(&proc, "after SIGTERM "
                                           "(shutdown_timeout = 1000 ms)"), 1);
    close(fd);
    morphd_proc_cleanup(&proc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("isolation");
    TCase *tc = tcase_create("process");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_crash_costs_only_that_workers_connections);
    tcase_add_test(tc, datagrams_queued_during_a_restart_are_answered);
    tcase_add_test(tc, crash_loops_back_off);
    tcase_add_test(tc, stats_after_a_restart);
    tcase_add_test(tc, reload_replaces_the_workers);
    tcase_add_test(tc, counters_of_every_worker_process_add_up);
    tcase_add_test(tc, a_reload_waiting_for_slots_does_not_stop_the_main_loop);
    tcase_add_test(tc, sigterms_while_exiting_leave_a_clean_exit);
    tcase_add_test(tc, a_stopped_worker_is_replaced);
    tcase_add_test(tc, sigterm_during_a_restart);
    tcase_add_test(tc, a_hung_plugin_costs_one_worker);
    tcase_add_test(tc, sigterm_ends_morphd_despite_a_stuck_worker);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
