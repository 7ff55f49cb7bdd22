/* Issue 24: http:// endpoints over real sockets. A POST's body is the
 * message and the reply the body of a 200 (curl, Python's http.client and
 * raw bytes); keep-alive, pipelining, HTTP/1.0, Connection: close,
 * chunked bodies, 100-continue; and every refusal (405, 400, 413, 414,
 * 417, 431, 505, the smuggling shapes), 500 for a failed message and 204
 * for no reply, each while another client goes on being served. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char admin[108];

static void teardown(void) { morphd_proc_cleanup(&proc); unlink(admin); }

/* Service s: http:// and tcp:// (line framing) with `lines`. */
static void start(const char *dirs, const char *lines)
{
    char services[1024];
    snprintf(services, sizeof services, "[service s]\nlisten = "
             "http://127.0.0.1:0 tcp://127.0.0.1:0\nframing = line\n%s", lines);
    morphd_proc_serve(&proc, dirs, "", services, admin, sizeof admin);
}

static int http_port(void) { return morphd_proc_need_port(&proc, "s", "http", false); }

static int connect_http(void)
{
    int fd = tcp_connect(http_port(), false);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* One response read from fd into buf (NUL-terminated): its status, and
 * its body at *body (Content-Length bytes). Returns the status, or -1
 * when the connection closed or stalled first. */
static int read_response(int fd, char *buf, size_t cap, char **body,
                         size_t *body_len)
{
    size_t have = 0;
    char *end = NULL;
    long long length = 0;
    for (;;) {
        if (end == NULL && (end = memmem(buf, have, "\r\n\r\n", 4)) != NULL) {
            end += 4;
            char *cl = strcasestr(buf, "\r\nContent-Length: ");
            length = cl != NULL && cl < end ? atoll(cl + 18) : 0;
        }
        if (end != NULL && (size_t)(end - buf) + (size_t)length <= have)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (have + 1 >= cap || poll(&p, 1, TIMEOUT_MS) != 1)
            return -1;
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
    }
    /* what came after this response is the next one's: keep it unread
     * by reading only whole responses here (the tests send one at a time
     * unless they read several in order) */
    *body = end;
    *body_len = (size_t)length;
    end[length] = '\0';
    return atoi(buf + 9);
}

/* Sends `req` and expects a response of `status` with `body`. */
static void exchange(int fd, const char *req, int status, const char *body)
{
    ck_assert_int_eq(send_all(fd, req, strlen(req)), 0);
    char buf[16384], *b;
    size_t n;
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), status);
    if (body != NULL)
        ck_assert_str_eq(b, body);
}

/* After a response the server closes the connection: nothing more. */
static void closed(int fd)
{
    char buf[256];
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 0);
}

#define SEND(fd, lit) ck_assert_int_eq(send_all(fd, lit, sizeof lit - 1), 0)

static void bystander(int fd, int round)
{
    char req[128], want[16];
    snprintf(want, sizeof want, "BY%d", round);
    snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: t\r\n"
             "Content-Length: %zu\r\n\r\nby%d", strlen(want), round);
    exchange(fd, req, 200, want);
}


