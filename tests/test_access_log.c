/* access_log: a line per TCP and unix connection when it closes, with the
 * fields the docs name and how it ended (closed, idle, a PROXY client's own
 * address); json; UDP only with access_log_udp; reopened on SIGHUP (as
 * logrotate does it). And what must not stop the service: a full disk
 * (/dev/full), a file that cannot be opened (then can, after SIGHUP), and
 * a FIFO nobody reads, which blocks any writer that waits on it. */
#include <errno.h>
#include <fcntl.h>
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
static char dir[64], logpath[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/morph-alog-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755);
    snprintf(logpath, sizeof logpath, "%s/access.log", dir);
}

static void teardown(void)
{
    morphd_proc_cleanup(&proc);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void start(const char *morphd_lines, const char *service_lines)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n%s\n[service s]\n"
             "listen = tcp://127.0.0.1:0 udp://127.0.0.1:0 unix://%s/s.sock\n"
             "transform = uppercase\nframing = line\n%s",
             PLUGIN_DIR, morphd_lines, dir, service_lines);
    if (morphd_proc_start(&proc, ini) != 0)
        ck_abort_msg("morphd did not start:\n%s", morphd_proc_log(&proc));
}

static int tport(void) { return morphd_proc_need_port(&proc, "s", "tcp", false); }

/* One exchange over a new connection, then a close. */
static void exchange(int fd, const char *line, const char *want)
{
    ck_assert_int_eq(send_all(fd, line, strlen(line)), 0);
    char got[64] = "";
    ck_assert_uint_eq(recv_exact(fd, got, strlen(want), TIMEOUT_MS), strlen(want));
    ck_assert_str_eq(got, want);
}

static void one_tcp(const char *line, const char *want)
{
    int fd = tcp_connect(tport(), false);
    exchange(fd, line, want);
    shutdown(fd, SHUT_WR);
    char buf[8];
    recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS);
    close(fd);
}

/* The file's text once it has `lines` lines (5 s at most); static. */
static const char *read_log(const char *path, int lines)
{
    static char text[65536];
    for (int i = 0; i < 250; i++) {
        text[0] = '\0';
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            size_t n = fread(text, 1, sizeof text - 1, f);
            text[n] = '\0';
            fclose(f);
        }
        int count = 0;
        for (const char *p = text; (p = strchr(p, '\n')); p++)
            count++;
        if (count >= lines)
            return text;
        usleep(20000);
    }
    return text;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        n++;
    return n;
}

START_TEST(a_line_per_connection_with_its_fields)
{
    char lines[256];
    snprintf(lines, sizeof lines, "access_log = %s\n", logpath);
    start(lines, "idle_timeout = 300ms\n");
    one_tcp("hello\n", "HELLO\n");
    /* a unix client */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%.60s/s.sock", dir);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    exchange(fd, "u\n", "U\n");
    close(fd);
    /* an idle one, closed by idle_timeout */
    fd = tcp_connect(tport(), false);
    char buf[8];
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 0);
    close(fd);
    /* UDP: no line without access_log_udp */
    char reply[16];
    ck_assert_int_eq(udp_roundtrip(morphd_proc_need_port(&proc, "s", "udp", false),
                                   false, "dgram", 5, reply, sizeof reply,
                                   TIMEOUT_MS), 5);
    const char *t = read_log(logpath, 3);
    ck_assert_msg(count_lines(t) == 3, "%s", t);
    ck_assert_msg(strstr(t, "transport=tcp client=127.0.0.1:") != NULL, "%s", t);
    ck_assert_msg(strstr(t, " service=s bytes_in=6 bytes_out=6 messages=1 "
                            "duration_ms=") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "end=closed\n") != NULL, "%s", t);
    char uid[64];
    snprintf(uid, sizeof uid, "transport=unix client=uid=%d pid=%d ",
             (int)getuid(), (int)getpid());
    ck_assert_msg(strstr(t, uid) != NULL, "%s", t);
    ck_assert_msg(strstr(t, "bytes_in=0 bytes_out=0 messages=0") &&
                      strstr(t, "end=idle\n"), "%s", t);
    ck_assert_msg(strstr(t, "transport=udp") == NULL, "%s", t);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

