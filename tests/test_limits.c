/* Per-service limits and counters, with real sockets: max_connections,
 * max_connections_per_source, idle_timeout, thousands of connections, and
 * the stats read by `morph stats` and written on SIGUSR1. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "harness.h"
#include "net/proxy_protocol.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char admin_path[128];

static void teardown(void)
{
    morphd_proc_cleanup(&proc);
    unlink(admin_path);
}

static void start(const char *service_lines)
{
    snprintf(admin_path, sizeof admin_path, "/tmp/morph-admin-%d.sock",
             (int)getpid());
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nadmin_socket = %s\n\n[service s]\n"
             "listen = tcp://127.0.0.1:0 tcp://[::1]:0 udp://127.0.0.1:0\n"
             "transform = uppercase\n%s",
             PLUGIN_DIR, admin_path, service_lines);
    if (morphd_proc_start(&proc, ini) != 0)
        ck_abort_msg("morphd did not start:\n%s", morphd_proc_log(&proc));
}

static int port(bool v6) { return morphd_proc_port(&proc, "s", "tcp", v6); }

/* A soft open-file limit below what max_connections needs is raised, up
 * to the hard one (prlimit sets both for morphd alone); what is still
 * short is a warning at start. */
START_TEST(open_file_limit_is_raised_or_reported)
{
    setenv("MORPH_TEST_WRAPPER", "prlimit --nofile=256:5000", 1);
    start("max_connections = 1000\n"); /* needs 1000 + listeners + 64 */
    unsetenv("MORPH_TEST_WRAPPER");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "raised the open-file limit "
                                                  "from 256 to 1067"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "open files: the limit is"), 0);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    morphd_proc_cleanup(&proc);

    setenv("MORPH_TEST_WRAPPER", "prlimit --nofile=256:512", 1);
    start("max_connections = 1000\n");
    unsetenv("MORPH_TEST_WRAPPER");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "raised the open-file limit "
                                                  "from 256 to 512"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "open files: the limit is 512, "
                                                  "and the services may need 1067"), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* Issue 21: two services with default settings warned about open files
 * (20,066 > 20,000). A default max_connections is a ceiling nobody chose:
 * the limit is raised towards it, and what is short is an info line. */
START_TEST(defaults_do_not_warn_about_open_files)
{
    setenv("MORPH_TEST_WRAPPER", "prlimit --nofile=1024:20000", 1);
    const char *ini_fmt = "[morphd]\nplugin_dir = %s\n"
                          "[service a]\nlisten = tcp://127.0.0.1:0\ntransform = echo\n"
                          "[service b]\nlisten = tcp://127.0.0.1:0\ntransform = echo\n";
    char ini[512];
    snprintf(ini, sizeof ini, ini_fmt, PLUGIN_DIR);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    unsetenv("MORPH_TEST_WRAPPER");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "raised the open-file limit "
                                                  "from 1024 to 20000"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "warn: open files"), 0);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "info: open files: the limit "
                                                  "is 20000, below the 20066"), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* A live connection answers; a refused one is closed at once (EOF). */
static bool answers(int fd)
{
    char buf[8] = "";
    if (send_all(fd, "ok", 2) != 0)
        return false;
    return recv_exact(fd, buf, 2, TIMEOUT_MS) == 2 && strcmp(buf, "OK") == 0;
}

static bool closed_by_server(int fd)
{
    char buf[8];
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, TIMEOUT_MS) == 1 && recv(fd, buf, sizeof buf, 0) <= 0;
}

/* The value of a counter of service s, from `morph stats --json`. */
static long long stat_of(const char *counter)
{
    return morph_stat(admin_path, "s", counter);
}

START_TEST(max_connections_refuses_new_and_keeps_old)
{
    start("max_connections = 3\n");
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = tcp_connect(port(false), false);
        ck_assert(answers(fds[i]));
    }
    int extra = tcp_connect(port(false), false);
    ck_assert(closed_by_server(extra));
    close(extra);
    for (int i = 0; i < 3; i++)
        ck_assert(answers(fds[i])); /* untouched */
    ck_assert_int_eq(stat_of("connections_rejected"), 1);
    /* issue 14, hole 9: a rejected connection is not also accepted */
    ck_assert_int_eq(stat_of("connections_accepted"), 3);
    ck_assert_int_eq(stat_of("connections_open"), 3);
    close(fds[0]);
    /* room again once one has closed (wait for morphd to see it) */
    for (int i = 0; i < 100 && stat_of("connections_open") != 2; i++)
        usleep(10000);
    int again = tcp_connect(port(false), false);
    ck_assert(answers(again));
    close(again);
    close(fds[1]);
    close(fds[2]);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