START_TEST(curl_posts_and_keeps_the_connection)
{
    start(PLUGIN_DIR, "transform = uppercase\n");
    char cmd[512];
    int port = http_port();
    snprintf(cmd, sizeof cmd, "curl -sS -i -H 'Content-Type: text/x-morph' "
             "--data-binary 'hello world' http://127.0.0.1:%d/up", port);
    char *out = shell_output(cmd);
    ck_assert_msg(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", out);
    ck_assert_msg(strstr(out, "\r\nContent-Type: text/x-morph\r\n"), "%s", out);
    ck_assert_msg(strstr(out, "\r\nContent-Length: 11\r\n"), "%s", out);
    ck_assert_msg(strstr(out, "\r\n\r\nHELLO WORLD") != NULL, "%s", out);
    /* Date: an IMF-fixdate, "Thu, 03 Dec 2026 18:14:25 GMT" */
    const char *date = strstr(out, "\r\nDate: ");
    ck_assert_msg(date != NULL && date[11] == ',' && date[12] == ' ' &&
                      strncmp(date + 33, " GMT\r\n", 6) == 0 &&
                      strstr("SunMonTueWedThuFriSat", (char[4]){date[8], date[9], date[10], 0}),
                  "%s", out);
    /* no Content-Type: application/octet-stream; two requests, one
     * connection (curl's --next reuses it: num_connects 1 then 0) */
    snprintf(cmd, sizeof cmd, "curl -sS -o /dev/null -w '%%{content_type} "
             "%%{num_connects}\\n' -H 'Content-Type:' --data-binary a "
             "http://127.0.0.1:%d/ --next -o /dev/null -w '%%{num_connects}\\n' "
             "--data-binary b http://127.0.0.1:%d/", port, port);
    out = shell_output(cmd);
    ck_assert_str_eq(out, "application/octet-stream 1\n0\n");
    /* chunked upload and 100-continue, as curl sends them */
    snprintf(cmd, sizeof cmd, "curl -sS -H 'Transfer-Encoding: chunked' "
             "--data-binary chunked http://127.0.0.1:%d/", port);
    ck_assert_str_eq(shell_output(cmd), "CHUNKED");
    snprintf(cmd, sizeof cmd, "curl -sS -i -H 'Expect: 100-continue' "
             "--data-binary later http://127.0.0.1:%d/", port);
    out = shell_output(cmd);
    ck_assert_msg(strncmp(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK",
                          40) == 0, "%s", out);
    ck_assert_msg(strstr(out, "\r\n\r\nLATER"), "%s", out);
    /* the same service's tcp:// endpoint keeps its line framing */
    int fd = tcp_connect(morphd_proc_need_port(&proc, "s", "tcp", false), false);
    SEND(fd, "line\n");
    char buf[8];
    ck_assert_uint_eq(recv_exact(fd, buf, 5, TIMEOUT_MS), 5);
    ck_assert_int_eq(memcmp(buf, "LINE\n", 5), 0);
    close(fd);
    ck_assert_int_ge(morph_stat(admin, "s", "messages_in"), 6); /* 5 + 1 */
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(python_http_client)
{
    start(PLUGIN_DIR, "transform = uppercase\n");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 - <<'PY'\n"
             "import http.client\n"
             "c = http.client.HTTPConnection('127.0.0.1', %d, timeout=5)\n"
             "for body in (b'one', b'two'):\n"
             "    c.request('POST', '/', body)\n"
             "    r = c.getresponse()\n"
             "    print(r.status, r.read().decode())\n"
             "c.request('POST', '/', iter([b'chu', b'nked']), "
             "encode_chunked=True)\n"
             "r = c.getresponse()\n"
             "print(r.status, r.read().decode())\n"
             "c.request('GET', '/')\n"
             "r = c.getresponse()\n"
             "print(r.status, r.getheader('Allow'), r.read().decode().strip())\n"
             "PY", http_port());
    ck_assert_str_eq(shell_output(cmd), "200 ONE\n200 TWO\n200 CHUNKED\n"
                               "405 POST 405 Method Not Allowed\n");
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(pipelining_versions_and_close)
{
    start(PLUGIN_DIR, "transform = uppercase\n");
    int by = connect_http();
    bystander(by, 1);
    /* two requests in one write: answered in order */
    int fd = connect_http();
    static const char two[] =
        "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
        "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nde";
    ck_assert_int_eq(send_all(fd, two, sizeof two - 1), 0);
    char buf[8192], *b;
    size_t n, have = 0;
    while (have < sizeof buf - 1 && memmem(buf, have, "\r\n\r\nDE", 6) == NULL) {
        struct pollfd p = {fd, POLLIN, 0};
        ck_assert_int_eq(poll(&p, 1, TIMEOUT_MS), 1);
        ssize_t got = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        ck_assert_int_gt(got, 0);
        have += (size_t)got;
    }
    buf[have] = '\0';
    char *first = strstr(buf, "\r\n\r\nABC"), *second = strstr(buf, "\r\n\r\nDE");
    ck_assert_msg(first != NULL && second != NULL && first < second, "%s", buf);
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 200 OK", 15), 0);
    close(fd);
    /* HTTP/1.0 closes after its response, saying so; so does
     * Connection: close */
    static const char *const ends[] = {
        "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nxy",
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        "Content-Length: 2\r\n\r\nxy",
    };
    for (size_t i = 0; i < 2; i++) {
        fd = connect_http();
        ck_assert_int_eq(send_all(fd, ends[i], strlen(ends[i])), 0);
        ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
        ck_assert_msg(strstr(buf, "\r\nConnection: close\r\n"), "%s", buf);
        ck_assert_str_eq(b, "XY");
        closed(fd);
        close(fd);
    }
    /* a request a byte at a time (its head is looked at again only once
     * its blank line may be there), then one with Expect, a byte at a
     * time too: one 100 Continue */
    static const char drip[] = "POST /d HTTP/1.1\r\nHost: t\r\n"
                               "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    fd = connect_http();
    for (size_t i = 0; i < sizeof drip - 1; i++) {
        ck_assert_int_eq(send_all(fd, drip + i, 1), 0);
        usleep(1000);
    }
    ck_assert_uint_eq(recv_exact(fd, buf, 25, TIMEOUT_MS), 25);
    ck_assert_int_eq(memcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(send_all(fd, "abc" + i, 1), 0);
        usleep(1000);
    }
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_str_eq(b, "ABC");
    close(fd);
    /* HTTP/1.0 with keep-alive stays */
    fd = connect_http();
    exchange(fd, "POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
                 "Content-Length: 1\r\n\r\nq", 200, "Q");
    exchange(fd, "POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
                 "Content-Length: 1\r\n\r\nr", 200, "R");
    close(fd);
    bystander(by, 2);
    close(by);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(refusals_close_and_others_are_served)
{
    start(PLUGIN_DIR, "transform = uppercase\nmax_message = 64\n"
                      "http_max_header_size = 4K\n");
    int by = connect_http();
    static const struct { const char *req; int status; } bad[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\n\r\n", 400}, /* no Host */
        {"POST / HTTP/2.0\r\n\r\n", 505},
        {"POST / HTTP/1.1\r\nHost: t\r\nExpect: nothing\r\n\r\n", 417},
        {"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 65\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "41\r\n", 413},
        /* the smuggling shapes */
        {"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
         "Content-Length: 2\r\n\r\nab", 400},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\na", 400},
        {"POST / HTTP/1.1\r\nHost: t\rContent-Length: 1\r\n\r\na", 400},
        {"POST / HTTP/1.1\r\nHost : t\r\n\r\n", 400},
        /* a method with a body */
        {"PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\na", 405},
    };
    char buf[16384], *b;
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd = connect_http();
        ck_assert_int_eq(send_all(fd, bad[i].req, strlen(bad[i].req)), 0);
        int st = read_response(fd, buf, sizeof buf, &b, &n);
        ck_assert_msg(st == bad[i].status, "request %zu: %d", i, st);
        ck_assert_msg(strstr(buf, "\r\nConnection: close\r\n"), "%zu: %s", i, buf);
        closed(fd);
        close(fd);
        bystander(by, (int)i);
    }
    /* 414 and 431 */
    size_t big = 9000;
    char *line = malloc(big + 64);
    memcpy(line, "POST /", 6);
    memset(line + 6, 'a', big);
    strcpy(line + 6 + big, " HTTP/1.1\r\n");
    int fd = connect_http();
    ck_assert_int_eq(send_all(fd, line, strlen(line)), 0);
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 414);
    closed(fd);
    close(fd);
    fd = connect_http();
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\n");
    memcpy(line, "X-Big: ", 7);
    memset(line + 7, 'b', big);
    strcpy(line + 7 + big, "\r\nX-Big2: ");
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(send_all(fd, line, strlen(line)), 0);
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 431);
    closed(fd);
    close(fd);
    free(line);
    /* http_max_header_size: 3 KiB of fields pass, 5 KiB do not */
    for (int kib = 3; kib <= 5; kib += 2) {
        char *req = malloc(8192);
        int len = snprintf(req, 8192, "POST / HTTP/1.1\r\nHost: t\r\nX-Fill: ");
        memset(req + len, 'f', (size_t)kib * 1024);
        len += kib * 1024;
        len += snprintf(req + len, 8192 - (size_t)len,
                      "\r\nContent-Length: 2\r\n\r\nok");
        fd = connect_http();
        ck_assert_int_eq(send_all(fd, req, (size_t)len), 0);
        size_t body_len;
        ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &body_len),
                         kib == 3 ? 200 : 431);
        close(fd);
        free(req);
    }
    /* a GET without a body: 405, and the connection goes on */
    fd = connect_http();
    SEND(fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 405);
    ck_assert_msg(strstr(buf, "\r\nAllow: POST\r\n"), "%s", buf);
    exchange(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok",
             200, "OK");
    close(fd);
    bystander(by, 99);
    close(by);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(failed_no_reply_and_plugin_close)
{
    char dirs[1024];
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, TEST_PLUGIN_DIR);
    start(dirs, "transform = failing | replyflags\n");
    int fd = connect_http();
    /* a failed message: 500, the reason in the log and not in the body */
    exchange(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\nfail now",
             500, "500 Internal Server Error\n");
    ck_assert_int_ge(morphd_proc_log_count(&proc, "asked to fail"), 1);
    /* no reply: 204, and the connection goes on */
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\n"
                                  "Content-Length: 4\r\n\r\nnone");
    char buf[4096], *b;
    size_t n;
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 204);
    ck_assert_ptr_null(strcasestr(buf, "Content-Length"));
    exchange(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
             200, "hi");
    /* a plugin that closes: the response says so, then the close */
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\n"
                                  "Content-Length: 5\r\n\r\nclose");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_msg(strstr(buf, "\r\nConnection: close\r\n"), "%s", buf);
    ck_assert_str_eq(b, "bye");
    closed(fd);
    close(fd);
    ck_assert_int_eq(morph_stat(admin, "s", "errors"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(plugins_see_transport_http)
{
    /* only http://, and framing left at its default (stream): the
     * framing is its other endpoints', so a plugin that is not
     * chunk-safe serves here */
    morphd_proc_serve(&proc, PLUGIN_DIR, "", "[service s]\nlisten = "
                      "http://127.0.0.1:0\ntransform = whoami\n", admin,
                      sizeof admin);
    int fd = connect_http();
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\n"
                                  "Content-Length: 1\r\n\r\nx");
    char buf[4096], *b;
    size_t n;
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_msg(strncmp(b, "http 127.0.0.1 ", 15) == 0, "%s", b);
    ck_assert_msg(strstr(b, " s") != NULL, "%s", b);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* The HTTP host services of ABI 5 (tests/plugins/http_probe.c): a plugin
 * reads the method, the target with its query, the version and the
 * header fields, sets the status and adds header fields; the fields morphd
 * writes itself, and statuses without a body, are refused; a deferred
 * message reads its request after its input is gone; over tcp:// there is
 * no request. */
START_TEST(plugins_read_the_request_and_shape_the_response)
{
    char services[512];
    snprintf(services, sizeof services, "[service s]\nlisten = "
             "http://127.0.0.1:0 tcp://127.0.0.1:0\nframing = line\n"
             "transform = http_probe\n");
    morphd_proc_serve(&proc, TEST_PLUGIN_DIR, "", services, admin,
                      sizeof admin);
    int fd = connect_http();
    exchange(fd, "POST /a/b?c=1&d HTTP/1.1\r\nHost: t\r\nX-Probe:  hi \r\n"
             "Content-Length: 1\r\n\r\nx", 200,
             "POST /a/b?c=1&d 11 x=hi fields=3");
    char buf[16384], *b;
    size_t n;
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nX-Status: 201\r\n"
             "Content-Length: 1\r\n\r\nx");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 201);
    ck_assert_str_eq(b, "POST / 11 x=- fields=3");
    ck_assert_msg(strncmp(buf, "HTTP/1.1 201 Created\r\n", 22) == 0, "%s", buf);
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nX-Status: 204\r\n"
             "Content-Length: 1\r\n\r\nx");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_str_eq(b, "POST / 11 x=- fields=3 status-refused");
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nX-Add: X-Thing: yes\r\n"
             "Content-Type: text/x-in\r\nContent-Length: 1\r\n\r\nx");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_msg(strstr(buf, "\r\nX-Thing: yes\r\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "\r\nContent-Type: text/x-in\r\n"), "%s", buf);
    /* a Content-Type of the plugin's replaces the request's */
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nX-Add: content-type: text/html\r\n"
             "Content-Type: text/x-in\r\nContent-Length: 1\r\n\r\nx");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_msg(strstr(buf, "\r\ncontent-type: text/html\r\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "text/x-in") == NULL, "%s", buf);
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nX-Add: Content-Length: 99\r\n"
             "Content-Length: 1\r\n\r\nx");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_str_eq(b, "POST / 11 x=- fields=3 header-refused");
    /* deferred and completed inside the same call: what it set through
     * the pending message holds */
    SEND(fd, "POST /now HTTP/1.1\r\nHost: t\r\nX-Defer: now\r\n"
             "X-Status: 203\r\nX-Add: X-Now: 1\r\nContent-Length: 1\r\n\r\nx");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 203);
    ck_assert_msg(strstr(buf, "\r\nX-Now: 1\r\n") != NULL, "%s", buf);
    ck_assert_str_eq(b, "POST /now 11 x=- fields=5");
    /* deferred, with a request pipelined behind it: the first reads its
     * own copy of its head, the second its own */
    SEND(fd, "POST /late HTTP/1.1\r\nHost: t\r\nX-Defer: 1\r\nX-Probe: late\r\n"
             "X-Status: 202\r\nX-Add: X-Late: 1\r\nContent-Length: 1\r\n\r\nx"
             "POST /next HTTP/1.1\r\nHost: t\r\nX-Probe: next\r\n"
             "Connection: close\r\nContent-Length: 1\r\n\r\ny");
    /* both responses, in order, however they arrive */
    n = recv_until_close(fd, buf, sizeof buf - 1, TIMEOUT_MS);
    buf[n] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 202 Accepted\r\n", 23) == 0, "%s",
                  buf);
    char *second = strstr(buf + 1, "HTTP/1.1 200 ");
    ck_assert_msg(second != NULL, "%s", buf);
    *second = '\0';
    ck_assert_msg(strstr(buf, "\r\nX-Late: 1\r\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "\r\n\r\nPOST /late 11 x=late fields=6"),
                  "%s", buf);
    *second = 'H';
    ck_assert_msg(strstr(second, "X-Late") == NULL, "%s", second);
    ck_assert_msg(strstr(second, "\r\n\r\nPOST /next 11 x=next fields=4"),
                  "%s", second);
    close(fd);
    fd = connect_http();
    exchange(fd, "POST /old HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 200,
             "POST /old 10 x=- fields=1");
    close(fd);
    fd = tcp_connect(morphd_proc_need_port(&proc, "s", "tcp", false), false);
    ck_assert_int_ge(fd, 0);
    SEND(fd, "hello\n");
    char line[64];
    ck_assert_ptr_nonnull(recv_line(fd, line, sizeof line, TIMEOUT_MS));
    ck_assert_str_eq(line, "not http");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* http_allow_origin: a preflight from an allowed origin is answered 204
 * with what the browser asked for, a response to it carries the origin;
 * another origin gets neither (its preflight is a 405), and * allows
 * any. */
START_TEST(cors_answers_preflights_for_allowed_origins)
{
    start(PLUGIN_DIR, "transform = uppercase\n"
                      "http_allow_origin = https://app.example "
                      "http://localhost:8080\n");
    int fd = connect_http();
    char buf[16384], *b;
    size_t n;
    SEND(fd, "OPTIONS /up HTTP/1.1\r\nHost: t\r\nOrigin: http://localhost:8080"
             "\r\nAccess-Control-Request-Method: POST\r\n"
             "Access-Control-Request-Headers: content-type, x-a\r\n\r\n");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 204);
    ck_assert_msg(strstr(buf, "\r\nAccess-Control-Allow-Origin: "
                              "http://localhost:8080\r\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "\r\nAccess-Control-Allow-Methods: POST\r\n"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, "\r\nAccess-Control-Allow-Headers: "
                              "content-type, x-a\r\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "\r\nVary: Origin\r\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "Content-Length") == NULL, "%s", buf);
    SEND(fd, "POST /up HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n"
             "Content-Length: 2\r\n\r\nhi");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_str_eq(b, "HI");
    ck_assert_msg(strstr(buf, "\r\nAccess-Control-Allow-Origin: "
                              "https://app.example\r\n"), "%s", buf);
    /* another origin, or one that differs by a letter or a slash */
    const char *others[] = {"https://evil.example", "https://app.example/",
                            "https://APP.example", "null"};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        char req[512];
        snprintf(req, sizeof req, "OPTIONS / HTTP/1.1\r\nHost: t\r\nOrigin: "
                 "%s\r\nAccess-Control-Request-Method: POST\r\n\r\n",
                 others[i]);
        ck_assert_int_eq(send_all(fd, req, strlen(req)), 0);
        ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 405);
        ck_assert_msg(strstr(buf, "Access-Control") == NULL, "%s", buf);
        snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: t\r\nOrigin: "
                 "%s\r\nContent-Length: 1\r\n\r\nx", others[i]);
        ck_assert_int_eq(send_all(fd, req, strlen(req)), 0);
        ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
        ck_assert_msg(strstr(buf, "Access-Control") == NULL, "%s", buf);
    }
    /* a plain OPTIONS (no preflight) is any other method's 405 */
    exchange(fd, "OPTIONS / HTTP/1.1\r\nHost: t\r\n"
             "Origin: https://app.example\r\n\r\n", 405, NULL);
    close(fd);
    morphd_proc_finish(&proc);
    start(PLUGIN_DIR, "transform = uppercase\nhttp_allow_origin = *\n");
    fd = connect_http();
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nOrigin: https://any.example\r\n"
             "Content-Length: 1\r\n\r\nx");
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_msg(strstr(buf, "\r\nAccess-Control-Allow-Origin: *\r\n"),
                  "%s", buf);
    /* a request without Origin (curl, a same-origin page) gets none */
    exchange(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx",
             200, "X");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* A refused request is counted as any framing's bad frame (errors,
 * frames_invalid; 413: frames_too_long) and its reason logged. */
