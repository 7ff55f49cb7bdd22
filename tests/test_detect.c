/* Issue 24 item 5: detect = tls http on a tcp:// endpoint. One port
 * answers the textbook client (its framing, at once), curl (as http://)
 * and a TLS client (as tls://); a prefix that could still be either waits
 * detect_timeout, then goes to the framing; the PROXY header is read
 * before detection; and the configurations detect cannot serve are
 * refused with their line. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char admin[108];

static void teardown(void) { morphd_proc_cleanup(&proc); unlink(admin); }

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Service s on tcp://, whoami | uppercase with line framing, detecting
 * `what`, with the example certificate; `lines` more. */
static void start(const char *what, const char *lines)
{
    char services[2048];
    snprintf(services, sizeof services,
             "[service s]\nlisten = tcp://127.0.0.1:0\n"
             "transform = whoami | uppercase\nframing = line\ndetect = %s\n"
             "tls_certificate = %s/config/tls/example-cert.pem\n"
             "tls_key = %s/config/tls/example-key.pem\n%s",
             what, SOURCE_DIR, SOURCE_DIR, lines);
    morphd_proc_serve(&proc, PLUGIN_DIR, "", services, admin, sizeof admin);
}

static int port(void) { return morphd_proc_need_port(&proc, "s", "tcp", false); }

/* Sends `text`, reads one line of reply (without its newline). */
static void ask(int fd, const char *text, char *buf, size_t cap)
{
    ck_assert_int_eq(send_all(fd, text, strlen(text)), 0);
    ck_assert_ptr_nonnull(recv_line(fd, buf, cap, TIMEOUT_MS));
}

START_TEST(one_port_serves_plain_http_and_tls)
{
    /* a long detect_timeout: what is served at once never waited */
    start("tls http", "detect_timeout = 10s\n");
    char buf[512];
    /* the textbook client: its first byte rules TLS and HTTP out */
    int fd = tcp_connect(port(), false);
    long t0 = now_ms();
    ask(fd, "hello\n", buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "TCP 127.0.0.1 ", 14) == 0, "%s", buf);
    ck_assert_int_lt(now_ms() - t0, getenv("MORPH_TEST_WRAPPER") ? 8000 : 2000);
    ask(fd, "again\n", buf, sizeof buf); /* and goes on as any tcp:// one */
    ck_assert_msg(strncmp(buf, "TCP ", 4) == 0, "%s", buf);
    close(fd);
    /* curl: an HTTP request line, served as http:// */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "curl -sS --data-binary x http://127.0.0.1:%d/",
             port());
    char *out = shell_output(cmd);
    ck_assert_msg(strncmp(out, "HTTP 127.0.0.1 ", 15) == 0, "%s", out);
    /* Python's ssl: a ClientHello, served as tls:// with the framing */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 - <<'PY'\n"
             "import socket, ssl\n"
             "ctx = ssl.create_default_context()\n"
             "ctx.check_hostname = False\n"
             "ctx.verify_mode = ssl.CERT_NONE\n"
             "with socket.create_connection(('127.0.0.1', %d), timeout=5) as s:\n"
             "    with ctx.wrap_socket(s) as t:\n"
             "        t.sendall(b'over tls\\n')\n"
             "        data = b''\n"
             "        while not data.endswith(b'\\n'):\n"
             "            data += t.recv(100)\n"
             "        print(data.decode().split()[0])\n"
             "PY", port());
    ck_assert_str_eq(shell_output(cmd), "TLS\n");
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(an_ambiguous_prefix_waits_detect_timeout)
{
    start("tls http", "detect_timeout = 300ms\n");
    char buf[512];
    /* "PO" may be POST: it waits, then goes to the framing with what
     * follows it */
    int fd = tcp_connect(port(), false);
    ck_assert_int_eq(send_all(fd, "PO", 2), 0);
    usleep(getenv("MORPH_TEST_WRAPPER") ? 2000000 : 800000);
    ask(fd, "ST\n", buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "TCP 127.0.0.1 ", 14) == 0, "%s", buf);
    close(fd);
    /* a whole method and its space is HTTP at once, whatever follows */
    fd = tcp_connect(port(), false);
    ck_assert_int_eq(send_all(fd, "POST \r\n\r\n", 9), 0);
    size_t n = recv_until_close(fd, buf, sizeof buf - 1, TIMEOUT_MS);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "%s", buf);
    close(fd);
    /* 0x16 and not a TLS version: the framing's */
    fd = tcp_connect(port(), false);
    ask(fd, "\x16x\n", buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "TCP ", 4) == 0, "%s", buf);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(the_proxy_header_is_read_before_detection)
{
    start("http", "proxy_protocol = v1\nproxy_from = 127.0.0.1\n");
    char buf[2048];
    int fd = tcp_connect(port(), false);
    const char req[] = "PROXY TCP4 192.0.2.9 127.0.0.1 40404 80\r\n"
                       "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                       "Connection: close\r\n\r\nx";
    ck_assert_int_eq(send_all(fd, req, sizeof req - 1), 0);
    size_t n = recv_until_close(fd, buf, sizeof buf - 1, TIMEOUT_MS);
    buf[n] = '\0';
    ck_assert_msg(strstr(buf, "\r\n\r\nHTTP 192.0.2.9 40404 S"), "%s", buf);
    close(fd);
    fd = tcp_connect(port(), false);
    ask(fd, "PROXY TCP4 192.0.2.9 127.0.0.1 40405 80\r\nplain\n", buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "TCP 192.0.2.9 40405 S", 21) == 0, "%s", buf);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* A service whose framing is a codec plugin (resp): its state is made
 * for every tcp:// connection, and given back when detect finds HTTP, so
 * redis-cli, curl and a WebSocket are served on one port. */
