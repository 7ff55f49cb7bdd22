/* framing = length, netstring and delimiter over real sockets: messages
 * and their framed replies (pipelined, split, deferred, over unix:// too),
 * and every way a peer can get the framing wrong -- each closes that
 * connection only, after the replies before it, logged and counted, while
 * another client goes on being served. Run under valgrind too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;
static char admin[108];
static char access_path[128];

static void teardown(void)
{
    morphd_proc_cleanup(&proc);
    unlink(admin);
    if (access_path[0])
        unlink(access_path);
}

/* morphd with service `s` on tcp (v4) and unix, its transform and framing
 * keys in `lines`, and an access log. */
static void start(const char *lines)
{
    char services[2048];
    snprintf(access_path, sizeof access_path, "/tmp/morph-codecs-%d.log",
             (int)getpid());
    unlink(access_path);
    char morphd_lines[256];
    snprintf(morphd_lines, sizeof morphd_lines, "access_log = %s\n",
             access_path);
    snprintf(services, sizeof services,
             "[service s]\nlisten = tcp://127.0.0.1:0 udp://127.0.0.1:0\n%s",
             lines);
    morphd_proc_serve(&proc, PLUGIN_DIR, morphd_lines, services, admin,
                      sizeof admin);
}

static int port(void) { return morphd_proc_need_port(&proc, "s", "tcp", false); }

static int connect_s(void)
{
    int fd = tcp_connect(port(), false);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Sends `req` and expects exactly `want` back. */
static void exchange(int fd, const void *req, size_t n, const void *want,
                     size_t want_len)
{
    ck_assert_int_eq(send_all(fd, req, n), 0);
    unsigned char buf[4096];
    ck_assert_uint_le(want_len, sizeof buf);
    size_t got = recv_exact(fd, buf, want_len, TIMEOUT_MS);
    ck_assert_msg(got == want_len && memcmp(buf, want, want_len) == 0,
                  "got %zu bytes of %zu, or other bytes", got, want_len);
}

#define EXCHANGE(fd, req, want) \
    exchange(fd, req, sizeof req - 1, want, sizeof want - 1)

/* Expects the server to close `fd` after sending exactly `want`. */
static void closed_after(int fd, const void *want, size_t want_len)
{
    unsigned char buf[4096];
    size_t got = recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS);
    ck_assert_msg(got == want_len && (want_len == 0 || memcmp(buf, want, want_len) == 0),
                  "%zu bytes before the close, %zu expected", got, want_len);
}

static long long stat_of(const char *name) { return morph_stat(admin, "s", name); }

/* Another client, served before and after a bad one. */
static void bystander(int fd, int round)
{
    char req[16], want[16];
    int n = snprintf(req + 4, sizeof req - 4, "by%d", round);
    req[0] = req[1] = req[2] = 0;
    req[3] = (char)n;
    memcpy(want, req, 4);
    snprintf(want + 4, sizeof want - 4, "BY%d", round);
    exchange(fd, req, 4 + (size_t)n, want, 4 + (size_t)n);
}

/* --- length ------------------------------------------------------------------ */

START_TEST(length_frames_are_messages_and_replies_are_framed)
{
    start("transform = uppercase\nframing = length\n");
    int fd = connect_s();
    /* two frames in one write, the second one split across two */
    EXCHANGE(fd, "\x00\x00\x00\x05hello\x00\x00\x00\x00",
             "\x00\x00\x00\x05HELLO\x00\x00\x00\x00");
    ck_assert_int_eq(send_all(fd, "\x00\x00\x00\x03" "ab", 6), 0);
    usleep(50 * 1000);
    unsigned char buf[16];
    ck_assert_int_eq(send_all(fd, "c", 1), 0);
    ck_assert_uint_eq(recv_exact(fd, buf, 7, TIMEOUT_MS), 7);
    ck_assert_mem_eq(buf, "\x00\x00\x00\x03" "ABC", 7);
    close(fd);
    ck_assert_int_eq(stat_of("messages_in"), 3);
    ck_assert_int_eq(stat_of("bytes_out"), 9 + 4 + 7);
    morphd_proc_finish(&proc);
}
END_TEST