START_TEST(refusals_are_counted_and_logged)
{
    start(PLUGIN_DIR, "transform = uppercase\nmax_message = 16\n");
    const char *bad[] = {
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99\r\n\r\n",
    };
    const int status[] = {400, 400, 413};
    for (int i = 0; i < 3; i++) {
        int fd = connect_http();
        ck_assert_int_eq(send_all(fd, bad[i], strlen(bad[i])), 0);
        char buf[4096], *b;
        size_t n;
        ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), status[i]);
        closed(fd);
        close(fd);
    }
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_invalid", 2), 2);
    ck_assert_int_eq(morph_stat(admin, "s", "frames_too_long"), 1);
    ck_assert_int_eq(morph_stat(admin, "s", "errors"), 3);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "sent a request answered 400: "
                                           "both Content-Length and "
                                           "Transfer-Encoding"), 1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "answered 413: a body over "
                                           "max_message"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* http_request_timeout: a head that does not arrive in time (slowloris,
 * or nothing at all) gets 408 and the close; a slow body, or a
 * keep-alive connection quiet between requests, does not. */
START_TEST(request_timeout_answers_408)
{
    start(PLUGIN_DIR, "transform = uppercase\nhttp_request_timeout = 1s\n");
    int slow = connect_http(), silent = connect_http();
    SEND(slow, "POST / HTTP/1.1\r\nHost: t\r\n");
    int body = connect_http();
    SEND(body, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab");
    int quiet = connect_http();
    exchange(quiet, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nq",
             200, "Q");
    char buf[4096], *b;
    size_t n;
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? slow : silent;
        ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 408);
        ck_assert_msg(strstr(buf, "\r\nConnection: close\r\n"), "%s", buf);
        closed(fd);
        close(fd);
    }
    usleep(200 * 1000); /* past the timeout for every connection */
    SEND(body, "cd");
    ck_assert_int_eq(read_response(body, buf, sizeof buf, &b, &n), 200);
    ck_assert_str_eq(b, "ABCD");
    exchange(quiet, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nr",
             200, "R");
    close(body);
    close(quiet);
    ck_assert_int_eq(morph_stat(admin, "s", "errors"), 2);
    morphd_proc_finish(&proc);
}
END_TEST