START_TEST(a_codec_plugins_port_serves_http_and_websockets_too)
{
    morphd_proc_serve(&proc, PLUGIN_DIR, "", "[service s]\nlisten = "
                      "tcp://127.0.0.1:0\ntransform = uppercase\n"
                      "framing = resp\ndetect = http\n", admin, sizeof admin);
    const char *w = getenv("MORPH_TEST_WRAPPER") ? "30" : "5";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d ECHO hi && "
             "curl -sS --data-binary 'from curl' http://127.0.0.1:%d/ && echo && "
             "%s -w %s ws://127.0.0.1:%d/ from a websocket", port(), port(),
             MORPH_BIN, w, port());
    ck_assert_str_eq(shell_output(cmd), "ECHO HI\nFROM CURL\nFROM A WEBSOCKET\n");
    morphd_proc_finish(&proc);
}
END_TEST

/* morphd -t on `ini`: exits 78 and says `want`. */
static void refused(const char *ini, const char *want)
{
    char *path = write_temp_file(ini);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -t -c %s 2>&1; echo rc=$?", MORPHD_BIN, path);
    char *out = shell_output(cmd);
    ck_assert_msg(strstr(out, want) && strstr(out, "rc=78"), "%s", out);
    unlink(path);
    free(path);
}

START_TEST(what_detect_cannot_serve_is_refused)
{
    char ini[1024];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\nallow_root = yes\n"
             "[service a]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "detect = tls ftp\n", PLUGIN_DIR);
    refused(ini, ":7: detect: 'ftp' is not a protocol detect tells apart");
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\nallow_root = yes\n"
             "[service a]\nlisten = http://127.0.0.1:0\ntransform = uppercase\n"
             "detect = http\n", PLUGIN_DIR);
    refused(ini, ":7: service 'a': detect tells protocols apart on tcp:// "
                 "endpoints, and this service has none");
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\nallow_root = yes\n"
             "[service a]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "detect = tls\n", PLUGIN_DIR);
    refused(ini, "tls_certificate");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("detect");
    TCase *tc = tcase_create("detect");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, one_port_serves_plain_http_and_tls);
    tcase_add_test(tc, an_ambiguous_prefix_waits_detect_timeout);
    tcase_add_test(tc, the_proxy_header_is_read_before_detection);
    tcase_add_test(tc, what_detect_cannot_serve_is_refused);
    tcase_add_test(tc, a_codec_plugins_port_serves_http_and_websockets_too);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