START_TEST(json_and_the_proxy_client)
{
    char lines[256];
    snprintf(lines, sizeof lines, "access_log = %s\naccess_log_format = json\n",
             logpath);
    start(lines, "proxy_protocol = any\nproxy_from = 127.0.0.1\n");
    int fd = tcp_connect(tport(), false);
    const char *h = "PROXY TCP4 203.0.113.5 127.0.0.1 4242 12000\r\n";
    ck_assert_int_eq(send_all(fd, h, strlen(h)), 0);
    exchange(fd, "abc\n", "ABC\n");
    close(fd);
    const char *t = read_log(logpath, 1);
    ck_assert_msg(strstr(t, "{\"time\":\"") == t, "%s", t);
    ck_assert_msg(strstr(t, "\"transport\":\"tcp\",\"client\":\"203.0.113.5:4242\","
                            "\"service\":\"s\",\"bytes_in\":4,\"bytes_out\":4,"
                            "\"messages\":1,\"duration_ms\":") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "\"end\":\"reset\"}\n") ||
                      strstr(t, "\"end\":\"closed\"}\n"), "%s", t);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* http://: a line per request when it is answered, with its method, path
 * and status (the plugins' answers, and morphd's own: 405, 400), then the
 * connection's line; the path as the client sent it, escaped in json. */
START_TEST(http_requests_get_a_line_each)
{
    for (int json = 0; json < 2; json++) {
        char ini[1024];
        snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\naccess_log = %s\n"
                 "access_log_format = %s\n[service s]\nlisten = "
                 "http://127.0.0.1:0\ntransform = uppercase\n", PLUGIN_DIR,
                 logpath, json ? "json" : "text");
        unlink(logpath);
        if (morphd_proc_start(&proc, ini) != 0)
            ck_abort_msg("morphd did not start:\n%s", morphd_proc_log(&proc));
        int port = morphd_proc_need_port(&proc, "s", "http", false);
        int fd = tcp_connect(port, false);
        const char *reqs = "POST /up?x=\"1\" HTTP/1.1\r\nHost: t\r\n"
                           "Content-Length: 5\r\n\r\nhello"
                           "GET /page HTTP/1.1\r\nHost: t\r\n"
                           "Connection: close\r\n\r\n";
        ck_assert_int_eq(send_all(fd, reqs, strlen(reqs)), 0);
        char buf[2048];
        size_t got = recv_until_close(fd, buf, sizeof buf - 1, TIMEOUT_MS);
        buf[got] = '\0';
        ck_assert_msg(strstr(buf, "HELLO") && strstr(buf, " 405 "), "%s", buf);
        close(fd);
        fd = tcp_connect(port, false);
        const char *bad = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n";
        ck_assert_int_eq(send_all(fd, bad, strlen(bad)), 0);
        recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS);
        close(fd);
        const char *t = read_log(logpath, 5);
        ck_assert_msg(count_lines(t) == 5, "%s", t);
        if (!json) {
            ck_assert_msg(strstr(t, "transport=http client=127.0.0.1:"), "%s", t);
            ck_assert_msg(strstr(t, " service=s method=POST path=/up?x=\"1\" "
                                    "status=200 bytes_in=5 bytes_out="), "%s", t);
            ck_assert_msg(strstr(t, " method=GET path=/page status=405 "
                                    "bytes_in=0 bytes_out="), "%s", t);
            ck_assert_msg(strstr(t, " method=POST path=/ status=400 "), "%s", t);
            ck_assert_msg(strstr(t, "bytes_in=5") != NULL, "%s", t);
            ck_assert_msg(strstr(t, " messages=1 duration_ms=") != NULL, "%s", t);
        } else {
            ck_assert_msg(strstr(t, "\"transport\":\"http\",\"client\":"
                                    "\"127.0.0.1:"), "%s", t);
            ck_assert_msg(strstr(t, "\"service\":\"s\",\"method\":\"POST\","
                                    "\"path\":\"/up?x=\\\"1\\\"\",\"status\":200,"
                                    "\"bytes_in\":5,\"bytes_out\":"), "%s", t);
            ck_assert_msg(strstr(t, "\"method\":\"GET\",\"path\":\"/page\","
                                    "\"status\":405"), "%s", t);
        }
        ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    }
}
END_TEST