/* framing = stream (the default) is its tcp:// endpoint's: over http://
 * each body is still one message, and a failed one is a 500 on a
 * connection that goes on (in a stream, a failed chunk ends it). */
/* Everything a connection sends until it closes, NUL-terminated. */
static size_t read_to_close(int fd, char *buf, size_t cap)
{
    size_t n = recv_until_close(fd, buf, cap - 1, TIMEOUT_MS);
    buf[n] = '\0';
    return n;
}

/* framing = stream: bodies go through as they arrive, of any length, and
 * the response is chunked (an HTTP/1.0 client's goes to the close). */
START_TEST(stream_bodies_are_transformed_as_they_arrive)
{
    char dirs[1024];
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, TEST_PLUGIN_DIR);
    morphd_proc_serve(&proc, dirs, "", "[service s]\nlisten = "
                      "http://127.0.0.1:0\ntransform = uppercase\n"
                      "framing = stream\nmax_message = 1K\n", admin,
                      sizeof admin);
    /* curl: a body of 2 MB (over max_message), by Content-Length and by
     * chunks; each answered whole, chunked */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "head -c 2000000 /dev/zero | tr '\\0' s > big && "
             "curl -sS -D head --data-binary @big http://127.0.0.1:%d/ | "
             "tr -d S | wc -c && grep -ci '^transfer-encoding: chunked' head && "
             "curl -sS -T big -X POST http://127.0.0.1:%d/ | wc -c && "
             "curl -sS -0 --data-binary 'old client' http://127.0.0.1:%d/ && "
             "rm -f big head", http_port(), http_port(), http_port());
    ck_assert_str_eq(shell_output(cmd), "0\n1\n2000000\nOLD CLIENT");
    /* morph http:// reads the chunked responses */
    snprintf(cmd, sizeof cmd, "%s -w %s http://127.0.0.1:%d/ streamed hello && "
             "printf 'a\\nb\\n' | %s -w %s http://127.0.0.1:%d/", MORPH_BIN,
             getenv("MORPH_TEST_WRAPPER") ? "30" : "5", http_port(), MORPH_BIN,
             getenv("MORPH_TEST_WRAPPER") ? "30" : "5", http_port());
    ck_assert_str_eq(shell_output(cmd), "STREAMED HELLO\nA\nB\n");
    /* pipelined: a body by length, then one in chunks, then an empty one */
    int fd = connect_http();
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
             "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "2\r\nde\r\n1;ext=1\r\nf\r\n0\r\nX-Trailer: t\r\n\r\n"
             "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n");
    char buf[8192];
    read_to_close(fd, buf, sizeof buf);
    close(fd);
    const char *a = strstr(buf, "\r\n\r\n3\r\nABC\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n");
    ck_assert_msg(a != NULL, "%s", buf);
    ck_assert_msg(strstr(a, "\r\n\r\n2\r\nDE\r\n1\r\nF\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"),
                  "%s", buf);
    ck_assert_msg(strstr(a, "Connection: close\r\n\r\n0\r\n\r\n"), "%s", buf);
    morphd_proc_finish(&proc);
}
END_TEST

