/* Stress on loopback, bounded in time: 10,000 concurrent connections,
 * slowloris clients holding partial lines, clients that never read, 1 MB
 * lines, random binary, a UDP flood from many sockets, a connect/close
 * storm and connections over a limit -- all at once, while one
 * well-behaved client keeps getting every reply, in order. Afterwards the
 * counters must account for every refused connection and every datagram,
 * and morphd's memory must have stayed bounded. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define HOLD 10000         /* concurrent connections held open */
#define SLOWLORIS 200      /* connections trickling a never-ending line */
#define NEVER_READ 20      /* connections that send and never read */
#define BIG_LINES 4        /* connections sending 1 MB lines */
#define BINARY 20          /* connections sending random bytes */
#define FLOOD_SOCKETS 50   /* UDP sockets flooding */
#define FLOOD_EACH 2000    /* datagrams per flooding socket */
#define STORM 3000         /* connect-and-close storm */
#define LIMITED_MAX 100    /* max_connections of service "limited" */
#define LIMITED_TRY 150    /* connections tried on it */

static morphd_proc_t proc;
static char admin_path[128];

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long stat_of(const char *service, const char *counter)
{
    return morph_stat(admin_path, service, counter);
}

/* Kernel drops on the UDP socket bound to `port` (/proc/net/udp). */
static long long udp_kernel_drops(int port)
{
    FILE *f = fopen("/proc/net/udp", "r");
    char line[512];
    long long drops = 0;
    char want[16];
    snprintf(want, sizeof want, ":%04X", port);
    while (fgets(line, sizeof line, f)) {
        /* "sl local_address rem_address ...": the port of the socket
         * itself, not of a peer (a flood client's remote is this port) */
        char sl[16], local[64];
        if (sscanf(line, "%15s %63s", sl, local) != 2 ||
            strcmp(strrchr(local, ':') ? strrchr(local, ':') : "", want) != 0)
            continue;
        char *last = NULL; /* the drops column is the last field */
        for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
            last = tok;
        drops += last ? atoll(last) : 0;
    }
    fclose(f);
    return drops;
}

#define CHILD_FAIL(...)                                                        \
    do {                                                                       \
        fprintf(stderr, "stress child: " __VA_ARGS__);                         \
        fprintf(stderr, "\n");                                                 \
        _exit(1);                                                              \
    } while (0)

/* --- the attackers, each a child process ------------------------------------ */

static void hold_many(int port, int seconds)
{
    static int fds[HOLD];
    for (int i = 0; i < HOLD; i++) {
        fds[i] = tcp_connect(port, false);
        if (fds[i] < 0)
            CHILD_FAIL("connection %d failed: %s", i, strerror(errno));
        if (send_all(fds[i], "x\n", 2) != 0)
            CHILD_FAIL("send on %d", i);
    }
    for (int i = 0; i < HOLD; i++) {
        char buf[2];
        if (recv_exact(fds[i], buf, 2, 20000) != 2 || buf[0] != 'X')
            CHILD_FAIL("no reply on held connection %d", i);
    }
    sleep((unsigned)seconds); /* hold them while the rest goes on */
    _exit(0);
}

static void slowloris(int port, int seconds)
{
    int fds[SLOWLORIS];
    for (int i = 0; i < SLOWLORIS; i++)
        fds[i] = tcp_connect(port, false);
    long end = now_ms() + seconds * 1000L;
    while (now_ms() < end) {
        for (int i = 0; i < SLOWLORIS; i++)
            if (fds[i] >= 0)
                send(fds[i], "a", 1, MSG_NOSIGNAL);
        usleep(200000);
    }
    _exit(0);
}

