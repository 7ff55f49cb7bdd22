/* Issue 24: WebSocket on http:// endpoints over real sockets. Python's
 * websockets (a client nobody here wrote) sends text, binary, fragmented
 * and large messages, pings and closes; raw frames against the protocol
 * get their close codes (1002, 1007, 1009) while another WebSocket goes
 * on being served; a failed message closes 1011, a plugin that closes
 * 1000, idle_timeout 1001; handshakes are refused 426, 403 and 400;
 * deferred messages are answered in order, and frames sent with the
 * handshake are read after it. */
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

static void start(const char *dirs, const char *lines)
{
    char services[1024];
    snprintf(services, sizeof services, "[service s]\nlisten = "
             "http://127.0.0.1:0\n%s", lines);
    morphd_proc_serve(&proc, dirs, "", services, admin, sizeof admin);
}

static int http_port(void) { return morphd_proc_need_port(&proc, "s", "http", false); }


/* Reads exactly n bytes (the harness's, with its valgrind allowance);
 * false when the connection ended or stalled. */
static bool recv_n(int fd, void *buf, size_t n)
{
    return recv_exact(fd, buf, n, TIMEOUT_MS) == n;
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* A handshake's request with `extra` header lines. */
static int handshake_request(char *buf, size_t cap, const char *extra)
{
    return snprintf(buf, cap, "GET /chat HTTP/1.1\r\nHost: t\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: " KEY "\r\n%s\r\n", extra);
}

/* The response's head (up to its blank line), byte by byte: what follows
 * is frames. Returns its status. */
static int read_head(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    while (have + 1 < cap) {
        if (!recv_n(fd, buf + have, 1))
            return -1;
        have++;
        buf[have] = '\0';
        if (have >= 4 && memcmp(buf + have - 4, "\r\n\r\n", 4) == 0)
            return atoi(buf + 9);
    }
    return -1;
}

/* A WebSocket connection after its 101. */
static int ws_open(int port)
{
    int fd = tcp_connect(port, false);
    ck_assert_int_ge(fd, 0);
    char req[512], head[1024];
    int n = handshake_request(req, sizeof req, "Sec-WebSocket-Version: 13\r\n");
    ck_assert_int_eq(send_all(fd, req, (size_t)n), 0);
    ck_assert_int_eq(read_head(fd, head, sizeof head), 101);
    ck_assert_ptr_nonnull(strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    return fd;
}

/* A client frame (masked unless `unmasked`), appended to buf at *len. */
static void put_frame(unsigned char *buf, size_t *len, unsigned first,
                      const void *payload, uint64_t n, bool unmasked)
{
    static const unsigned char mask[4] = {1, 2, 3, 4};
    unsigned char *p = buf + *len;
    size_t hl = 0;
    p[hl++] = (unsigned char)first;
    unsigned char m = unmasked ? 0 : 0x80;
    if (n <= 125) {
        p[hl++] = (unsigned char)(m | n);
    } else if (n <= 0xffff) {
        p[hl++] = m | 126;
        p[hl++] = (unsigned char)(n >> 8);
        p[hl++] = (unsigned char)n;
    } else {
        p[hl++] = m | 127;
        for (int i = 0; i < 8; i++)
            p[hl++] = (unsigned char)(n >> (56 - 8 * i));
    }
    if (!unmasked) {
        memcpy(p + hl, mask, 4);
        hl += 4;
    }
    if (payload != NULL)
        for (uint64_t i = 0; i < n; i++)
            p[hl + i] = ((const unsigned char *)payload)[i] ^ (unmasked ? 0 : mask[i & 3]);
    *len += hl + (payload != NULL ? (size_t)n : 0);
}

static void ws_send(int fd, unsigned first, const char *text)
{
    unsigned char buf[512];
    size_t len = 0;
    put_frame(buf, &len, first, text, strlen(text), false);
    ck_assert_int_eq(send_all(fd, buf, len), 0);
}

/* One server frame: its first byte, its payload into buf (NUL-ended).
 * Returns the payload's length, or -1 when the connection ended. */
static long ws_recv(int fd, unsigned *first, char *buf, size_t cap)
{
    unsigned char h[10];
    if (!recv_n(fd, h, 2))
        return -1;
    ck_assert_msg(!(h[1] & 0x80), "a server frame must not be masked");
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        if (!recv_n(fd, h + 2, 2))
            return -1;
        n = (uint64_t)h[2] << 8 | h[3];
    } else if (n == 127) {
        if (!recv_n(fd, h + 2, 8))
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | h[2 + i];
    }
    ck_assert_uint_lt(n, cap);
    if (!recv_n(fd, buf, (size_t)n))
        return -1;
    buf[n] = '\0';
    *first = h[0];
    return (long)n;
}

/* The next frame is `first` with `payload`. */
static void expect(int fd, unsigned first, const char *payload)
{
    unsigned got;
    char buf[1024];
    long n = ws_recv(fd, &got, buf, sizeof buf);
    ck_assert_int_ge(n, 0);
    ck_assert_uint_eq(got, first);
    ck_assert_str_eq(buf, payload);
}

/* The next frame is a close with `code`; then the connection ends. */
static void expect_close(int fd, unsigned code)
{
    unsigned got;
    char buf[256];
    long n = ws_recv(fd, &got, buf, sizeof buf);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(got, 0x88);
    ck_assert_uint_eq((unsigned)(unsigned char)buf[0] << 8 | (unsigned char)buf[1],
                      code);
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 0);
}