/* Netty's example 7 (a 1-byte header, a u16be that counts the whole frame
 * and a byte after it) through `echo`: the reply is the request, byte for
 * byte, its header bytes copied. */
START_TEST(netty_example_over_a_socket)
{
    start("transform = echo\nframing = length\nlength_field = u16be\n"
          "length_offset = 1\nlength_adjust = -3\n");
    int fd = connect_s();
    EXCHANGE(fd, "\xca\x00\x10\xfe" "HELLO, WORLD", "\xca\x00\x10\xfe" "HELLO, WORLD");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* A deferred message keeps its request's header for its reply. */
START_TEST(deferred_reply_keeps_the_request_header)
{
    start("transform = delay\ndelay.ms = 50\nframing = length\n"
          "length_field = varint\nlength_offset = 2\n");
    int fd = connect_s();
    /* two pipelined: each reply in order, with its own header */
    EXCHANGE(fd, "AB\x02hiCD\x03you", "AB\x02hiCD\x03you");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* netty#25, #7775, #13331: a header announcing more than max_message is
 * refused when it arrives, before its bytes; the replies due are sent,
 * the connection closed; the log says what was announced and the limit;
 * morph stats and the access log count it. Another client is served. */
START_TEST(length_over_max_message_closes_after_the_replies_due)
{
    start("transform = uppercase\nframing = length\nmax_message = 1K\n");
    int by = connect_s();
    bystander(by, 1);
    int fd = connect_s();
    /* one good frame, then an HTTP request read as a u32be length */
    ck_assert_int_eq(send_all(fd, "\x00\x00\x00\x02okGET / HTTP/1.1\r\n", 22), 0);
    closed_after(fd, "\x00\x00\x00\x02OK", 6);
    close(fd);
    bystander(by, 2);
    close(by);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_too_long", 1), 1);
    ck_assert_int_ge(stat_of("errors"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "sent a frame announcing "
                                           "1195725856 bytes, longer than "
                                           "max_message (1024 bytes); closing "
                                           "the connection after the replies "
                                           "before it"), 1);
    morphd_proc_finish(&proc);
    char *log = read_file(access_path);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "end=too_long"), "%s", log);
    free(log);
}
END_TEST