/* What goes wrong in a streamed body: before its response began, a
 * status; after, the response is cut short (no last chunk) and the
 * connection closes; everyone else is served on. */
START_TEST(stream_failures_cut_the_response_short)
{
    morphd_proc_serve(&proc, TEST_PLUGIN_DIR, "", "[service s]\nlisten = "
                      "http://127.0.0.1:0\ntransform = failing\n"
                      "framing = stream\n", admin, sizeof admin);
    int by = connect_http();
    /* the first piece fails: 500, then the close */
    int fd = connect_http();
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\nfail now");
    char buf[8192];
    read_to_close(fd, buf, sizeof buf);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 500 ", 13) == 0, "%s", buf);
    /* a later piece fails: what went out stays, without the last chunk */
    fd = connect_http();
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nfine \r\n");
    size_t n = 0;
    while (n < sizeof buf - 1 && strstr(buf, "fine") == NULL) {
        ck_assert_uint_gt(recv_exact(fd, buf + n, 1, TIMEOUT_MS), 0);
        buf[++n] = '\0';
    }
    ck_assert_msg(strstr(buf, "Transfer-Encoding: chunked"), "%s", buf);
    SEND(fd, "4\r\nfail\r\n0\r\n\r\n");
    read_to_close(fd, buf, sizeof buf);
    close(fd);
    ck_assert_msg(strstr(buf, "0\r\n\r\n") == NULL, "%s", buf);
    /* a malformed chunk: 400 first, a cut response later */
    fd = connect_http();
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "zz\r\n");
    read_to_close(fd, buf, sizeof buf);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "%s", buf);
    fd = connect_http();
    SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "2\r\nok\r\nnot a size\r\n");
    read_to_close(fd, buf, sizeof buf);
    close(fd);
    ck_assert_msg(strstr(buf, "2\r\nok\r\n") && !strstr(buf, "0\r\n\r\n"), "%s", buf);
    /* the bystander, all along */
    SEND(by, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nby");
    n = 0;
    buf[0] = '\0';
    while (n < sizeof buf - 1 && strstr(buf, "\r\n0\r\n\r\n") == NULL) {
        ck_assert_uint_gt(recv_exact(by, buf + n, 1, TIMEOUT_MS), 0);
        buf[++n] = '\0';
    }
    ck_assert_msg(strstr(buf, "\r\n2\r\nby\r\n0\r\n\r\n"), "%s", buf);
    close(by);
    ck_assert_int_eq(morph_stat(admin, "s", "errors"), 4);
    morphd_proc_finish(&proc);
}
END_TEST