START_TEST(python_websockets_talks_to_the_service)
{
    start(PLUGIN_DIR, "transform = uppercase\nmax_message = 128K\n");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 - <<'PY'\n"
             "import asyncio, websockets\n"
             "async def main():\n"
             "    async with websockets.connect('ws://127.0.0.1:%d/x', max_size=None) as ws:\n"
             "        await ws.send('hello'); print(await ws.recv())\n"
             "        await ws.send(b'bin\\x00ary'); print(await ws.recv())\n"
             "        await ws.send(['frag', 'mented ', '\\u00e9t\\u00e9']); print(await ws.recv())\n"
             "        await (await ws.ping(b'p'))\n"
             "        print('pong')\n"
             "        await ws.send('x' * 70000); r = await ws.recv(); print(len(r), r[:3])\n"
             "        await ws.send(''); print(repr(await ws.recv()))\n"
             "        await ws.close()\n"
             "        print('closed', ws.close_code)\n"
             "asyncio.run(main())\n"
             "PY", http_port());
    ck_assert_str_eq(shell_output(cmd), "HELLO\nb'BIN\\x00ARY'\nFRAGMENTED \xc3\x89T\xc3\x89\n"
                               "pong\n70000 XXX\n''\nclosed 1000\n");
    ck_assert_int_eq(morph_stat(admin, "s", "messages_in"), 5); /* the ping is none */
    ck_assert_int_eq(morph_stat(admin, "s", "errors"), 0);
    morphd_proc_finish(&proc);
}
END_TEST

/* A frame against the protocol on a connection of its own: its close
 * code, then the end. */
static void hostile(int port, const unsigned char *frame, size_t len,
                    unsigned code)
{
    int fd = ws_open(port);
    ws_send(fd, 0x81, "first");
    expect(fd, 0x81, "FIRST"); /* what came before it is answered */
    ck_assert_int_eq(send_all(fd, frame, len), 0);
    expect_close(fd, code);
    close(fd);
}