START_TEST(max_connections_per_source)
{
    start("max_connections_per_source = 2\n");
    int a = tcp_connect(port(false), false), b = tcp_connect(port(false), false);
    ck_assert(answers(a) && answers(b));
    int c = tcp_connect(port(false), false);
    ck_assert(closed_by_server(c));
    close(c);
    /* ::1 is another source address */
    int v6 = tcp_connect(port(true), true);
    ck_assert(answers(v6));
    ck_assert_int_eq(stat_of("connections_rejected"), 1);
    close(a);
    close(b);
    close(v6);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* rate_per_source: a source over its rate is refused, counted, and other
 * sources are not affected; the burst is the rate's N by default. */
START_TEST(rate_per_source_tcp)
{
    start("rate_per_source = 3/s\n");
    int ok = 0, refused = 0;
    for (int i = 0; i < 8; i++) {
        int fd = tcp_connect(port(false), false);
        if (answers(fd))
            ok++;
        else
            refused++;
        close(fd);
    }
    /* the burst of 3, and at most one more token if the loop was slow */
    ck_assert_msg(ok >= 3 && ok <= 4, "%d answered", ok);
    ck_assert_int_eq(stat_of("rate_limited"), refused);
    /* ::1 is another source: a bucket of its own */
    int v6 = tcp_connect(port(true), true);
    ck_assert(answers(v6));
    close(v6);
    /* and a quiet second refills the first */
    usleep(1100 * 1000);
    int fd = tcp_connect(port(false), false);
    ck_assert(answers(fd));
    close(fd);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* A datagram from `src` (through a PROXY v2 header) with `msg`. */
static size_t proxied_datagram(unsigned char *buf, uint32_t src,
                               const char *msg)
{
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(1000)};
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(12000)};
    s.sin_addr.s_addr = htonl(src);
    d.sin_addr.s_addr = htonl(0x7f000001);
    size_t n = morphd_proxy_write_v2(buf, 64, (struct sockaddr *)&s,
                                     (struct sockaddr *)&d, SOCK_DGRAM);
    memcpy(buf + n, msg, strlen(msg));
    return n + strlen(msg);
}

/* 100,000 distinct clients through a balancer: the buckets' memory stays
 * bounded (a table of fixed size), and the rate still holds for a client
 * seen after them all. */