/* A 1 GB body through framing = stream (64 MB under valgrind): answered
 * whole and uppercased, while another client is served, in bounded
 * memory (morphd's peak RSS, where no sanitizer's quarantine keeps what
 * was freed). */
START_TEST(a_gigabyte_streams_in_bounded_memory)
{
    morphd_proc_serve(&proc, PLUGIN_DIR, "", "[service s]\nlisten = "
                      "http://127.0.0.1:0\ntransform = uppercase\n"
                      "framing = stream\nmax_pending_output = 1M\n", admin,
                      sizeof admin);
    bool slow = getenv("MORPH_TEST_WRAPPER") != NULL;
    long long size = slow ? 64ll << 20 : 1ll << 30;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "head -c %lld /dev/zero | tr '\\0' g | "
             "curl -sS -T - -X POST -H 'Expect:' http://127.0.0.1:%d/ | "
             "tr -d G | wc -c; echo done", size, http_port());
    FILE *big = popen(cmd, "r");
    ck_assert_ptr_nonnull(big);
    /* a bystander is answered while the body goes through */
    for (int i = 0; i < 20; i++) {
        int fd = connect_http();
        SEND(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                 "Connection: close\r\n\r\nby");
        char buf[2048];
        read_to_close(fd, buf, sizeof buf);
        close(fd);
        ck_assert_msg(strstr(buf, "\r\n2\r\nBY\r\n0\r\n\r\n"), "%s", buf);
        usleep(20000);
    }
    char out[256];
    size_t n = fread(out, 1, sizeof out - 1, big);
    out[n] = '\0';
    ck_assert_int_eq(pclose(big), 0);
    ck_assert_str_eq(out, "0\ndone\n"); /* every byte came back uppercased */
    ck_assert_int_ge(morph_stat(admin, "s", "bytes_out"), size);