START_TEST(frames_against_the_protocol_close_and_others_are_served)
{
    start(PLUGIN_DIR, "transform = uppercase\nmax_message = 1K\n");
    int port = http_port();
    int bystander = ws_open(port);
    unsigned char f[64];
    size_t n;
    struct {
        unsigned first;
        const char *payload;
        uint64_t len;
        bool unmasked, header_only;
        unsigned code;
    } cases[] = {
        {0x81, "plain", 5, true, false, 1002},      /* unmasked */
        {0xc1, "rsv1", 4, false, false, 1002},      /* RSV1, never agreed */
        {0x83, "op3", 3, false, false, 1002},       /* a reserved opcode */
        {0x8b, "opB", 3, false, false, 1002},       /* a reserved control one */
        {0x09, "frag", 4, false, false, 1002},      /* a fragmented ping */
        {0x80, "cont", 4, false, false, 1002},      /* nothing to continue */
        {0x81, "caf\xc3", 4, false, false, 1007},   /* not UTF-8 */
        {0x82, NULL, 1ull << 40, false, true, 1009}, /* over max_message */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        n = 0;
        put_frame(f, &n, cases[i].first, cases[i].header_only ? NULL : cases[i].payload,
                  cases[i].len, cases[i].unmasked);
        hostile(port, f, n, cases[i].code);
        /* the bystander is served all along */
        char msg[32], want[32];
        snprintf(msg, sizeof msg, "by%zu", i);
        snprintf(want, sizeof want, "BY%zu", i);
        ws_send(bystander, 0x81, msg);
        expect(bystander, 0x81, want);
    }
    /* a message just over max_message, in two fragments: 1009 */
    int fd = ws_open(port);
    unsigned char frag[2 * (600 + 8)];
    n = 0;
    char kb[600];
    memset(kb, 'k', sizeof kb);
    put_frame(frag, &n, 0x02, kb, sizeof kb, false);
    put_frame(frag, &n, 0x80, kb, sizeof kb, false);
    ck_assert_int_eq(send_all(fd, frag, n), 0);
    expect_close(fd, 1009);
    close(fd);
    close(bystander);
    /* each counted as a bad frame, the long ones as too long */
    ck_assert_int_eq(morph_stat(admin, "s", "frames_too_long"), 2);
    ck_assert_int_eq(morph_stat(admin, "s", "frames_invalid"), 7);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "unmasked frame"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(failures_no_reply_and_plugin_close)
{
    char dirs[1024];
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, TEST_PLUGIN_DIR);
    start(dirs, "transform = failing | replyflags\n");
    int port = http_port();
    /* no reply: nothing, and the connection goes on */
    int fd = ws_open(port);
    ws_send(fd, 0x81, "none");
    ws_send(fd, 0x82, "hi");
    expect(fd, 0x82, "hi");
    /* a plugin that closes: its reply, then close 1000 */
    ws_send(fd, 0x81, "close");
    expect(fd, 0x81, "bye");
    expect_close(fd, 1000);
    close(fd);
    /* a failed message: 1011, the reason in the log only */
    fd = ws_open(port);
    ws_send(fd, 0x81, "fail now");
    expect_close(fd, 1011);
    close(fd);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "asked to fail"), 1);
    ck_assert_int_eq(morph_stat(admin, "s", "errors"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(handshakes_are_refused_as_the_rfc_says)
{
    start(PLUGIN_DIR, "transform = uppercase\n"
                      "http_allow_origin = https://app.example\n");
    int port = http_port();
    char req[512], head[1024];
    struct {
        const char *extra;
        int status;
    } cases[] = {
        {"Sec-WebSocket-Version: 8\r\n", 426},
        {"Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n", 403},
        {"Sec-WebSocket-Version: 13\r\nOrigin: https://app.example\r\n", 101},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int fd = tcp_connect(port, false);
        ck_assert_int_ge(fd, 0);
        int n = handshake_request(req, sizeof req, cases[i].extra);
        ck_assert_int_eq(send_all(fd, req, (size_t)n), 0);
        ck_assert_int_eq(read_head(fd, head, sizeof head), cases[i].status);
        if (cases[i].status == 426)
            ck_assert_ptr_nonnull(strstr(head, "Sec-WebSocket-Version: 13\r\n"));
        if (cases[i].status == 101) {
            ws_send(fd, 0x81, "allowed");
            expect(fd, 0x81, "ALLOWED");
        }
        close(fd);
    }
    /* no key: 400 */
    int fd = tcp_connect(port, false);
    const char bad[] = "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    ck_assert_int_eq(send_all(fd, bad, sizeof bad - 1), 0);
    ck_assert_int_eq(read_head(fd, head, sizeof head), 400);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(deferred_messages_and_frames_sent_with_the_handshake)
{
    start(PLUGIN_DIR, "transform = delay | uppercase\ndelay.ms = 30\n");
    int port = http_port();
    int fd = tcp_connect(port, false);
    ck_assert_int_ge(fd, 0);
    /* the handshake and three frames in one write, a ping among them */
    unsigned char buf[1024];
    int n = handshake_request((char *)buf, sizeof buf,
                              "Sec-WebSocket-Version: 13\r\n");
    size_t len = (size_t)n;
    put_frame(buf, &len, 0x81, "one", 3, false);
    put_frame(buf, &len, 0x89, "pi", 2, false);
    put_frame(buf, &len, 0x81, "two", 3, false);
    ck_assert_int_eq(send_all(fd, buf, len), 0);
    char head[1024];
    ck_assert_int_eq(read_head(fd, head, sizeof head), 101);
    expect(fd, 0x81, "ONE");
    expect(fd, 0x8a, "pi"); /* in turn: after the message before it */
    expect(fd, 0x81, "TWO");
    /* pipelined while one is in flight: answered in order */
    len = 0;
    for (int i = 0; i < 5; i++) {
        char m[8];
        snprintf(m, sizeof m, "m%d", i);
        put_frame(buf, &len, 0x81, m, strlen(m), false);
    }
    ck_assert_int_eq(send_all(fd, buf, len), 0);
    for (int i = 0; i < 5; i++) {
        char m[8];
        snprintf(m, sizeof m, "M%d", i);
        expect(fd, 0x81, m);
    }
    /* the close handshake, begun by the client */
    len = 0;
    put_frame(buf, &len, 0x88, "\x03\xe8", 2, false);
    ck_assert_int_eq(send_all(fd, buf, len), 0);
    expect_close(fd, 1000);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(idle_timeout_says_going_away)
{
    /* (longer under valgrind, where a read may wait past a short one) */
    start(PLUGIN_DIR, getenv("MORPH_TEST_WRAPPER") != NULL
                          ? "transform = uppercase\nidle_timeout = 3s\n"
                          : "transform = uppercase\nidle_timeout = 300ms\n");
    int fd = ws_open(http_port());
    ws_send(fd, 0x81, "still here");
    expect(fd, 0x81, "STILL HERE");
    expect_close(fd, 1001); /* after idle_timeout without a frame */
    close(fd);
    ck_assert_int_eq(morph_stat(admin, "s", "connections_idle_closed"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(morph_ws_client)
{
    start(PLUGIN_DIR, "transform = uppercase\nmax_message = 1K\n");
    char cmd[512];
    const char *w = getenv("MORPH_TEST_WRAPPER") ? "30" : "5";
    snprintf(cmd, sizeof cmd, "%s -w %s ws://127.0.0.1:%d/ hello there",
             MORPH_BIN, w, http_port());
    ck_assert_str_eq(shell_output(cmd), "HELLO THERE\n");
    /* lines of standard input, one message each, on one WebSocket */
    snprintf(cmd, sizeof cmd, "printf 'one\\ntwo\\n' | %s -w %s "
             "ws://127.0.0.1:%d/chat", MORPH_BIN, w, http_port());
    ck_assert_str_eq(shell_output(cmd), "ONE\nTWO\n");
    ck_assert_int_eq(morph_stat(admin, "s", "connections_accepted"), 2);
    /* over max_message: the close code, and a failure */
    snprintf(cmd, sizeof cmd, "%s -w %s ws://127.0.0.1:%d/ $(head -c 2000 "
             "/dev/zero | tr '\\0' x) 2>&1; echo rc=$?", MORPH_BIN, w,
             http_port());
    ck_assert_str_eq(shell_output(cmd), "morph: the server closed the WebSocket (code "
                               "1009)\nrc=1\n");
    morphd_proc_finish(&proc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ws");
    TCase *tc = tcase_create("ws");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, python_websockets_talks_to_the_service);
    tcase_add_test(tc, frames_against_the_protocol_close_and_others_are_served);
    tcase_add_test(tc, failures_no_reply_and_plugin_close);
    tcase_add_test(tc, handshakes_are_refused_as_the_rfc_says);
    tcase_add_test(tc, deferred_messages_and_frames_sent_with_the_handshake);
    tcase_add_test(tc, idle_timeout_says_going_away);
    tcase_add_test(tc, morph_ws_client);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
