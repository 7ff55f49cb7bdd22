/* What ABI 2 gives a plugin about its connection and its replies, seen
 * from a real client: the context (whoami), reply flags (no reply, close,
 * empty datagrams), the line-end trailer, load/unload hooks, metrics and
 * counters in `morph stats`, and an ABI 1 plugin serving unchanged. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char admin[128];

static void start(const char *plugin_dir, const char *services)
{
    morphd_proc_serve(&proc, plugin_dir, "", services, admin, sizeof admin);
}

static void stop(void) { morphd_proc_finish(&proc); }

static int port(const char *svc, const char *proto, bool v6)
{
    return morphd_proc_need_port(&proc, svc, proto, v6);
}

/* The local port of a socket: what morphd sees as the peer's. */
static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss.ss_family == AF_INET6
               ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
               : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

START_TEST(whoami_tcp_udp_ipv4_ipv6)
{
    start(PLUGIN_DIR, "[service who]\nlisten = tcp://127.0.0.1:0 "
                      "tcp://[::1]:0 udp://127.0.0.1:0 udp://[::1]:0\n"
                      "transform = whoami\nframing = line\n");
    for (int v6 = 0; v6 <= 1; v6++) {
        int fd = tcp_connect(port("who", "tcp", v6), v6);
        ck_assert_int_eq(send_all(fd, "?\r\n", 3), 0);
        char want[128], got[128] = "";
        int n = snprintf(want, sizeof want, "tcp %s %d who\r\n",
                         v6 ? "::1" : "127.0.0.1", local_port(fd));
        ck_assert_uint_eq(recv_exact(fd, got, (size_t)n, TIMEOUT_MS),
                          (size_t)n);
        ck_assert_str_eq(got, want);
        close(fd);

        int u = udp_connect(port("who", "udp", v6), v6, TIMEOUT_MS);
        ck_assert_int_eq(send(u, "who is it?", 10, 0), 10);
        memset(got, 0, sizeof got);
        n = snprintf(want, sizeof want, "udp %s %d who\n",
                     v6 ? "::1" : "127.0.0.1", local_port(u));
        ck_assert_int_eq(recv(u, got, sizeof got, 0), n);
        ck_assert_str_eq(got, want);
        close(u);
    }
    stop();
}
END_TEST

START_TEST(reply_flags_over_tcp)
{
    start(TEST_PLUGIN_DIR, "[service r]\nlisten = tcp://127.0.0.1:0\n"
                           "transform = replyflags\nframing = line\n");
    int fd = tcp_connect(port("r", "tcp", false), false);
    /* no reply: nothing at all, not even the line ending; an empty reply
     * is an empty line; close: the reply, then the end, and the lines
     * after it are not read */
    ck_assert_int_eq(send_all(fd, "a\nnone\nempty\nb\nclose\nlost\n", 26), 0);
    char buf[64] = "";
    size_t n = recv_until_close(fd, buf, sizeof buf - 1, TIMEOUT_MS);
    ck_assert_uint_eq(n, 9);
    ck_assert_str_eq(buf, "a\n\nb\nbye\n");
    close(fd);
    ck_assert_int_eq(morph_stat(admin, "r", "messages_in"), 5);
    stop();
}
END_TEST

START_TEST(empty_replies_over_udp)
{
    start(TEST_PLUGIN_DIR, "[service r]\nlisten = udp://127.0.0.1:0\n"
                           "transform = replyflags\n\n"
                           "[service old]\nlisten = udp://127.0.0.1:0\n"
                           "transform = abi1_upper\n");
    int u = udp_connect(port("r", "udp", false), false, 300);
    char buf[16];
    /* an empty reply sends no datagram ... */
    ck_assert_int_eq(send(u, "empty", 5, 0), 5);
    ck_assert_int_eq(recv(u, buf, sizeof buf, 0), -1);
    ck_assert_int_eq(send(u, "none", 4, 0), 4);
    ck_assert_int_eq(recv(u, buf, sizeof buf, 0), -1);
    /* ... unless the plugin asks for one */
    ck_assert_int_eq(send(u, "emptydg", 7, 0), 7);
    ck_assert_int_eq(recv(u, buf, sizeof buf, 0), 0);
    ck_assert_int_eq(send(u, "x", 1, 0), 1);
    ck_assert_int_eq(recv(u, buf, sizeof buf, 0), 1);
    close(u);
    /* an ABI 1 plugin keeps its old behaviour: an empty reply is sent */
    u = udp_connect(port("old", "udp", false), false, 1000);
    ck_assert_int_eq(send(u, "", 0, 0), 0);
    ck_assert_int_eq(recv(u, buf, sizeof buf, 0), 0);
    close(u);
    stop();
}
END_TEST