#if !defined(MORPH_SANITIZE) && !defined(__SANITIZE_ADDRESS__)
    if (!slow) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", (int)proc.pid);
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        long hwm = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &hwm) == 1)
                break;
        fclose(f);
        ck_assert_msg(hwm > 0 && hwm < 64 * 1024, "peak RSS %ld KiB", hwm);
    }
#endif
    morphd_proc_finish(&proc);
}
END_TEST

/* http:// is interchangeable with tcp:// for a service: a PROXY header
 * before the request (HAProxy's send-proxy) gives plugins the client's
 * address, worker processes serve it, and a reload keeps it serving. */
START_TEST(proxy_workers_and_reload)
{
    /* (under valgrind a worker process takes seconds to exit, its leak
     * check included: past the default shutdown_timeout of 5 s, after
     * which the supervisor kills it and morphd exits 1) */
    morphd_proc_serve(&proc, PLUGIN_DIR,
                      getenv("MORPH_TEST_WRAPPER") != NULL
                          ? "isolation = process\nworkers = 2\n"
                            "shutdown_timeout = 30s\n"
                          : "isolation = process\nworkers = 2\n",
                      "[service s]\nlisten = http://127.0.0.1:0\n"
                      "transform = whoami\nproxy_protocol = v1\n"
                      "proxy_from = 127.0.0.1\n", admin, sizeof admin);
    int fd = connect_http();
    SEND(fd, "PROXY TCP4 192.0.2.7 127.0.0.1 51234 80\r\n"
             "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx");
    char buf[4096], *b;
    size_t n;
    ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
    ck_assert_msg(strncmp(b, "http 192.0.2.7 51234 s", 22) == 0, "%s", b);
    close(fd);
    int port = http_port();
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    ck_assert_int_eq(http_port(), port); /* the same socket, handed over */
    for (int i = 0; i < 4; i++) { /* whichever worker takes it */
        fd = connect_http();
        SEND(fd, "PROXY TCP4 192.0.2.8 127.0.0.1 40000 80\r\n"
                 "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\ny");
        ck_assert_int_eq(read_response(fd, buf, sizeof buf, &b, &n), 200);
        ck_assert_msg(strncmp(b, "http 192.0.2.8 40000 s", 22) == 0, "%s", b);
        close(fd);
    }
    morphd_proc_finish(&proc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http1");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 300); /* a gigabyte under ASan */
    tcase_add_test(tc, curl_posts_and_keeps_the_connection);
    tcase_add_test(tc, python_http_client);
    tcase_add_test(tc, pipelining_versions_and_close);
    tcase_add_test(tc, refusals_close_and_others_are_served);
    tcase_add_test(tc, failed_no_reply_and_plugin_close);
    tcase_add_test(tc, plugins_see_transport_http);
    tcase_add_test(tc, plugins_read_the_request_and_shape_the_response);
    tcase_add_test(tc, cors_answers_preflights_for_allowed_origins);
    tcase_add_test(tc, refusals_are_counted_and_logged);
    tcase_add_test(tc, request_timeout_answers_408);
    tcase_add_test(tc, stream_bodies_are_transformed_as_they_arrive);
    tcase_add_test(tc, stream_failures_cut_the_response_short);
    tcase_add_test(tc, a_gigabyte_streams_in_bounded_memory);
    tcase_add_test(tc, proxy_workers_and_reload);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