START_TEST(rate_per_source_bounded_by_100000_sources)
{
    start("proxy_protocol = v2\nproxy_from = 127.0.0.1\n"
          "rate_per_source = 1/s\n");
    int uport = morphd_proc_port(&proc, "s", "udp", false);
    int fd = udp_connect(uport, false, 1000);
    unsigned char d[128];
    size_t n = proxied_datagram(d, 0x0a000001, "warm up");
    ck_assert_int_eq(send(fd, d, n, 0), (ssize_t)n);
    char reply[64];
    ck_assert_int_gt(recv(fd, reply, sizeof reply, 0), 0);
    long rss0 = morphd_proc_rss_kib(&proc);
    /* Distinct sources until morphd has read 100,000 of them (the kernel
     * may drop some datagrams on a busy machine; each source is new, so
     * proxy_headers counts distinct sources), in paced batches. */
    const long long total = 100000;
    long long seen = 0;
    uint32_t next = 0;
    while (seen < total + 1 && next < 3 * total) {
        for (int k = 0; k < 5000; k++, next++) {
            n = proxied_datagram(d, 0x0b000000 + next, "x");
            send(fd, d, n, 0); /* the replies are not read: the kernel drops */
            if (k % 250 == 249)
                usleep(1000);
        }
        usleep(20000);
        seen = stat_of("proxy_headers");
    }
    ck_assert_int_ge(seen, total + 1);
    long rss1 = morphd_proc_rss_kib(&proc);
    printf("rate_per_source: %lld distinct sources; morphd RSS %ld -> %ld "
           "KiB\n", seen, rss0, rss1);
    ck_assert_msg(rss1 - rss0 < 4096, "RSS grew from %ld to %ld KiB", rss0,
                  rss1);
    close(fd);

    /* the rate still holds: a new client gets one datagram through, not
     * five, and another is not affected */
    fd = udp_connect(uport, false, 300);
    long long limited = stat_of("rate_limited");
    for (int i = 0; i < 5; i++) {
        n = proxied_datagram(d, 0x0c000001, "again");
        send(fd, d, n, 0);
    }
    int replies = 0;
    while (recv(fd, reply, sizeof reply, 0) > 0)
        replies++;
    ck_assert_int_eq(replies, 1);
    ck_assert_int_eq(stat_of("rate_limited"), limited + 4);
    n = proxied_datagram(d, 0x0c000002, "other");
    send(fd, d, n, 0);
    ck_assert_int_gt(recv(fd, reply, sizeof reply, 0), 0);
    close(fd);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* udp_receive_buffer beyond what the kernel grants (net.core.rmem_max,
 * which only CAP_NET_ADMIN may pass: taken from a root morphd here) is
 * reported with what it got; one within it is not. */
START_TEST(udp_receive_buffer_reported_when_capped)
{
    if (geteuid() == 0)
        setenv("MORPH_TEST_WRAPPER", "setpriv --bounding-set -net_admin", 1);
    start("udp_receive_buffer = 512M\n");
    unsetenv("MORPH_TEST_WRAPPER");
    ck_assert_msg(morphd_proc_log_count(&proc, "udp_receive_buffer = 536870912, "
                                               "but the kernel gave ") == 1,
                  "%s", morphd_proc_log(&proc));
    ck_assert_int_eq(morphd_proc_log_count(&proc, "net.core.rmem_max = "), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    start("udp_receive_buffer = 64K\n");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "but the kernel gave"), 0);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

static long now_ms(void);

static int admin_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Issue 14, hole 8: out of descriptors, connections were dropped unseen
 * (by libuv's reserve-descriptor trick). Now the last 32 descriptors are
 * kept: a connection that would take one is closed at once, counted in
 * connections_dropped and logged (once per 10 s); the connections held
 * are served throughout, and new ones are once descriptors are free. */
/* The connections the log's "out of file descriptors" lines say were
 * dropped, added up. */
static long long dropped_in_log(void)
{
    char *log = morphd_proc_log(&proc);
    long long sum = 0;
    for (char *p = log; (p = strstr(p, "out of file descriptors")) != NULL;) {
        char *d = strstr(p, "dropped ");
        if (d == NULL)
            break;
        sum += strtoll(d + 8, NULL, 10);
        p = d + 8;
    }
    free(log);
    return sum;
}

START_TEST(descriptor_exhaustion_is_counted_and_logged)
{
    setenv("MORPH_TEST_WRAPPER", "prlimit --nofile=128:128", 1);
    start("");
    unsetenv("MORPH_TEST_WRAPPER");
    enum { N = 150 };
    int fds[N], served = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = tcp_connect(port(false), false);
        ck_assert_int_ge(fds[i], 0);
        if (answers(fds[i])) {
            served++;
        } else {
            ck_assert(closed_by_server(fds[i]));
            refused++;
            close(fds[i]);
            fds[i] = -1;
        }
    }
    ck_assert_int_gt(served, 40);
    ck_assert_int_gt(refused, 20);
    for (int i = 0; i < N; i++) /* the held ones are still served */
        if (fds[i] >= 0)
            ck_assert(answers(fds[i]));
    ck_assert_int_eq(stat_of("connections_dropped"), refused);
    ck_assert_int_eq(stat_of("connections_accepted"), served);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "out of file descriptors "
                                           "(limit 128, the last 32 kept in "
                                           "reserve)"), 1);
    /* Issue 21: the burst's total is logged when its 10 s window ends,
     * though no drop follows (it said 1 of 199): the lines add up to the
     * counter */
    long long logged = 0;
    for (long t0 = now_ms(); now_ms() - t0 < 15000; usleep(100000))
        if ((logged = dropped_in_log()) == refused)
            break;
    ck_assert_int_eq(logged, refused);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "out of file descriptors"), 2);
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    for (int i = 0; i < 200 && stat_of("connections_open") != 0; i++)
        usleep(10000);
    int fd = tcp_connect(port(false), false);
    ck_assert(answers(fd));
    close(fd);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* Issue 14, hole 2: 400 admin clients that never send, under ulimit -n
 * 256, pinned every descriptor and the TCP service reset new clients. Now
 * at most 8 are kept, each for 2 s: the service answers throughout, the
 * silent ones are closed, and `morph stats` works again after them. */