START_TEST(line_end_trailer)
{
    start(TEST_PLUGIN_DIR, "[service t]\nlisten = tcp://127.0.0.1:0\n"
                           "transform = trailer\nframing = line\n");
    int fd = tcp_connect(port("t", "tcp", false), false);
    ck_assert_int_eq(send_all(fd, "one\ntwo\nthree", 13), 0);
    shutdown(fd, SHUT_WR);
    char buf[64] = "";
    recv_until_close(fd, buf, sizeof buf - 1, TIMEOUT_MS);
    ck_assert_str_eq(buf, "one\ntwo\nthreelines: 3\n");
    close(fd);
    stop();
}
END_TEST

/* Built against the frozen ABI 1 header: options, per-connection state,
 * chunk safety, served over TCP and UDP as before. */
START_TEST(abi1_plugin_serves_unchanged)
{
    start(TEST_PLUGIN_DIR, "[service old]\nlisten = tcp://127.0.0.1:0 "
                           "udp://127.0.0.1:0\ntransform = abi1_upper\n"
                           "framing = stream\nabi1_upper.tag = n\n");
    int fd = tcp_connect(port("old", "tcp", false), false);
    ck_assert_int_eq(send_all(fd, "abc", 3), 0);
    char buf[64] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 6, TIMEOUT_MS), 6);
    ck_assert_str_eq(buf, "n1:ABC");
    ck_assert_int_eq(send_all(fd, "de", 2), 0);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_exact(fd, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "n2:DE"); /* state kept per connection */
    close(fd);
    char reply[64] = "";
    ck_assert_int_eq(udp_roundtrip(port("old", "udp", false), false, "hello",
                                   5, reply, sizeof reply, TIMEOUT_MS), 8);
    ck_assert_str_eq(reply, "n1:HELLO");
    stop();
}
END_TEST

START_TEST(load_and_unload_hooks_once_per_process)
{
    char ini[1024];
    snprintf(admin, sizeof admin, "/tmp/morph-context-%d.sock", (int)getpid());
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nworkers = 2\n\n"
             "[service a]\nlisten = tcp://127.0.0.1:0\ntransform = hooks\n"
             "framing = line\n\n"
             "[service b]\nlisten = tcp://127.0.0.1:0\ntransform = hooks | "
             "hooks\nframing = line\n", TEST_PLUGIN_DIR);
    ck_assert_int_eq(morphd_proc_start(&proc, ini), 0);
    int fd = tcp_connect(port("b", "tcp", false), false);
    ck_assert_int_eq(send_all(fd, "hi\n", 3), 0);
    char buf[8] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 3, TIMEOUT_MS), 3);
    close(fd);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "plugin hooks: load hook ran"),
                     1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "unload hook ran (loaded 1)"),
                     1);
    morphd_proc_cleanup(&proc);

    /* a load() that fails is a configuration error naming the reason */
    char *out;
    char *path = write_temp_file("[service s]\nlisten = tcp://127.0.0.1:0\n"
                                 "transform = load_fail\n");
    char dir[512];
    snprintf(dir, sizeof dir, "morphd.plugin_dir=%s", TEST_PLUGIN_DIR);
    const char *args[] = {"-t", "-c", path, "--set", dir, NULL};
    ck_assert_int_eq(run_morphd(args, &out), 78);
    ck_assert_msg(strstr(out, "load() failed: the license server is "
                              "unreachable"), "%s", out);
    free(out);
    unlink(path);
    free(path);
}
END_TEST