static void never_read(int port, int seconds)
{
    char line[4096];
    memset(line, 'n', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    int fds[NEVER_READ];
    for (int i = 0; i < NEVER_READ; i++) {
        fds[i] = tcp_connect(port, false);
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
    }
    long end = now_ms() + seconds * 1000L;
    while (now_ms() < end) {
        for (int i = 0; i < NEVER_READ; i++)
            send(fds[i], line, sizeof line, MSG_NOSIGNAL);
        usleep(1000);
    }
    _exit(0);
}

static void big_lines(int port)
{
    size_t n = 1 << 20;
    char *line = malloc(n + 1), *back = malloc(n + 1);
    memset(line, 'b', n);
    line[n] = '\n';
    for (int c = 0; c < BIG_LINES; c++) {
        int fd = tcp_connect(port, false);
        for (int k = 0; k < 3; k++) {
            if (send_all(fd, line, n + 1) != 0)
                CHILD_FAIL("sending a 1 MB line");
            if (recv_exact(fd, back, n + 1, 20000) != n + 1 || back[0] != 'B' ||
                back[n - 1] != 'B' || back[n] != '\n')
                CHILD_FAIL("1 MB line %d not answered whole", k);
        }
        close(fd);
    }
    _exit(0);
}

static void binary(int port, int seconds)
{
    unsigned seed = 42;
    long end = now_ms() + seconds * 1000L;
    while (now_ms() < end) {
        int fds[BINARY];
        for (int i = 0; i < BINARY; i++) {
            fds[i] = tcp_connect(port, false);
            unsigned char junk[8192];
            for (size_t k = 0; k < sizeof junk; k++)
                junk[k] = (unsigned char)rand_r(&seed);
            send_all(fds[i], junk, sizeof junk);
            shutdown(fds[i], SHUT_WR);
        }
        for (int i = 0; i < BINARY; i++) { /* take whatever comes back */
            char sink[65536];
            recv_until_close(fds[i], sink, sizeof sink, 2000);
            close(fds[i]);
        }
    }
    _exit(0);
}

/* The same flood to two ports, datagram by datagram: the service on the
 * second has a larger udp_receive_buffer, and the two shares served are
 * compared side by side. Each port gets `sent` datagrams. */
static void udp_flood(int port, int port_big, const char *sent_path)
{
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in to_big = to;
    to_big.sin_port = htons((uint16_t)port_big);
    long long sent = 0;
    for (int s = 0; s < FLOOD_SOCKETS; s++) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0); /* never reads its replies */
        for (int k = 0; k < FLOOD_EACH; k++)
            if (sendto(fd, "flood!", 6, 0, (struct sockaddr *)&to, sizeof to) == 6 &&
                sendto(fd, "flood!", 6, 0, (struct sockaddr *)&to_big,
                       sizeof to_big) == 6)
                sent++;
        close(fd);
    }
    FILE *f = fopen(sent_path, "w");
    fprintf(f, "%lld\n", sent);
    fclose(f);
    _exit(0);
}

static void storm(int port)
{
    for (int i = 0; i < STORM; i++) {
        int fd = tcp_connect(port, false);
        if (fd >= 0)
            close(fd);
    }
    _exit(0);
}

static void over_the_limit(int port, const char *refused_path)
{
    int fds[LIMITED_TRY], refused = 0;
    for (int i = 0; i < LIMITED_TRY; i++)
        fds[i] = tcp_connect(port, false);
    usleep(300000);
    for (int i = 0; i < LIMITED_TRY; i++) {
        struct pollfd p = {fds[i], POLLIN, 0};
        char c;
        if (poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0)
            refused++; /* closed by morphd at once */
    }
    FILE *f = fopen(refused_path, "w");
    fprintf(f, "%d\n", refused);
    fclose(f);
    sleep(2);
    _exit(0);
}

static pid_t spawn(void (*fn)(void), pid_t *pids, int *n)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        fn();
    pids[(*n)++] = pid;
    return pid;
}

static int tcp_port_s, udp_port_flood, udp_port_flood_big, tcp_port_limited;
static char sent_path[64], refused_path[64];
#define DURATION 12

static void run_hold(void) { hold_many(tcp_port_s, DURATION); }
static void run_slowloris(void) { slowloris(tcp_port_s, DURATION); }
static void run_never_read(void) { never_read(tcp_port_s, DURATION / 2); }
static void run_big_lines(void) { big_lines(tcp_port_s); }
static void run_binary(void) { binary(tcp_port_s, DURATION / 2); }
static void run_flood(void)
{
    udp_flood(udp_port_flood, udp_port_flood_big, sent_path);
}
static void run_storm(void) { storm(tcp_port_s); }
static void run_limited(void) { over_the_limit(tcp_port_limited, refused_path); }

static long long read_number(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long long v = -1;
    ck_assert_int_eq(fscanf(f, "%lld", &v), 1);
    fclose(f);
    unlink(path);
    return v;
}