START_TEST(silent_admin_clients_cannot_starve_the_service)
{
    setenv("MORPH_TEST_WRAPPER", "prlimit --nofile=256:256", 1);
    start("");
    unsetenv("MORPH_TEST_WRAPPER");
    int silent[400];
    for (int i = 0; i < 400; i++)
        silent[i] = admin_connect(admin_path); /* -1 when the queue is full */
    for (int i = 0; i < 40; i++) {
        int fd = tcp_connect(port(false), false);
        ck_assert_msg(answers(fd), "TCP client %d not served while the admin "
                      "socket was flooded", i);
        close(fd);
    }
    long t0 = now_ms();
    for (int i = 0; i < 400; i++) {
        if (silent[i] < 0)
            continue;
        char b;
        struct pollfd pf = {silent[i], POLLIN, 0};
        ck_assert_msg(poll(&pf, 1, 5000) == 1 && recv(silent[i], &b, 1, 0) <= 0,
                      "admin client %d still held", i);
        close(silent[i]);
    }
    ck_assert_int_le(now_ms() - t0, 4000);
    ck_assert_int_ge(stat_of("messages_in"), 40); /* morph stats answers */
    ck_assert_int_eq(morphd_proc_log_count(&proc, "clients at once already"), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* Issue 21: 12 silent admin clients that reconnect as soon as they are
 * closed made 20 of 20 `morph stats` fail over 10 s. A request that has
 * arrived is served before a client that has said nothing: the oldest
 * silent one makes room. */
START_TEST(silent_reconnecting_admin_clients_cannot_block_morph_stats)
{
    start("");
    pid_t pest = fork();
    ck_assert_int_ge(pest, 0);
    if (pest == 0) { /* 12 silent clients, each reconnected once closed */
        int fds[12];
        for (int i = 0; i < 12; i++)
            fds[i] = admin_connect(admin_path);
        long t0 = now_ms();
        while (now_ms() - t0 < 20000 && getppid() != 1) {
            for (int i = 0; i < 12; i++) {
                char b;
                struct pollfd p = {.fd = fds[i], .events = POLLIN};
                if (fds[i] >= 0 && (poll(&p, 1, 0) == 0 ||
                                    (recv(fds[i], &b, 1, MSG_DONTWAIT) < 0 &&
                                     errno == EAGAIN)))
                    continue; /* still held */
                if (fds[i] >= 0)
                    close(fds[i]);
                fds[i] = admin_connect(admin_path);
            }
            usleep(1000);
        }
        _exit(0);
    }
    usleep(300 * 1000); /* the slots are taken */
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        const char *argv[] = {MORPH_BIN, "stats", "-s", admin_path, NULL};
        char *out = NULL, *err = NULL;
        if (run_program(argv, "", 0, &out, NULL, &err) == 0 && strstr(out, "s"))
            ok++;
        free(out);
        free(err);
        usleep(100 * 1000);
    }
    kill(pest, SIGKILL);
    waitpid(pest, NULL, 0);
    ck_assert_int_eq(ok, 20);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "closed to make room"), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* The admin socket belongs to the user morphd switches to (so `morph
 * stats` works for its group), and is removed at exit -- which, in a
 * sticky folder such as /tmp, needs it to be that user's. */
START_TEST(admin_socket_belongs_to_the_user_and_goes_at_exit)
{
    snprintf(admin_path, sizeof admin_path, "/tmp/morph-admin-u-%d.sock",
             (int)getpid());
    struct passwd *pw = getpwnam("nobody");
    bool root = geteuid() == 0 && pw != NULL;
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nadmin_socket = %s\n%s\n"
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n",
             PLUGIN_DIR, admin_path, root ? "user = nobody" : "");
    const char *args[] = {"--as-is", NULL};
    const char *const *a = root ? args : NULL;
    if (morphd_proc_start_args(&proc, ini, a) != 0)
        ck_abort_msg("morphd did not start:\n%s", morphd_proc_log(&proc));
    struct stat sb;
    ck_assert_int_eq(stat(admin_path, &sb), 0);
    ck_assert_uint_eq(sb.st_uid, root ? pw->pw_uid : geteuid());
    ck_assert_uint_eq(sb.st_mode & 0777, 0660);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    ck_assert_msg(stat(admin_path, &sb) != 0, "%s left behind at exit",
                  admin_path);
}
END_TEST

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(idle_connections_are_closed_active_ones_are_not)
{
    start("idle_timeout = 300ms\n");
    int idle = tcp_connect(port(false), false);
    int busy = tcp_connect(port(false), false);
    ck_assert(answers(idle));
    long t0 = now_ms();
    /* busy talks every 100 ms for 1.2 s; idle says nothing */
    while (now_ms() - t0 < 1200) {
        ck_assert(answers(busy));
        usleep(100000);
    }
    ck_assert(closed_by_server(idle));
    ck_assert(answers(busy));
    ck_assert_int_ge(stat_of("connections_idle_closed"), 1);
    close(idle);
    close(busy);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* Thousands of concurrent connections, each answered; RSS reported. */
#define MANY 3000

START_TEST(thousands_of_connections)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < MANY * 2 + 100) {
        rl.rlim_cur = rl.rlim_max < MANY * 2 + 100 ? rl.rlim_max : MANY * 2 + 100;
        setrlimit(RLIMIT_NOFILE, &rl); /* morphd inherits it */
    }
    ck_assert_msg(rl.rlim_cur >= MANY * 2 + 100,
                  "RLIMIT_NOFILE hard limit %llu is too low for this test",
                  (unsigned long long)rl.rlim_max);
    start("max_connections = 100000\n");
    long rss0 = morphd_proc_rss_kib(&proc);
    static int fds[MANY];
    for (int i = 0; i < MANY; i++) {
        fds[i] = tcp_connect(port(false), false);
        ck_assert_int_ge(fds[i], 0);
    }
    for (int i = 0; i < MANY; i++)
        ck_assert(send_all(fds[i], "x", 1) == 0);
    for (int i = 0; i < MANY; i++) {
        char c = 0;
        ck_assert_uint_eq(recv_exact(fds[i], &c, 1, TIMEOUT_MS), 1);
        ck_assert_int_eq(c, 'X');
    }
    long rss1 = morphd_proc_rss_kib(&proc);
    ck_assert_int_eq(stat_of("connections_open"), MANY);
    fprintf(stderr, "thousands_of_connections: %d open; morphd RSS %ld -> %ld "
            "KiB (%ld bytes per connection)\n", MANY, rss0, rss1,
            (rss1 - rss0) * 1024 / MANY);
    for (int i = 0; i < MANY; i++)
        close(fds[i]);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