/* Per-plugin metrics and a plugin's own counters, in both output forms. */
START_TEST(plugin_metrics_in_stats)
{
    start(TEST_PLUGIN_DIR, "[service m]\nlisten = tcp://127.0.0.1:0\n"
                           "transform = failing | abi1_upper\n"
                           "framing = line\n");
    int fd = tcp_connect(port("m", "tcp", false), false);
    ck_assert_int_eq(send_all(fd, "a\nplease fail\nb\n", 16), 0);
    char buf[8] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 4, TIMEOUT_MS), 4);
    close(fd);
    /* the failed message stopped the chain before abi1_upper */
    ck_assert_int_eq(morph_plugin_stat(admin, "m", "abi1_upper", "calls"), 2);
    ck_assert_int_eq(morph_plugin_stat(admin, "m", "abi1_upper", "failures"), 0);
    ck_assert_int_eq(morph_plugin_stat(admin, "m", "failing", "calls"), 3);
    ck_assert_int_eq(morph_plugin_stat(admin, "m", "failing", "failures"), 1);
    ck_assert_int_ge(morph_plugin_stat(admin, "m", "failing", "time_us"), 0);
    /* the table too */
    const char *argv[] = {MORPH_BIN, "stats", "-s", admin, NULL};
    char *out, *err;
    ck_assert_int_eq(run_program(argv, "", 0, &out, NULL, &err), 0);
    ck_assert_msg(strstr(out, "m/failing") && strstr(out, "m/abi1_upper"),
                  "%s", out);
    free(out);
    free(err);
    stop();
}
END_TEST

/* In stream framing a failed chunk would be a silent gap in the stream:
 * the connection ends there, after the replies before it. */
START_TEST(failed_chunk_ends_the_stream)
{
    start(TEST_PLUGIN_DIR, "[service s]\nlisten = tcp://127.0.0.1:0\n"
                           "transform = failing\nframing = stream\n");
    int fd = tcp_connect(port("s", "tcp", false), false);
    ck_assert_int_eq(send_all(fd, "first", 5), 0);
    char buf[64] = "";
    ck_assert_uint_eq(recv_exact(fd, buf, 5, TIMEOUT_MS), 5);
    ck_assert_int_eq(send_all(fd, "this will fail", 14), 0);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 0);
    close(fd);
    ck_assert_int_eq(morph_stat(admin, "s", "errors"), 1);
    ck_assert_int_eq(morph_stat(admin, "s", "connections_open"), 0);
    stop();
}
END_TEST

/* Issue 21 (ABI 3): conn_open2 sees its connection, so a plugin can
 * refuse a connection by its peer -- over TCP and per datagram over UDP --
 * and a Lua script's open() can ask morph.peer(). */
START_TEST(conn_open2_sees_the_connection)
{
    char dirs[512];
    snprintf(dirs, sizeof dirs, "%s %s", TEST_PLUGIN_DIR, PLUGIN_DIR);
    start(dirs, "[service s]\nlisten = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
                "transform = gate\nframing = line\n");
    int fd = tcp_connect(port("s", "tcp", false), false);
    char buf[64];
    ck_assert_int_eq(send_all(fd, "hi\n", 3), 0);
    ck_assert_ptr_nonnull(recv_line(fd, buf, sizeof buf, TIMEOUT_MS));
    ck_assert_str_eq(buf, "tcp 127.0.0.1");
    close(fd);
    fd = tcp_connect_from("127.0.0.2", port("s", "tcp", false));
    ck_assert_int_ge(fd, 0);
    send_all(fd, "hi\n", 3);
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 0);
    close(fd);
    ssize_t n = udp_roundtrip(port("s", "udp", false), false, "hi", 2, buf,
                              sizeof buf, TIMEOUT_MS);
    ck_assert_int_eq(n, 13);
    ck_assert_int_eq(memcmp(buf, "udp 127.0.0.1", 13), 0);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "plugin gate: refused the "
                                                  "connection"), 1);
    stop();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("context");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, whoami_tcp_udp_ipv4_ipv6);
    tcase_add_test(tc, reply_flags_over_tcp);
    tcase_add_test(tc, empty_replies_over_udp);
    tcase_add_test(tc, line_end_trailer);
    tcase_add_test(tc, abi1_plugin_serves_unchanged);
    tcase_add_test(tc, load_and_unload_hooks_once_per_process);
    tcase_add_test(tc, plugin_metrics_in_stats);
    tcase_add_test(tc, failed_chunk_ends_the_stream);
    tcase_add_test(tc, conn_open2_sees_the_connection);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