/* A WebSocket: its handshake's line (101), then the connection's, which
 * counts its messages. */
START_TEST(websocket_handshake_and_connection_lines)
{
    char ini[1024];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\naccess_log = %s\n"
             "[service s]\nlisten = http://127.0.0.1:0\ntransform = uppercase\n",
             PLUGIN_DIR, logpath);
    unlink(logpath);
    if (morphd_proc_start(&proc, ini) != 0)
        ck_abort_msg("morphd did not start:\n%s", morphd_proc_log(&proc));
    int port = morphd_proc_need_port(&proc, "s", "http", false);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "printf 'a\\nb\\n' | %s -w %s ws://127.0.0.1:%d/live "
             ">/dev/null", MORPH_BIN, getenv("MORPH_TEST_WRAPPER") ? "30" : "5",
             port);
    ck_assert_int_eq(system(cmd), 0);
    const char *t = read_log(logpath, 2);
    ck_assert_msg(count_lines(t) == 2, "%s", t);
    ck_assert_msg(strstr(t, " method=GET path=/live status=101 bytes_in=0 "
                            "bytes_out="), "%s", t);
    ck_assert_msg(strstr(t, " messages=2 duration_ms="), "%s", t);
    ck_assert_msg(strstr(t, " end=codec_closed"), "%s", t); /* its close */
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(udp_lines_with_access_log_udp)
{
    char lines[256];
    snprintf(lines, sizeof lines, "access_log = %s\naccess_log_udp = yes\n",
             logpath);
    start(lines, "");
    char reply[16];
    int uport = morphd_proc_need_port(&proc, "s", "udp", false);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(udp_roundtrip(uport, false, "dgram", 5, reply,
                                       sizeof reply, TIMEOUT_MS), 5);
    const char *t = read_log(logpath, 3);
    ck_assert_int_eq(count_lines(t), 3);
    ck_assert_msg(strstr(t, "transport=udp client=127.0.0.1:") &&
                      strstr(t, "bytes_in=5 bytes_out=5 messages=1 "
                                "duration_ms=0 end=replied\n"), "%s", t);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* Issue 21: the access log tells what happened to a datagram's reply: a
 * reply the ratio dropped was logged end=replied with its bytes, a
 * deferred one `pending` with 0 bytes although it was sent, and an empty
 * reply was counted as sent. morph stats agrees with the log. */
START_TEST(udp_lines_say_what_became_of_the_reply)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s %s\naccess_log = %s\n"
             "access_log_udp = yes\nadmin_socket = %s/admin.sock\n"
             "[service f]\nlisten = udp://127.0.0.1:0\ntransform = replyflags\n"
             "framing = line\n"
             "[service u]\nlisten = udp://127.0.0.1:0\ntransform = uppercase\n"
             "udp_max_reply_ratio = 1\n"
             "[service d]\nlisten = udp://127.0.0.1:0\ntransform = later\n"
             "later.ms = 50ms\n",
             PLUGIN_DIR, TEST_PLUGIN_DIR, logpath, dir);
    if (morphd_proc_start(&proc, ini) != 0)
        ck_abort_msg("morphd did not start:\n%s", morphd_proc_log(&proc));
    char reply[16], admin[128];
    snprintf(admin, sizeof admin, "%s/admin.sock", dir);
    int f = morphd_proc_need_port(&proc, "f", "udp", false);
    int u = morphd_proc_need_port(&proc, "u", "udp", false);
    int d = morphd_proc_need_port(&proc, "d", "udp", false);
    ck_assert_int_eq(udp_roundtrip(f, false, "none", 4, reply, sizeof reply, 300), -1);
    ck_assert_int_eq(udp_roundtrip(f, false, "empty", 5, reply, sizeof reply, 300), -1);
    ck_assert_int_eq(udp_roundtrip(f, false, "hello", 5, reply, sizeof reply,
                                   TIMEOUT_MS), 5);
    /* "ΐ" (2 bytes) uppercases to 6: 34 bytes on the wire for 30 */
    ck_assert_int_eq(udp_roundtrip(u, false, "\xce\x90", 2, reply, sizeof reply,
                                   300), -1);
    ck_assert_int_eq(udp_roundtrip(d, false, "later", 5, reply, sizeof reply,
                                   TIMEOUT_MS), 5);
    const char *t = read_log(logpath, 5);
    ck_assert_int_eq(count_lines(t), 5);
    ck_assert_msg(strstr(t, "service=f bytes_in=4 bytes_out=0 messages=1 "
                            "duration_ms=0 end=no_reply\n"), "%s", t);
    ck_assert_msg(strstr(t, "service=f bytes_in=5 bytes_out=0 messages=1 "
                            "duration_ms=0 end=no_reply\n"), "%s", t);
    ck_assert_msg(strstr(t, "service=f bytes_in=5 bytes_out=5 messages=1 "
                            "duration_ms=0 end=replied\n"), "%s", t);
    ck_assert_msg(strstr(t, "service=u bytes_in=2 bytes_out=0 messages=1 "
                            "duration_ms=0 end=dropped_ratio\n"), "%s", t);
    ck_assert_msg(strstr(t, "service=d bytes_in=5 bytes_out=5 messages=1 "), "%s", t);
    ck_assert_msg(strstr(t, "service=d") && !strstr(t, "end=pending"), "%s", t);
    /* and the counters say the same: one message out for f, none for u */
    ck_assert_int_eq(morph_stat(admin, "f", "messages_out"), 1);
    ck_assert_int_eq(morph_stat(admin, "u", "messages_out"), 0);
    ck_assert_int_eq(morph_stat(admin, "u", "datagrams_dropped"), 1);
    ck_assert_int_eq(morph_stat(admin, "d", "messages_out"), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* Issue 21: the access log and the counters disagreed: one stream chunk
 * was messages=2 in the log and 1 in messages_in (the end-of-stream call
 * counted as a message), a too-long line bytes_in=70001 in the log while
 * the service's bytes_in did not move. One count now, kept where the bytes
 * are read and where the message is counted. */
START_TEST(the_log_and_the_counters_count_alike)
{
    char ini[2048], admin[128];
    snprintf(admin, sizeof admin, "%s/admin.sock", dir);
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\naccess_log = %s\nadmin_socket = %s\n"
             "[service chunks]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "framing = stream\n"
             "[service lines]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "framing = line\nmax_message = 1K\n",
             PLUGIN_DIR, logpath, admin);
    if (morphd_proc_start(&proc, ini) != 0)
        ck_abort_msg("morphd did not start:\n%s", morphd_proc_log(&proc));
    int chunks = morphd_proc_need_port(&proc, "chunks", "tcp", false);
    int lines = morphd_proc_need_port(&proc, "lines", "tcp", false);
    int fd = tcp_connect(chunks, false);
    exchange(fd, "chunk", "CHUNK");
    shutdown(fd, SHUT_WR);
    char buf[64];
    recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS);
    close(fd);
    static char big[3000];
    memset(big, 'x', sizeof big);
    fd = tcp_connect(lines, false);
    exchange(fd, "ok\n", "OK\n");
    ck_assert_int_eq(send_all(fd, big, sizeof big), 0);
    recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS); /* too_long */
    close(fd);
    const char *t = read_log(logpath, 2);
    ck_assert_int_eq(count_lines(t), 2);
    ck_assert_msg(strstr(t, "service=chunks bytes_in=5 bytes_out=5 messages=1 "),
                  "%s", t);
    ck_assert_int_eq(morph_stat(admin, "chunks", "messages_in"), 1);
    ck_assert_int_eq(morph_stat(admin, "chunks", "bytes_in"), 5);
    const char *l = strstr(t, "service=lines bytes_in=");
    ck_assert_ptr_nonnull(l);
    long long logged = atoll(l + strlen("service=lines bytes_in="));
    ck_assert_int_eq(morph_stat(admin, "lines", "bytes_in"), logged);
    ck_assert_int_gt(logged, 1024); /* the too-long bytes count too */
    ck_assert_msg(strstr(l, "messages=1 ") && strstr(l, "end=too_long"), "%s", l);
    ck_assert_int_eq(morph_stat(admin, "lines", "messages_in"), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* logrotate: the file is renamed, SIGHUP, and later lines go to a new
 * file of the same name. */
START_TEST(reopened_on_sighup)
{
    char lines[256], rotated[160];
    snprintf(lines, sizeof lines, "access_log = %s\n", logpath);
    start(lines, "");
    one_tcp("one\n", "ONE\n");
    read_log(logpath, 1);
    snprintf(rotated, sizeof rotated, "%s.1", logpath);
    ck_assert_int_eq(rename(logpath, rotated), 0);
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    one_tcp("two\n", "TWO\n");
    const char *t = read_log(logpath, 1);
    ck_assert_int_eq(count_lines(t), 1);
    ck_assert_msg(strstr(t, "bytes_in=4") != NULL, "%s", t);
    t = read_log(rotated, 1);
    ck_assert_int_eq(count_lines(t), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* A full disk: every write fails with ENOSPC. Lines are lost, counted and
 * reported; every client is served. */
START_TEST(full_disk_costs_lines_not_service)
{
    start("access_log = /dev/full\n", "");
    for (int i = 0; i < 20; i++)
        one_tcp("x\n", "X\n");
    for (int i = 0; i < 250 && morphd_proc_log_count(&proc, "lines lost") == 0; i++)
        usleep(20000);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "access log /dev/full: "), 1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "No space left on device"), 1);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* A file that cannot be opened (its folder is not there): morphd serves,
 * and once the folder exists, SIGHUP opens it. */
START_TEST(unwritable_then_reopened)
{
    char lines[256], path[160], sub[128];
    snprintf(sub, sizeof sub, "%s/not-yet", dir);
    snprintf(path, sizeof path, "%s/access.log", sub);
    snprintf(lines, sizeof lines, "access_log = %s\n", path);
    start(lines, "");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "cannot open: No such file"), 1);
    one_tcp("lost\n", "LOST\n");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    one_tcp("kept\n", "KEPT\n");
    const char *t = read_log(path, 1);
    ck_assert_int_eq(count_lines(t), 1);
    ck_assert_msg(strstr(t, "bytes_in=5") != NULL, "%s", t);
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
}
END_TEST