START_TEST(stats_count_messages_bytes_errors_and_drops)
{
    start("max_message = 10\nframing = line\n");
    int fd = tcp_connect(port(false), false);
    ck_assert_int_eq(send_all(fd, "ab\ncd\n", 6), 0);
    char buf[16] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 6, TIMEOUT_MS), 6);
    close(fd);
    int udp = morphd_proc_port(&proc, "s", "udp", false);
    ck_assert_int_eq(udp_roundtrip(udp, false, "xyz", 3, buf, sizeof buf,
                                   TIMEOUT_MS), 3);
    ck_assert_int_eq(udp_roundtrip(udp, false, "0123456789AB", 12, buf,
                                   sizeof buf, 200), -1); /* over max_message */
    for (int i = 0; i < 100 && stat_of("connections_open") != 0; i++)
        usleep(10000);
    ck_assert_int_eq(stat_of("connections_accepted"), 1);
    ck_assert_int_eq(stat_of("messages_in"), 3);
    ck_assert_int_eq(stat_of("messages_out"), 3);
    /* issue 14, hole 9: both directions count line endings; issue 21:
     * bytes_in is what was received, the datagram over max_message too
     * (as the access log counts) */
    ck_assert_int_eq(stat_of("bytes_in"), 3 + 3 + 3 + 12);
    ck_assert_int_eq(stat_of("bytes_out"), 3 + 3 + 3);
    ck_assert_int_eq(stat_of("errors"), 1);
    ck_assert_int_eq(stat_of("datagrams_dropped"), 1);

    /* the table, and SIGUSR1 into the log */
    const char *argv[] = {MORPH_BIN, "stats", "-s", admin_path, NULL};
    char *out, *err;
    ck_assert_int_eq(run_program(argv, "", 0, &out, NULL, &err), 0);
    ck_assert_msg(strstr(out, "datagrams_dropped") && strstr(out, " s\n"), "%s", out);
    free(out);
    free(err);
    kill(proc.pid, SIGUSR1);
    for (int i = 0; i < 200 && morphd_proc_log_count(&proc, "datagrams_dropped") == 0; i++)
        usleep(10000);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "stats (SIGUSR1)"), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);

    /* morph stats explains an unreachable morphd */
    const char *gone[] = {MORPH_BIN, "stats", "-s", "/nonexistent.sock", NULL};
    ck_assert_int_eq(run_program(gone, "", 0, &out, NULL, &err), 1);
    ck_assert_msg(strstr(err, "cannot reach morphd at /nonexistent.sock"), "%s", err);
    free(out);
    free(err);
}
END_TEST