START_TEST(impossible_lengths_close_the_connection)
{
    start("transform = uppercase\nframing = length\nlength_field = varint\n"
          "length_adjust = -1\n");
    int by = connect_s();
    EXCHANGE(by, "\x04" "by1", "\x04" "BY1"); /* the field counts itself */
    /* 0 - 1: negative */
    int fd = connect_s();
    ck_assert_int_eq(send_all(fd, "\x03" "ab" "\x00", 4), 0);
    closed_after(fd, "\x03" "AB", 3);
    close(fd);
    /* a varint of 11 bytes */
    fd = connect_s();
    ck_assert_int_eq(send_all(fd, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01", 11), 0);
    closed_after(fd, "", 0);
    close(fd);
    EXCHANGE(by, "\x04" "by2", "\x04" "BY2");
    close(by);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_invalid", 2), 2);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "does not speak framing = "
                                           "length: a length field of 0 with "
                                           "length_adjust -1: a negative "
                                           "length"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "a varint length of more "
                                           "than 10 bytes"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* A client that stops in the middle of a frame and shuts down its side:
 * the replies before it are sent, the rest is reported. */
START_TEST(input_ending_inside_a_frame)
{
    start("transform = uppercase\nframing = length\nlength_field = u8\n");
    int fd = connect_s();
    ck_assert_int_eq(send_all(fd, "\x02hi\x05" "abc", 7), 0);
    shutdown(fd, SHUT_WR);
    closed_after(fd, "\x02HI", 3);
    close(fd);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_invalid", 1), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "the input ended inside a "
                                           "frame (4 bytes of it)"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* A reply that its length field cannot hold is not sent, and said so. */
START_TEST(reply_that_does_not_fit_its_field)
{
    start("transform = whoami\nframing = length\nlength_field = u8\n"
          "length_adjust = 200\n");
    int fd = connect_s();
    /* a payload of 200 bytes (the field says 0); whoami's reply is about
     * 30: its field would be negative */
    unsigned char req[201] = {0};
    memset(req + 1, 'x', 200);
    ck_assert_int_eq(send_all(fd, req, sizeof req), 0);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "errors", 1), 1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "does not fit its length "
                                           "field (u8, length_adjust 200); "
                                           "not answered"), 1);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* --- netstring ------------------------------------------------------------- */

START_TEST(netstrings_over_a_socket)
{
    start("transform = uppercase\nframing = netstring\nmax_message = 100\n");
    int by = connect_s();
    EXCHANGE(by, "5:hello,0:,", "5:HELLO,0:,");
    static const struct { const char *in; const char *out; const char *log; } bad[] = {
        {"2:ok,05:hello,", "2:OK,", "a netstring length with a leading zero"},
        {"2:ok,5x", "2:OK,", "a netstring length holds 0x78, not a digit"},
        {"2:ok,5:hello;", "2:OK,", "a netstring of 5 bytes ends with 0x3b, not ','"},
        {"2:ok,101:", "2:OK,", "a netstring announcing 101 bytes, longer than "
                               "max_message (100 bytes)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd = connect_s();
        ck_assert_int_eq(send_all(fd, bad[i].in, strlen(bad[i].in)), 0);
        closed_after(fd, bad[i].out, strlen(bad[i].out));
        close(fd);
        EXCHANGE(by, "3:abc,", "3:ABC,");
        ck_assert_msg(morphd_proc_log_count(&proc, bad[i].log) == 1,
                      "not logged: %s", bad[i].log);
    }
    close(by);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_invalid", 3), 3);
    ck_assert_int_eq(stat_of("frames_too_long"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* --- delimiter ------------------------------------------------------------- */

START_TEST(nul_delimited_by_default)
{
    start("transform = uppercase\nframing = delimiter\n");
    int fd = connect_s();
    EXCHANGE(fd, "one\0two\0", "ONE\0TWO\0");
    /* the last one without its delimiter: answered when the client is
     * done sending, as a last line is */
    ck_assert_int_eq(send_all(fd, "last", 4), 0);
    shutdown(fd, SHUT_WR);
    closed_after(fd, "LAST", 4);
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(several_byte_delimiter_and_its_limit)
{
    start("transform = uppercase\nframing = delimiter\ndelimiter = \\r\\n\\r\\n\n"
          "max_message = 8\n");
    int by = connect_s();
    EXCHANGE(by, "a\r\nb\r\n\r\n", "A\r\nB\r\n\r\n");
    int fd = connect_s();
    ck_assert_int_eq(send_all(fd, "ok\r\n\r\n123456789", 15), 0);
    closed_after(fd, "OK\r\n\r\n", 6);
    close(fd);
    EXCHANGE(by, "c\r\n\r\n", "C\r\n\r\n");
    close(by);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_too_long", 1), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "a message without its "
                                           "delimiter longer than max_message "
                                           "(8 bytes)"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* --- codec plugins ------------------------------------------------------------ */

/* A codec plugin gets what a built-in gets, and more: answers of its own
 * (in turn with the replies), a close, its protocol's word for a failed
 * message; and its mistakes close its connection only. */
START_TEST(codec_plugin_uses_every_right)
{
    char services[512], dirs[1024];
    snprintf(services, sizeof services, "[service s]\nlisten = tcp://127.0.0.1:0\n"
             "transform = failing\nframing = codec_probe\nmax_message = 1K\n");
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, TEST_PLUGIN_DIR);
    morphd_proc_serve(&proc, dirs, "", services, admin, sizeof admin);
    int by = connect_s();
    EXCHANGE(by, "\x02hi", "<1:2:hi>");
    int fd = connect_s();
    /* pipelined: its own answer in turn with the chain's replies */
    EXCHANGE(fd, "\x01" "a" "\x01" "p" "\x01" "b", "<1:1:a>pong<2:1:b>");
    /* a failed message: encode() says so ("!"), the connection goes on */
    EXCHANGE(fd, "\x04" "fail" "\x02" "ok", "!<4:2:ok>");
    ck_assert_int_eq(morph_stat_wait(admin, "s", "errors", 1), 1);
    /* a close of its own, after its answer */
    ck_assert_int_eq(send_all(fd, "\x01q\x02no", 5), 0);
    closed_after(fd, "bye", 3);
    close(fd);
    static const struct { const char *in; size_t n; const char *out; const char *log; } bad[] = {
        {"\x02ok\x01" "e", 5, "<1:2:ok>E", "does not speak framing = codec_probe: "
                                            "probe: asked for an error"},
        {"\xff", 1, "", "sent a message announcing 1099511627776 bytes, longer "
                       "than max_message (1024 bytes)"},
        {"\x01x", 2, "", "does not speak framing = codec_probe: the codec's "
                        "decode() returned 0 with 3 of 2 bytes used"},
        {"\x01w", 2, "", "does not speak framing = codec_probe: the codec's "
                        "decode() wrote past its reply buffer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fd = connect_s();
        ck_assert_int_eq(send_all(fd, bad[i].in, bad[i].n), 0);
        closed_after(fd, bad[i].out, strlen(bad[i].out));
        close(fd);
        char want[16];
        snprintf(want, sizeof want, "<%zu:2:hi>", i + 2); /* served meanwhile */
        exchange(by, "\x02hi", 3, want, strlen(want));
        ck_assert_msg(morphd_proc_log_count(&proc, bad[i].log) == 1,
                      "not logged: %s", bad[i].log);
    }
    close(by);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_invalid", 3), 3);
    ck_assert_int_eq(stat_of("frames_too_long"), 1);
    /* its decode() and encode() calls are the plugin's, as a transform's
     * are: 10 frames decoded and 9 replies or failures encoded at least,
     * the protocol error and the write past the cap failed calls */
    ck_assert_int_ge(morph_plugin_stat(admin, "s", "codec_probe", "calls"), 20);
    ck_assert_int_eq(morph_plugin_stat(admin, "s", "codec_probe", "failures"), 2);
    morphd_proc_finish(&proc);
}
END_TEST

/* A codec without conn_open is given no state (NULL), whether its first
 * read holds whole frames or not. */
START_TEST(codec_plugin_without_state)
{
    char services[512], dirs[1024];
    snprintf(services, sizeof services, "[service s]\nlisten = tcp://127.0.0.1:0\n"
             "transform = failing\nframing = codec_nostate\n");
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, TEST_PLUGIN_DIR);
    morphd_proc_serve(&proc, dirs, "", services, admin, sizeof admin);
    int fd = connect_s();
    EXCHANGE(fd, "\x02hi\x01" "a", "\x02hi\x01" "a");
    ck_assert_int_eq(send_all(fd, "\x03" "ab", 3), 0); /* split */
    usleep(50 * 1000);
    EXCHANGE(fd, "c", "\x03" "abc");
    close(fd);
    ck_assert_int_eq(stat_of("frames_invalid"), 0);
    morphd_proc_finish(&proc);
}
END_TEST

/* A Lua codec: decode(buffer, conn) and encode(reply, conn), with every
 * outcome decode has; its errors, and a decode over its budget, close its
 * connection only. */
START_TEST(lua_codec)
{
    char dir[] = "/tmp/morph-luacodec-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/frames.lua", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("return {\n"
          "  decode = function(buffer, conn)\n"
          "    if buffer:sub(1, 1) == '.' then return false, 1 end -- keep-alive\n"
          "    if buffer:sub(1, 1) == '!' then return nil, 'a bang' end\n"
          "    if buffer:sub(1, 1) == '~' then while true do end end\n"
          "    if #buffer < 4 then return nil end\n"
          "    local n = string.unpack('>I4', buffer)\n"
          "    if #buffer < 4 + n then return nil end\n"
          "    conn.n = (conn.n or 0) + 1\n"
          "    return buffer:sub(5, 4 + n), 4 + n\n"
          "  end,\n"
          "  encode = function(reply, conn)\n"
          "    if reply == 'NOENC' then return nil end\n"
          "    return string.pack('>s4', reply .. '#' .. conn.n)\n"
          "  end,\n"
          "}\n", f);
    fclose(f);
    char services[512], dirs[512];
    snprintf(services, sizeof services, "[service s]\nlisten = tcp://127.0.0.1:0\n"
             "transform = uppercase\nframing = frames\n");
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, dir);
    morphd_proc_serve(&proc, dirs, "", services, admin, sizeof admin);
    int by = connect_s();
    EXCHANGE(by, "\0\0\0\2hi", "\0\0\0\4HI#1");
    int fd = connect_s();
    /* keep-alives skipped, two frames, one split */
    EXCHANGE(fd, "..\0\0\0\1a.\0\0", "\0\0\0\3A#1");
    EXCHANGE(fd, "\0\1b", "\0\0\0\3B#2");
    /* an encode that returns no bytes: that reply is not sent, logged;
     * the connection goes on */
    EXCHANGE(fd, "\0\0\0\5noenc\0\0\0\1b", "\0\0\0\3B#4");
    ck_assert_int_eq(morphd_proc_log_count(&proc, "the codec's encode() failed "
                                           "for a reply of 5 bytes; not answered"), 1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "encode returned nil"), 1);
    /* nil, "reason": closed after the replies before it */
    ck_assert_int_eq(send_all(fd, "\0\0\0\1c!", 6), 0);
    closed_after(fd, "\0\0\0\3C#5", 7);
    close(fd);
    EXCHANGE(by, "\0\0\0\2hi", "\0\0\0\4HI#2");
    /* a decode that never returns: over its budget, that connection only */
    fd = connect_s();
    ck_assert_int_eq(send_all(fd, "~", 1), 0);
    closed_after(fd, "", 0);
    close(fd);
    EXCHANGE(by, "\0\0\0\2hi", "\0\0\0\4HI#3");
    close(by);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_invalid", 2), 2);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "frames.lua: decode: a bang"), 1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "over its budget"), 1);
    morphd_proc_finish(&proc);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* framing = resp, reached by the real Redis tools (redis-tools). */
static void start_resp(const char *transform, const char *more)
{
    char services[512], dirs[1024];
    snprintf(services, sizeof services, "[service s]\nlisten = tcp://127.0.0.1:0\n"
             "transform = %s\nframing = resp\n%s", transform, more);
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, TEST_PLUGIN_DIR);
    morphd_proc_serve(&proc, dirs, "", services, admin, sizeof admin);
}

static char *redis_cli(const char *const *words, int *rc)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port());
    const char *argv[16] = {"/usr/bin/redis-cli", "-p", p};
    int n = 3;
    for (; *words; words++)
        argv[n++] = *words;
    argv[n] = NULL;
    char *out, *err;
    *rc = run_program(argv, "", 0, &out, NULL, &err);
    free(err);
    return out;
}

START_TEST(resp_with_redis_cli)
{
    start_resp("uppercase", "");
    int rc;
    char *out = redis_cli((const char *[]){"hello", "world", NULL}, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out, "HELLO WORLD\n");
    free(out);
    /* inline commands, telnet style, quotes as Redis takes them */
    int fd = connect_s();
    EXCHANGE(fd, "set  \"big world\"\r\n\r\n*0\r\nping\n",
             "$13\r\nSET BIG WORLD\r\n$4\r\nPING\r\n");
    /* what Redis calls a protocol error: its reply, then the close */
    ck_assert_int_eq(send_all(fd, "*1\r\n+x\r\n", 8), 0);
    const char *want = "-ERR Protocol error: expected '$', got '+'\r\n";
    closed_after(fd, want, strlen(want));
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

START_TEST(resp_failed_message_and_limits)
{
    start_resp("failing", "max_message = 1K\n");
    int rc;
    char *out = redis_cli((const char *[]){"please", "fail", NULL}, &rc);
    ck_assert_msg(strstr(out, "ERR the transform failed this command"), "%s", out);
    free(out);
    out = redis_cli((const char *[]){"fine", NULL}, &rc);
    ck_assert_str_eq(out, "fine\n");
    free(out);
    /* a bulk string announcing more than max_message: refused before its
     * bytes, and counted */
    int fd = connect_s();
    ck_assert_int_eq(send_all(fd, "*1\r\n$99999999\r\n", 16), 0);
    closed_after(fd, "", 0);
    close(fd);
    ck_assert_int_eq(morph_stat_wait(admin, "s", "frames_too_long", 1), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "a message announcing 99999999 "
                                           "bytes, longer than max_message "
                                           "(1024 bytes)"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* redis-benchmark drives morphd: every reply checked by it, none lost. */
START_TEST(resp_with_redis_benchmark)
{
    start_resp("echo", "");
    char p[16];
    snprintf(p, sizeof p, "%d", port());
    for (int pipeline = 1; pipeline <= 16; pipeline += 15) {
        char pl[8];
        snprintf(pl, sizeof pl, "%d", pipeline);
        const char *argv[] = {"/usr/bin/redis-benchmark", "-p", p, "-c", "10",
                              "-n", "4000", "-P", pl, "-q", "ECHO",
                              "0123456789012345678901234567890123456789"
                              "012345678901234567890123", NULL};
        char *out, *err;
        ck_assert_int_eq(run_program(argv, "", 0, &out, NULL, &err), 0);
        ck_assert_msg(strstr(out, "requests per second"), "%s %s", out, err);
        free(out);
        free(err);
    }
    /* redis-benchmark asks CONFIG GET twice per client first, as well */
    ck_assert_int_ge(stat_of("messages_in"), 8000);
    ck_assert_int_eq(stat_of("errors"), 0);
    morphd_proc_finish(&proc);
}
END_TEST

/* --- the morph client -------------------------------------------------------- */

START_TEST(morph_client_speaks_the_framings)
{
    char services[1024];
    snprintf(services, sizeof services,
             "[service n]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "framing = netstring\n"
             "[service l]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "framing = length\nlength_field = varint\n"
             "[service d]\nlisten = tcp://127.0.0.1:0\ntransform = uppercase\n"
             "framing = delimiter\ndelimiter = \\x1e\n");
    morphd_proc_serve(&proc, PLUGIN_DIR, "", services, admin, sizeof admin);
    static const struct { const char *svc; const char *args[5]; } cases[] = {
        {"n", {"-f", "netstring"}},
        {"l", {"-f", "length", "--length-field", "varint"}},
        {"d", {"-f", "delimiter", "--delimiter", "\\x1e"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char target[64];
        snprintf(target, sizeof target, "127.0.0.1:%d",
                 morphd_proc_need_port(&proc, cases[i].svc, "tcp", false));
        const char *argv[12] = {MORPH_BIN};
        int n = 1;
        for (const char *const *a = cases[i].args; *a; a++)
            argv[n++] = *a;
        argv[n++] = target;
        argv[n] = NULL;
        char *out, *err;
        /* each line of input a message, each reply on a line */
        ck_assert_int_eq(run_program(argv, "hello world\nagain\n", 18, &out,
                                     NULL, &err), 0);
        ck_assert_msg(strcmp(out, "HELLO WORLD\nAGAIN\n") == 0,
                      "%s: '%s' (%s)", cases[i].svc, out, err);
        free(out);
        free(err);
    }
    morphd_proc_finish(&proc);
}
END_TEST

/* --- configuration --------------------------------------------------------- */

START_TEST(framing_keys_are_checked)
{
    static const struct { const char *lines; const char *error; } bad[] = {
        {"transform = uppercase\nframing = line\nlength_field = u16be\n",
         "t.ini:5: service 's': length_field is a key of framing = length, "
         "and this service's framing is line"},
        {"transform = uppercase\nframing = length\nlength_field = u31\n",
         "t.ini:5: length_field: 'u31' is not one of u8, u16be, u16le, u24be, "
         "u32be, u32le, u64be, u64le, varint"},
        {"transform = uppercase\nframing = length\nlength_offset = 65\n", "t.ini:5: length_offset: 65 "
         "is out of range 0..64"},
        {"transform = uppercase\nframing = delimiter\ndelimiter = \\q\n", "t.ini:5: delimiter: '\\q' "
         "is not an escape"},
        {"transform = uppercase\nframing = netstrings\n", "t.ini:4: service 's': framing = netstrings "
         "is not a built-in framing (stream, line, length, netstring, "
         "delimiter), so it names a codec plugin, and plugin 'netstrings': "},
        {"transform = uppercase\nframing = uppercase\n", "t.ini:4: service 's': plugin 'uppercase' "
         "is not a codec (its descriptor has no `codec`), so it cannot be a "
         "framing"},
        {"transform = resp\nframing = resp\n", "service 's': plugin 'resp' "
         "is a codec, not a transform: use it as framing = resp"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char ini[512];
        snprintf(ini, sizeof ini, "[service s]\nlisten = tcp://127.0.0.1:0\n"
                 "%s", bad[i].lines);
        char *path = write_temp_file(ini);
        char dir[256], link[300];
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = '\0';
        snprintf(link, sizeof link, "%s/t.ini", dir);
        ck_assert_int_eq(rename(path, link), 0);
        const char *args[] = {"-t", "-c", link, NULL};
        char *out = NULL;
        int rc = run_morphd(args, &out);
        ck_assert_msg(rc != 0 && strstr(out, bad[i].error),
                      "rc %d, wanted '%s' in:\n%s", rc, bad[i].error, out);
        free(out);
        unlink(link);
        free(path);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("codecs");
    TCase *tc = tcase_create("codecs");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, length_frames_are_messages_and_replies_are_framed);
    tcase_add_test(tc, netty_example_over_a_socket);
    tcase_add_test(tc, deferred_reply_keeps_the_request_header);
    tcase_add_test(tc, length_over_max_message_closes_after_the_replies_due);
    tcase_add_test(tc, impossible_lengths_close_the_connection);
    tcase_add_test(tc, input_ending_inside_a_frame);
    tcase_add_test(tc, reply_that_does_not_fit_its_field);
    tcase_add_test(tc, netstrings_over_a_socket);
    tcase_add_test(tc, nul_delimited_by_default);
    tcase_add_test(tc, several_byte_delimiter_and_its_limit);
    tcase_add_test(tc, framing_keys_are_checked);
    tcase_add_test(tc, morph_client_speaks_the_framings);
    tcase_add_test(tc, codec_plugin_uses_every_right);
    tcase_add_test(tc, lua_codec);
    tcase_add_test(tc, codec_plugin_without_state);
    tcase_add_test(tc, resp_with_redis_cli);
    tcase_add_test(tc, resp_failed_message_and_limits);
    tcase_add_test(tc, resp_with_redis_benchmark);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