/* A FIFO that is opened but never read: a writer that waited on it would
 * stop the loop after 64 KiB. 2,000 connections are served, lines beyond
 * the pipe and the queue are dropped, and morphd still stops cleanly. */
START_TEST(a_writer_that_blocks_does_not_stop_the_loop)
{
    char fifo[160], lines[256];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    int reader = open(fifo, O_RDONLY | O_NONBLOCK); /* holds it open, reads nothing */
    ck_assert_int_ge(reader, 0);
    snprintf(lines, sizeof lines, "access_log = %s\n", fifo);
    start(lines, "");
    int port = tport();
    for (int i = 0; i < 2000; i++) {
        int fd = tcp_connect(port, false);
        exchange(fd, "x\n", "X\n");
        close(fd);
    }
    ck_assert_int_eq(morphd_proc_stop(&proc), 0);
    close(reader);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("access_log");
    TCase *tc = tcase_create("access_log");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_line_per_connection_with_its_fields);
    tcase_add_test(tc, json_and_the_proxy_client);
    tcase_add_test(tc, http_requests_get_a_line_each);
    tcase_add_test(tc, websocket_handshake_and_connection_lines);
    tcase_add_test(tc, udp_lines_with_access_log_udp);
    tcase_add_test(tc, udp_lines_say_what_became_of_the_reply);
    tcase_add_test(tc, the_log_and_the_counters_count_alike);
    tcase_add_test(tc, reopened_on_sighup);
    tcase_add_test(tc, full_disk_costs_lines_not_service);
    tcase_add_test(tc, unwritable_then_reopened);
    tcase_add_test(tc, a_writer_that_blocks_does_not_stop_the_loop);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