/* workers = 2: two event-loop threads share every port through
 * SO_REUSEPORT; connections spread over both, all are served, counters
 * add up, and shutdown stops both. */
START_TEST(workers_share_the_ports)
{
    snprintf(admin_path, sizeof admin_path, "/tmp/morph-admin-%d.sock",
             (int)getpid());
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nadmin_socket = %s\nworkers = 2\n"
             "[service s]\nlisten = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = uppercase\n", PLUGIN_DIR, admin_path);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "(stream framing, worker 1)"), 1);
    int tcp = port(false), udp = morphd_proc_port(&proc, "s", "udp", false);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)proc.pid);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -ge 2", path);
    ck_assert_int_eq(system(cmd), 0); /* a second thread runs */
    enum { N = 200 };
    static int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = tcp_connect(tcp, false);
        ck_assert(answers(fds[i]));
    }
    for (int i = 0; i < 50; i++) {
        char buf[8] = "";
        ck_assert_int_eq(udp_roundtrip(udp, false, "ok", 2, buf, sizeof buf,
                                       TIMEOUT_MS), 2);
        ck_assert_str_eq(buf, "OK");
    }
    ck_assert_int_eq(stat_of("connections_open"), N);
    /* each worker thread counts into a lane of its own: the sums */
    ck_assert_int_eq(stat_of("messages_in"), N + 50);
    ck_assert_int_eq(stat_of("messages_out"), N + 50);
    ck_assert_int_eq(stat_of("bytes_in"), 2 * (N + 50));
    ck_assert_int_eq(stat_of("bytes_out"), 2 * (N + 50));
    for (int i = 0; i < N; i++)
        close(fds[i]);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, max_connections_refuses_new_and_keeps_old);
    tcase_add_test(tc, max_connections_per_source);
    tcase_add_test(tc, idle_connections_are_closed_active_ones_are_not);
    tcase_add_test(tc, thousands_of_connections);
    tcase_add_test(tc, stats_count_messages_bytes_errors_and_drops);
    tcase_add_test(tc, workers_share_the_ports);
    tcase_add_test(tc, open_file_limit_is_raised_or_reported);
    tcase_add_test(tc, udp_receive_buffer_reported_when_capped);
    tcase_add_test(tc, silent_admin_clients_cannot_starve_the_service);
    tcase_add_test(tc, descriptor_exhaustion_is_counted_and_logged);
    tcase_add_test(tc, defaults_do_not_warn_about_open_files);
    tcase_add_test(tc, silent_reconnecting_admin_clients_cannot_block_morph_stats);
    tcase_add_test(tc, admin_socket_belongs_to_the_user_and_goes_at_exit);
    tcase_add_test(tc, rate_per_source_tcp);
    tcase_add_test(tc, rate_per_source_bounded_by_100000_sources);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
