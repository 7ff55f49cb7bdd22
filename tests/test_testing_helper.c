/* <morph/testing.h>, linked the way a plugin author links it: only the
 * SDK's library and Check, nothing of morphd's internals. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>

#include <morph/testing.h>

START_TEST(load_create_feed_compare)
{
    char err[512];
    morph_test_t *t = morph_test_load(PLUGIN_DIR, "reverse",
                                      (const char *[]){"unit=byte", NULL}, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    char *out = morph_test_transform(t, "abc\n");
    ck_assert_str_eq(out, "cba\n");
    free(out);
    morph_test_free(t);
}
END_TEST

START_TEST(stream_chunks_and_connections)
{
    char err[512];
    morph_test_t *t = morph_test_load(PLUGIN_DIR, "uppercase", NULL, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    const unsigned char *out;
    size_t len;
    /* "é" split across two chunks */
    ck_assert_int_eq(morph_test_feed(t, "a\xc3", 2, MORPH_MSG_CHUNK, &out, &len), 0);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(morph_test_feed(t, "\xa9", 1, MORPH_MSG_CHUNK, &out, &len), 0);
    ck_assert_uint_eq(len, 2);
    ck_assert_mem_eq(out, "\xc3\x89", 2);
    /* a held byte is flushed at the end of the connection */
    ck_assert_int_eq(morph_test_feed(t, "\xc3", 1, MORPH_MSG_CHUNK, &out, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(morph_test_feed(t, NULL, 0, MORPH_MSG_CHUNK | MORPH_MSG_END,
                                     &out, &len), 0);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(morph_test_reconnect(t), 0);
    morph_test_free(t);
}
END_TEST

START_TEST(errors_are_explained)
{
    char err[512];
    ck_assert_ptr_null(morph_test_load(PLUGIN_DIR, "reverse",
                                       (const char *[]){"unit=word", NULL}, err,
                                       sizeof err));
    ck_assert_msg(strstr(err, "reverse.unit: 'word' is not one of "
                              "grapheme|codepoint|byte"), "%s", err);
    ck_assert_ptr_null(morph_test_load(TEST_PLUGIN_DIR, "bad_abi", NULL, err,
                                       sizeof err));
    ck_assert_msg(strstr(err, "abi_min"), "%s", err);

    morph_test_t *t = morph_test_load(TEST_PLUGIN_DIR, "failing", NULL, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_ptr_null(morph_test_transform(t, "fail now"));
    ck_assert_str_eq(morph_test_error(t), "plugin failing: asked to fail");
    char *ok = morph_test_transform(t, "fine");
    ck_assert_str_eq(ok, "fine");
    ck_assert_str_eq(morph_test_error(t), "");
    free(ok);
    morph_test_free(t);
}
END_TEST

/* The example plugins, tested the way their authors would. */
START_TEST(rot_example_uses_its_option)
{
    char err[512];
    morph_test_t *t = morph_test_load(TEST_PLUGIN_DIR, "rot", NULL, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    char *out = morph_test_transform(t, "Hello, World!");
    ck_assert_str_eq(out, "Uryyb, Jbeyq!");
    free(out);
    morph_test_free(t);

    t = morph_test_load(TEST_PLUGIN_DIR, "rot", (const char *[]){"shift=1", NULL},
                        err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    out = morph_test_transform(t, "HAL zz");
    ck_assert_str_eq(out, "IBM aa");
    free(out);
    morph_test_free(t);

    /* declared options: the host's messages */
    const char *bad[] = {"shift=40", "shift=", "shift=3x", "shift=0"};
    const char *why[] = {"rot.shift: 40 is out of range 1..25",
                         "rot.shift: '' is not an integer",
                         "rot.shift: '3x' is not an integer",
                         "rot.shift: 0 is out of range 1..25"};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_ptr_null(morph_test_load(TEST_PLUGIN_DIR, "rot",
                                           (const char *[]){bad[i], NULL}, err,
                                           sizeof err));
        ck_assert_msg(strstr(err, why[i]), "%s", err);
    }
    ck_assert_ptr_null(morph_test_load(TEST_PLUGIN_DIR, "rot",
                                       (const char *[]){"shfit=3", NULL}, err,
                                       sizeof err));
    ck_assert_msg(strstr(err, "unknown option 'rot.shfit' of plugin 'rot'; "
                              "did you mean 'rot.shift'?"), "%s", err);

    /* a plugin that answers later is waited for */
    t = morph_test_load(TEST_PLUGIN_DIR, "later", (const char *[]){"ms=30ms", NULL},
                        err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    out = morph_test_transform(t, "patience");
    ck_assert_str_eq(out, "patience");
    free(out);
    morph_test_free(t);
}
END_TEST

START_TEST(count_example_numbers_each_connection)
{
    char err[512];
    morph_test_t *t = morph_test_load(TEST_PLUGIN_DIR, "count", NULL, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    const char *want[] = {"1: a", "2: b", "3: c"};
    for (int i = 0; i < 3; i++) {
        char in[2] = {(char)('a' + i), 0};
        char *out = morph_test_transform(t, in);
        ck_assert_str_eq(out, want[i]);
        free(out);
    }
    ck_assert_int_eq(morph_test_reconnect(t), 0); /* a new connection */
    char *out = morph_test_transform(t, "x");
    ck_assert_str_eq(out, "1: x");
    free(out);
    morph_test_free(t);
}
END_TEST

/* A Lua script loads and runs as a .so does: its options, its
 * per-connection table, a failed message, and its load errors at the
 * script's FILE:LINE. */
START_TEST(lua_scripts_load_like_plugins)
{
    char dir[] = "/tmp/morph-sdk-lua-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755);
    char path[96];
    snprintf(path, sizeof path, "%s/tally.lua", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("return {\n"
          "  options = { sep = ': ' },\n"
          "  open = function(conn) conn.n = 0 end,\n"
          "  transform = function(m, conn, o)\n"
          "    if m == 'bad' then return nil, 'not that one' end\n"
          "    conn.n = conn.n + 1\n"
          "    return conn.n .. o.sep .. m\n"
          "  end,\n"
          "}\n", f);
    fclose(f);
    char err[512];
    const char *opts[] = {"sep=/", NULL};
    morph_test_t *t = morph_test_load(dir, "tally", opts, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    char *out = morph_test_transform(t, "a");
    ck_assert_str_eq(out, "1/a");
    free(out);
    ck_assert_ptr_null(morph_test_transform(t, "bad"));
    ck_assert_str_eq(morph_test_error(t), "plugin tally: not that one");
    out = morph_test_transform(t, "b");
    ck_assert_str_eq(out, "2/b");
    free(out);
    ck_assert_int_eq(morph_test_reconnect(t), 0);
    out = morph_test_transform(t, "c");
    ck_assert_str_eq(out, "1/c");
    free(out);
    morph_test_free(t);

    f = fopen(path, "w");
    fputs("return {\n  transform = 7,\n}\n", f);
    fclose(f);
    ck_assert_ptr_null(morph_test_load(dir, "tally", NULL, err, sizeof err));
    char want[256];
    snprintf(want, sizeof want, "%s:3: the table the script returns has no "
             "transform function", path);
    ck_assert_msg(strstr(err, want), "%s", err);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* Issue 21: a plugin that writes past out->cap was served (morphd) or
 * made morph pipe abort in malloc. The helper keeps a guard after cap
 * and fails the message, naming the plugin; with AddressSanitizer on the
 * guard is poisoned, and the write itself is reported (the test then
 * expects the sanitizer's exit, see main()). */
START_TEST(writes_past_cap_are_caught)
{
    char err[512];
    morph_test_t *t = morph_test_load(TEST_PLUGIN_DIR, "overrun", NULL, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    char *ok = morph_test_transform(t, "fine");
    ck_assert_str_eq(ok, "fine");
    free(ok);
    ck_assert_ptr_null(morph_test_transform(t, "over"));
    ck_assert_msg(strstr(morph_test_error(t), "plugin overrun wrote past its "
                                              "output buffer (cap "), "%s",
                  morph_test_error(t));
    ok = morph_test_transform(t, "after"); /* and the next one is served */
    ck_assert_str_eq(ok, "after");
    free(ok);
    morph_test_free(t);
}
END_TEST

/* Issue 21: what authors asked of the helper -- a plugin's counters, a
 * fake peer, a client that leaves while a message is pending. */
START_TEST(counters_peers_and_leaving)
{
    char err[512];
    const char *shift[] = {"shift=13", NULL};
    morph_test_t *t = morph_test_load(PLUGIN_DIR " " TEST_PLUGIN_DIR, "rot",
                                      shift, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    char *o = morph_test_transform(t, "abc!");
    ck_assert_str_eq(o, "nop!");
    free(o);
    uint64_t letters = 0;
    ck_assert_int_eq(morph_test_counter(t, "letters", &letters), 0);
    ck_assert_uint_eq(letters, 3);
    ck_assert_int_eq(morph_test_counter(t, "nothing", &letters), -1);
    morph_test_free(t);

    t = morph_test_load(TEST_PLUGIN_DIR, "gate", NULL, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_int_eq(morph_test_peer(t, "udp", "::1", 4242), 0);
    o = morph_test_transform(t, "x");
    ck_assert_str_eq(o, "udp ::1");
    free(o);
    ck_assert_int_eq(morph_test_peer(t, "tcp", "127.0.0.2", 1), -1);
    ck_assert_msg(strstr(morph_test_error(t), "plugin gate: refused the "
                                              "connection"), "%s",
                  morph_test_error(t));
    ck_assert_int_eq(morph_test_peer(t, "tcp", "not-an-address", 1), -1);
    ck_assert_int_eq(morph_test_peer(t, "sctp", "127.0.0.1", 1), -1);
    morph_test_free(t);

    /* `later` defers every message: leaving cancels it (its timer is
     * stopped and freed by cancel(), which ASan and valgrind see) */
    const char *ms[] = {"ms=10s", NULL};
    t = morph_test_load(TEST_PLUGIN_DIR, "later", ms, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_int_eq(morph_test_leave_during(t, "gone", 4), 0);
    morph_test_free(t);
    t = morph_test_load(PLUGIN_DIR, "echo", NULL, err, sizeof err);
    ck_assert_int_eq(morph_test_leave_during(t, "here", 4), 1);
    morph_test_free(t);
}
END_TEST

/* Issue 21: a clock the test advances. `later` answers each message
 * later.ms after it, from a timer: nothing comes before the clock reaches
 * it, and the answer comes when it does -- in no time at all. */
START_TEST(a_clock_the_test_advances)
{
    char err[512];
    const char *ms[] = {"ms=5s", NULL};
    morph_test_t *t = morph_test_load(TEST_PLUGIN_DIR, "later", ms, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    morph_test_use_clock(t);
    const unsigned char *out;
    size_t len;
    ck_assert_int_eq(morph_test_feed(t, "tick", 4, 0, &out, &len), 2);
    ck_assert_int_eq(morph_test_advance(t, 4999, &out, &len), 2);
    ck_assert_int_eq(morph_test_advance(t, 1, &out, &len), 0);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(memcmp(out, "tick", 4), 0);
    ck_assert_int_eq(morph_test_advance(t, 10000, &out, &len), 2); /* once */
    /* the wire does not move the clock: a message left pending says so */
    ck_assert_int_eq(morph_test_wire(t, "tock\n", 5, MORPH_TEST_ONE_PIECE,
                                     &out, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_msg(strstr(morph_test_error(t), "message 1: still pending on "
                         "the test's clock"), "%s", morph_test_error(t));
    morph_test_free(t);
}
END_TEST


/* Issue 23: a transform under a framing, and a codec plugin on its own,
 * fed as a connection's bytes: every split gives the same answers. */
START_TEST(wire_line_and_length)
{
    char err[512];
    morph_test_t *t = morph_test_load(PLUGIN_DIR, "uppercase", NULL, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    const unsigned char *out;
    size_t len;
    /* line by default: each ending kept, the last line answered at EOF */
    ck_assert_int_eq(morph_test_wire(t, "ab\ncd\r\nef", 9, 0, &out, &len), 0);
    ck_assert_uint_eq(len, 9);
    ck_assert_mem_eq(out, "AB\nCD\r\nEF", 9);
    ck_assert_uint_eq(morph_test_messages(t), 3);
    size_t mlen;
    const unsigned char *m = morph_test_message(t, 1, &mlen);
    ck_assert_uint_eq(mlen, 2);
    ck_assert_mem_eq(m, "cd", 2);
    ck_assert_ptr_null(morph_test_message(t, 3, &mlen));

    /* Netty's example 5 (a 2-byte header, then the length, counting
     * only the payload): the header comes back before the reply's */
    ck_assert_int_eq(morph_test_framing(t, "length", (const char *[]){
                         "length_field=u16be", "length_offset=2", NULL}),
                     0);
    static const unsigned char frame[] = {0xca, 0xfe, 0x00, 0x03, 'a', 'b',
                                          'c', 0xca, 0xfe, 0x00, 0x01, 'z'};
    static const unsigned char reply[] = {0xca, 0xfe, 0x00, 0x03, 'A', 'B',
                                          'C', 0xca, 0xfe, 0x00, 0x01, 'Z'};
    ck_assert_int_eq(morph_test_wire(t, frame, sizeof frame, 0, &out, &len), 0);
    ck_assert_uint_eq(len, sizeof reply);
    ck_assert_mem_eq(out, reply, sizeof reply);
    ck_assert_uint_eq(morph_test_messages(t), 2);

    /* over max_message: refused as the header arrives, what came before
     * is answered, and the reason is the one morphd logs */
    ck_assert_int_eq(morph_test_framing(t, "length", (const char *[]){
                         "length_field=u8", "max_message=4", NULL}),
                     0);
    ck_assert_int_eq(morph_test_wire(t, "\x02hi\x05hello", 9, 0, &out, &len), 1);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(out, "\x02HI", 3);
    ck_assert_msg(strstr(morph_test_error(t), "announcing 5 bytes") &&
                  strstr(morph_test_error(t), "max_message (4 bytes)"),
                  "%s", morph_test_error(t));

    /* delimiter, with the INI file's escapes; the last message, without
     * one, is answered without one when the client stops sending */
    ck_assert_int_eq(morph_test_framing(t, "delimiter", (const char *[]){
                         "delimiter=\\r\\n", NULL}), 0);
    ck_assert_int_eq(morph_test_wire(t, "a\r\nb", 4, 0, &out, &len), 0);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(out, "A\r\nB", 4);
    morph_test_free(t);
}
END_TEST

START_TEST(wire_settings_are_checked)
{
    char err[512];
    morph_test_t *t = morph_test_load(PLUGIN_DIR, "uppercase", NULL, err,
                                      sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_int_eq(morph_test_framing(t, "delimiter", (const char *[]){
                         "length_field=u16be", NULL}), -1);
    ck_assert_str_eq(morph_test_error(t), "setting 'length_field' is a key "
                     "of framing = length, not of framing = delimiter");
    ck_assert_int_eq(morph_test_framing(t, "delimiter", (const char *[]){
                         "delimiter=\\q", NULL}), -1);
    ck_assert_msg(strstr(morph_test_error(t), "'\\q' is not an escape"), "%s",
                  morph_test_error(t));
    ck_assert_int_eq(morph_test_framing(t, "length", (const char *[]){
                         "length_field=u12", NULL}), -1);
    ck_assert_msg(strstr(morph_test_error(t), "one of u8, u16be"), "%s",
                  morph_test_error(t));
    ck_assert_int_eq(morph_test_framing(t, "nosuchcodec", NULL), -1);
    ck_assert_msg(strstr(morph_test_error(t), "nosuchcodec"), "%s",
                  morph_test_error(t));
    ck_assert_int_eq(morph_test_framing(t, "reverse", NULL), -1);
    ck_assert_msg(strstr(morph_test_error(t), "is not a codec"), "%s",
                  morph_test_error(t));
    /* a failed framing leaves the test as it was: line */
    const unsigned char *out;
    size_t len;
    ck_assert_int_eq(morph_test_wire(t, "x\n", 2, 0, &out, &len), 0);
    ck_assert_mem_eq(out, "X\n", 2);
    morph_test_free(t);
}
END_TEST

/* resp, a codec plugin, tested without a transform (each message answered
 * with itself) and then under uppercase; a failed message gets -ERR. */
START_TEST(wire_codec_plugin)
{
    char err[512];
    morph_test_t *t = morph_test_load(PLUGIN_DIR, NULL, NULL, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_int_eq(morph_test_framing(t, "resp", NULL), 0);
    static const char cmd[] = "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n";
    const unsigned char *out;
    size_t len;
    ck_assert_int_eq(morph_test_wire(t, cmd, sizeof cmd - 1, 0, &out, &len),
                     0);
    ck_assert_uint_eq(morph_test_messages(t), 2);
    size_t mlen;
    const unsigned char *m = morph_test_message(t, 0, &mlen);
    ck_assert_uint_eq(mlen, 7);
    ck_assert_mem_eq(m, "ECHO hi", 7);
    static const char want[] = "$7\r\nECHO hi\r\n$4\r\nPING\r\n";
    ck_assert_uint_eq(len, sizeof want - 1);
    ck_assert_mem_eq(out, want, len);
    /* a protocol error: Redis' reply, then the connection closes */
    ck_assert_int_eq(morph_test_wire(t, "*1\r\n$x\r\n", 8, 0, &out, &len), 1);
    ck_assert_msg(len > 4 && memcmp(out, "-ERR", 4) == 0, "%.*s", (int)len,
                  out);
    ck_assert_msg(strstr(morph_test_error(t), "closes the connection"), "%s",
                  morph_test_error(t));
    morph_test_free(t);

    t = morph_test_load(TEST_PLUGIN_DIR, "failing", NULL, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert_int_eq(morph_test_framing(t, "resp", NULL), -1); /* not there */
    morph_test_free(t);
}
END_TEST

/* The helper's point: a codec that takes whatever arrived for a message
 * (a read is not a message) passes in one piece and is caught split. */
START_TEST(wire_catches_a_codec_that_trusts_reads)
{
    char dir[] = "/tmp/morph-sdk-codec-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755);
    char path[96];
    snprintf(path, sizeof path, "%s/u8.lua", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("return {\n"
          "  decode = function(buf, conn)\n"
          "    local n = buf:byte(1)\n"
          "    if n == nil or #buf < 1 + n then return nil end\n"
          "    return buf:sub(2, 1 + n), 1 + n\n"
          "  end,\n"
          "  encode = function(reply, conn)\n"
          "    return string.char(#reply) .. reply\n"
          "  end,\n"
          "}\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/trusting.lua", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("return {\n"
          "  decode = function(buf, conn) return buf, #buf end,\n"
          "  encode = function(reply, conn) return reply .. ';' end,\n"
          "}\n", f);
    fclose(f);
    char err[512];
    morph_test_t *t = morph_test_load(dir, NULL, NULL, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    const unsigned char *out;
    size_t len;
    ck_assert_int_eq(morph_test_framing(t, "u8", NULL), 0);
    ck_assert_int_eq(morph_test_wire(t, "\x03" "abc\x01z", 6, 0, &out, &len),
                     0);
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(out, "\x03" "abc\x01z", 6);
    ck_assert_int_eq(morph_test_framing(t, "trusting", NULL), 0);
    ck_assert_int_eq(morph_test_wire(t, "abc", 3, MORPH_TEST_ONE_PIECE, &out,
                                     &len), 0);
    ck_assert_mem_eq(out, "abc;", 4);
    ck_assert_int_eq(morph_test_wire(t, "abc", 3, 0, &out, &len), 2);
    ck_assert_str_eq(morph_test_error(t), "fed in two pieces: the transform "
                     "is given 2 messages, in one piece 1 (split at byte 1 "
                     "of 3)");
    ck_assert_mem_eq(out, "abc;", 4); /* what one piece gave */
    morph_test_free(t);
    unlink(path);
    snprintf(path, sizeof path, "%s/u8.lua", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("testing_helper");
    TCase *tc = tcase_create("helper");
    tcase_add_test(tc, load_create_feed_compare);
    tcase_add_test(tc, stream_chunks_and_connections);
    tcase_add_test(tc, errors_are_explained);
    tcase_add_test(tc, rot_example_uses_its_option);
    tcase_add_test(tc, count_example_numbers_each_connection);
    tcase_add_test(tc, lua_scripts_load_like_plugins);
    tcase_add_test(tc, counters_peers_and_leaving);
    tcase_add_test(tc, a_clock_the_test_advances);
    tcase_add_test(tc, wire_line_and_length);
    tcase_add_test(tc, wire_settings_are_checked);
    tcase_add_test(tc, wire_codec_plugin);
    tcase_add_test(tc, wire_catches_a_codec_that_trusts_reads);
#if defined(MORPH_SANITIZE) || defined(__SANITIZE_ADDRESS__)
    /* the poisoned guard: AddressSanitizer reports the write, exit 1 */
    tcase_add_exit_test(tc, writes_past_cap_are_caught, 1);
#else
    tcase_add_test(tc, writes_past_cap_are_caught);
#endif
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