START_TEST(everything_at_once_while_a_good_client_is_served)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < 30000 && geteuid() == 0)
        rl.rlim_max = 30000;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl); /* morphd and the children inherit it */
    getrlimit(RLIMIT_NOFILE, &rl);
    ck_assert_msg(rl.rlim_cur >= HOLD + 2000, "RLIMIT_NOFILE %llu is too low",
                  (unsigned long long)rl.rlim_cur);

    snprintf(admin_path, sizeof admin_path, "/tmp/morph-stress-%d.sock",
             (int)getpid());
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nadmin_socket = %s\n"
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "framing = line\nmax_message = 2M\nmax_connections = 20000\n"
             "max_pending_output = 256K\n"
             "[service flood]\nlisten = udp://127.0.0.1:0\ntransform = uppercase\n"
             "[service flood_big]\nlisten = udp://127.0.0.1:0\n"
             "transform = uppercase\nudp_receive_buffer = 8M\n"
             "[service limited]\nlisten = tcp://127.0.0.1:0\ntransform = echo\n"
             "max_connections = %d\n",
             PLUGIN_DIR, admin_path, LIMITED_MAX);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    tcp_port_s = morphd_proc_port(&proc, "s", "tcp", false);
    udp_port_flood = morphd_proc_port(&proc, "flood", "udp", false);
    udp_port_flood_big = morphd_proc_port(&proc, "flood_big", "udp", false);
    tcp_port_limited = morphd_proc_port(&proc, "limited", "tcp", false);
    snprintf(sent_path, sizeof sent_path, "/tmp/morph-sent-%d", (int)getpid());
    snprintf(refused_path, sizeof refused_path, "/tmp/morph-refused-%d",
             (int)getpid());
    long rss0 = morphd_proc_rss_kib(&proc);
    long long drops0 = udp_kernel_drops(udp_port_flood);
    long long drops0_big = udp_kernel_drops(udp_port_flood_big);

    /* the well-behaved client connects first and talks throughout */
    int good = tcp_connect(tcp_port_s, false);
    pid_t pids[16];
    int n = 0;
    spawn(run_hold, pids, &n);
    spawn(run_slowloris, pids, &n);
    spawn(run_never_read, pids, &n);
    spawn(run_big_lines, pids, &n);
    spawn(run_binary, pids, &n);
    spawn(run_flood, pids, &n);
    spawn(run_storm, pids, &n);
    spawn(run_limited, pids, &n);

    long start = now_ms(), worst = 0, rss_peak = rss0;
    int exchanges = 0, wrong = 0, running = n;
    int status[16];
    while (running > 0 && now_ms() - start < 120000) {
        char msg[64], want[64], got[64] = "";
        int len = snprintf(msg, sizeof msg, "good-%d\n", exchanges);
        snprintf(want, sizeof want, "GOOD-%d\n", exchanges);
        long t0 = now_ms();
        ck_assert_int_eq(send_all(good, msg, (size_t)len), 0);
        size_t r = recv_exact(good, got, (size_t)len, 10000);
        if (now_ms() - t0 > worst)
            worst = now_ms() - t0;
        ck_assert_msg(r == (size_t)len, "the good client lost reply %d", exchanges);
        wrong += strcmp(got, want) != 0;
        exchanges++;
        if (exchanges % 50 == 0) {
            long rss = morphd_proc_rss_kib(&proc);
            rss_peak = rss > rss_peak ? rss : rss_peak;
        }
        for (int i = 0; i < n; i++)
            if (pids[i] > 0 && waitpid(pids[i], &status[i], WNOHANG) == pids[i]) {
                ck_assert_msg(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0,
                              "attacker %d failed", i);
                pids[i] = 0;
                running--;
            }
        usleep(5000);
    }
    ck_assert_int_eq(running, 0);
    ck_assert_int_eq(wrong, 0);
    close(good);

    /* every refused connection and every datagram is accounted for */
    long long refused = read_number(refused_path);
    ck_assert_int_eq(refused, LIMITED_TRY - LIMITED_MAX);
    ck_assert_int_eq(stat_of("limited", "connections_rejected"), refused);
    long long sent = read_number(sent_path);
    long long received, kernel;
    /* datagrams still queued in the socket when the flood ended are in
     * neither count yet: wait (bounded) until morphd has read them */
    for (int i = 0;; i++) {
        received = stat_of("flood", "messages_in");
        kernel = udp_kernel_drops(udp_port_flood) - drops0;
        if (received + kernel == sent || i == 100)
            break;
        usleep(20 * 1000);
    }
    ck_assert_int_eq(received + kernel, sent);
    long long received_big, kernel_big;
    for (int i = 0;; i++) {
        received_big = stat_of("flood_big", "messages_in");
        kernel_big = udp_kernel_drops(udp_port_flood_big) - drops0_big;
        if (received_big + kernel_big == sent || i == 100)
            break;
        usleep(20 * 1000);
    }
    ck_assert_int_eq(received_big + kernel_big, sent);
    /* the same flood at the same time: the larger buffer serves at least
     * as large a share (more, whenever the default one dropped any) */
    fprintf(stderr, "stress: UDP flood served: %.1f%% with the kernel's "
            "receive buffer, %.1f%% with udp_receive_buffer = 8M\n",
            100.0 * (double)received / (double)sent,
            100.0 * (double)received_big / (double)sent);
    ck_assert_int_ge(received_big, received);
    long rss1 = morphd_proc_rss_kib(&proc);
    fprintf(stderr, "stress: good client %d exchanges, 0 lost, worst %ld ms; "
            "UDP %lld sent = %lld answered-or-dropped by morphd (%lld replies "
            "dropped) + %lld dropped by the kernel; %lld refused over the "
            "limit; morphd RSS %ld KiB before, %ld peak, %ld after\n",
            exchanges, worst, sent, received,
            stat_of("flood", "datagrams_dropped"), kernel, refused, rss0,
            rss_peak, rss1);
    ck_assert_msg(rss_peak < 512 * 1024, "RSS peaked at %ld KiB", rss_peak);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

static void teardown(void)
{
    morphd_proc_cleanup(&proc);
    unlink(admin_path);
}

static Suite *suite(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, everything_at_once_while_a_good_client_is_served);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
