/* `morph pipe`: chains over standard input, line or stream, and errors. */
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include "harness.h"

static int pipe_run(const char *const *args, const char *input, char **out,
                    char **err)
{
    const char *argv[16] = {MORPH_BIN, "pipe", "-d", PLUGIN_DIR};
    int n = 4;
    for (; *args; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return run_program(argv, input, strlen(input), out, NULL, err);
}

/* Issue 21: writes past out->cap made morph pipe abort in malloc; now
 * the message fails with the plugin's name and the next line is served
 * (with AddressSanitizer on, its report of the write ends the run). */
START_TEST(writes_past_cap_are_caught)
{
    const char *argv[] = {MORPH_BIN, "pipe", "-d", TEST_PLUGIN_DIR, "overrun", NULL};
    char *out, *err;
    int rc = run_program(argv, "over\nok\n", 8, &out, NULL, &err);
#if defined(MORPH_SANITIZE) || defined(__SANITIZE_ADDRESS__)
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, "AddressSanitizer: use-after-poison"), "%s", err);
#else
    ck_assert_int_ne(rc, 0); /* a message failed */
    ck_assert_msg(strstr(err, "line 1: plugin overrun wrote past its output "
                              "buffer (cap "), "%s", err);
    ck_assert_str_eq(out, "ok\n");
#endif
    free(out);
    free(err);
}
END_TEST

/* morph pipe loads the plugin file itself (no private copy): a path past
 * the loader's /proc name buffer still loads. */
START_TEST(plugins_in_long_paths_load)
{
    char base[] = "/tmp/morph-pipe-long-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(base));
    chmod(base, 0755);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", base);
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(dir);
        snprintf(dir + n, sizeof dir - n, "/%s",
                 "a-folder-name-of-sixty-characters-to-make-the-path-long-xx");
        ck_assert_int_eq(mkdir(dir, 0755), 0);
    }
    ck_assert_int_gt(strlen(dir), 260);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp %s/uppercase.so %s/uppercase.so", PLUGIN_DIR, dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *argv[] = {MORPH_BIN, "pipe", "-d", dir, "uppercase", NULL};
    char *out, *err;
    ck_assert_msg(run_program(argv, "hi\n", 3, &out, NULL, &err) == 0, "%s", err);
    ck_assert_str_eq(out, "HI\n");
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(chain_line_by_line)
{
    char *out, *err;
    const char *args[] = {"uppercase,reverse", NULL};
    ck_assert_int_eq(pipe_run(args, "hello\nnoël\r\nlast", &out, &err), 0);
    ck_assert_str_eq(out, "OLLEH\nLËON\r\nTSAL");
    free(out);
    free(err);
    const char *bar[] = {"uppercase | reverse", NULL};
    ck_assert_int_eq(pipe_run(bar, "ab\n", &out, &err), 0);
    ck_assert_str_eq(out, "BA\n");
    free(out);
    free(err);
}
END_TEST

START_TEST(options_as_in_the_ini_file)
{
    char *out, *err;
    const char *args[] = {"-o", "reverse.unit=codepoint", "reverse", NULL};
    ck_assert_int_eq(pipe_run(args, "ne\xcc\x81\n", &out, &err), 0);
    ck_assert_str_eq(out, "\xcc\x81" "en\n");
    free(out);
    free(err);
    const char *bad[] = {"-o", "reverse.unit=word", "reverse", NULL};
    ck_assert_int_eq(pipe_run(bad, "x\n", &out, &err), 78);
    ck_assert_msg(strstr(err, "reverse.unit: 'word' is not one of "
                              "grapheme|codepoint|byte"), "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(stream_mode_needs_chunk_safe_plugins)
{
    char *out, *err;
    const char *ok[] = {"--stream", "uppercase", NULL};
    ck_assert_int_eq(pipe_run(ok, "straße without newline", &out, &err), 0);
    ck_assert_str_eq(out, "STRASSE WITHOUT NEWLINE");
    free(out);
    free(err);
    const char *no[] = {"--stream", "uppercase,reverse", NULL};
    ck_assert_int_eq(pipe_run(no, "x", &out, &err), 64);
    ck_assert_msg(strstr(err, "plugin 'reverse' is not chunk-safe"), "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(missing_plugin_and_bad_usage)
{
    char *out, *err;
    const char *missing[] = {"uppercase,nosuch", NULL};
    ck_assert_int_eq(pipe_run(missing, "x", &out, &err), 78);
    ck_assert_msg(strstr(err, "plugin 'nosuch'") && strstr(err, "nosuch.so"),
                  "%s", err);
    free(out);
    free(err);
    const char *empty[] = {"uppercase,,reverse", NULL};
    ck_assert_int_eq(pipe_run(empty, "x", &out, &err), 64);
    free(out);
    free(err);
    const char *none[] = {NULL};
    ck_assert_int_eq(pipe_run(none, "x", &out, &err), 64);
    free(out);
    free(err);
}
END_TEST

START_TEST(failed_lines_are_reported_and_skipped)
{
    const char *argv[] = {MORPH_BIN, "pipe", "-d", TEST_PLUGIN_DIR, "failing", NULL};
    char *out, *err;
    const char *in = "one\nplease fail\nthree\n";
    ck_assert_int_eq(run_program(argv, in, strlen(in), &out, NULL, &err), 1);
    ck_assert_str_eq(out, "one\nthree\n");
    ck_assert_msg(strstr(err, "line 2: plugin failing: asked to fail"), "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(overlong_line_is_an_error)
{
    char *out, *err;
    const char *args[] = {"--max-message", "4", "echo", NULL};
    ck_assert_int_eq(pipe_run(args, "1234\n12345\n", &out, &err), 1);
    ck_assert_str_eq(out, "1234\n");
    ck_assert_msg(strstr(err, "line 2 is longer than --max-message (4 bytes)"),
                  "%s", err);
    free(out);
    free(err);
}
END_TEST

/* Every framing: messages cut as morphd cuts them, replies framed alike. */
START_TEST(every_framing)
{
    static const struct {
        const char *args[10];
        const char *in;
        size_t in_len;
        const char *out;
        size_t out_len;
    } cases[] = {
        {{"--framing", "netstring", "uppercase"}, "5:hello,0:,", 11, "5:HELLO,0:,", 11},
        {{"-f", "length", "--length-field", "u8", "uppercase"}, "\x02hi\x01x", 5,
         "\x02HI\x01X", 5},
        {{"-f", "length", "--length-field", "u16be", "--length-offset", "1",
          "--length-adjust", "-3", "echo"}, "\xca\x00\x05" "ab", 5,
         "\xca\x00\x05" "ab", 5},
        {{"-f", "delimiter", "uppercase"}, "a\0b\0c", 5, "A\0B\0C", 5},
        {{"-f", "delimiter", "--delimiter", "\\r\\n\\r\\n", "uppercase"},
         "x\r\n\r\ny", 6, "X\r\n\r\nY", 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[16] = {MORPH_BIN, "pipe", "-d", PLUGIN_DIR};
        int n = 4;
        for (const char *const *a = cases[i].args; *a; a++)
            argv[n++] = *a;
        argv[n] = NULL;
        char *out, *err;
        size_t out_len;
        ck_assert_int_eq(run_program(argv, cases[i].in, cases[i].in_len, &out,
                                     &out_len, &err), 0);
        ck_assert_msg(out_len == cases[i].out_len &&
                      memcmp(out, cases[i].out, out_len) == 0,
                      "case %zu: %zu bytes out; stderr: %s", i, out_len, err);
        free(out);
        free(err);
    }
}
END_TEST

START_TEST(input_that_is_not_the_framing)
{
    char *out, *err;
    const char *args[] = {"--framing", "netstring", "uppercase", NULL};
    ck_assert_int_eq(pipe_run(args, "2:ok,05:hello,", &out, &err), 1);
    ck_assert_str_eq(out, "2:OK,");
    ck_assert_msg(strstr(err, "message 2: a netstring length with a leading "
                              "zero: the input is not the framing"), "%s", err);
    free(out);
    free(err);
    const char *big[] = {MORPH_BIN, "pipe", "-d", PLUGIN_DIR, "-f", "length",
                         "-m", "4", "uppercase", NULL};
    ck_assert_int_eq(run_program(big, "\x00\x00\x00\x05hello", 9, &out, NULL,
                                 &err), 1);
    ck_assert_msg(strstr(err, "a frame announcing 5 bytes, longer than "
                              "max_message (--max-message is 4 bytes)"), "%s", err);
    free(out);
    free(err);
    const char *bad[] = {"-f", "li/nes", "uppercase", NULL};
    ck_assert_int_eq(pipe_run(bad, "", &out, &err), 64);
    free(out);
    free(err);
}
END_TEST

/* A codec plugin as the framing, as in morphd: resp, and the probe codec
 * with its own answers, a failed message and its close. */
START_TEST(codec_plugins_as_the_framing)
{
    char *out, *err;
    size_t out_len;
    const char *resp[] = {MORPH_BIN, "pipe", "-d", PLUGIN_DIR, "--framing",
                          "resp", "uppercase", NULL};
    const char *in = "*2\r\n$5\r\nhello\r\n$5\r\nworld\r\nping\r\n";
    ck_assert_int_eq(run_program(resp, in, strlen(in), &out, &out_len, &err), 0);
    ck_assert_str_eq(out, "$11\r\nHELLO WORLD\r\n$4\r\nPING\r\n");
    free(out);
    free(err);
    char dirs[1024];
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, TEST_PLUGIN_DIR);
    const char *probe[] = {MORPH_BIN, "pipe", "-d", dirs, "-f", "codec_probe",
                           "failing", NULL};
    ck_assert_int_eq(run_program(probe, "\x01p\x02hi\x04" "fail\x01q\x02no", 14,
                                 &out, &out_len, &err), 1);
    ck_assert_str_eq(out, "pong<1:2:hi>!bye"); /* nothing after its close */
    ck_assert_msg(strstr(err, "plugin failing: asked to fail"), "%s", err);
    free(out);
    free(err);
    const char *notcodec[] = {MORPH_BIN, "pipe", "-d", PLUGIN_DIR, "-f",
                              "uppercase", "echo", NULL};
    ck_assert_int_eq(run_program(notcodec, "", 0, &out, &out_len, &err), 78);
    ck_assert_msg(strstr(err, "plugin 'uppercase' is not a codec"), "%s", err);
    free(out);
    free(err);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pipe");
    TCase *tc = tcase_create("pipe");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, chain_line_by_line);
    tcase_add_test(tc, writes_past_cap_are_caught);
    tcase_add_test(tc, plugins_in_long_paths_load);
    tcase_add_test(tc, options_as_in_the_ini_file);
    tcase_add_test(tc, stream_mode_needs_chunk_safe_plugins);
    tcase_add_test(tc, missing_plugin_and_bad_usage);
    tcase_add_test(tc, failed_lines_are_reported_and_skipped);
    tcase_add_test(tc, overlong_line_is_an_error);
    tcase_add_test(tc, every_framing);
    tcase_add_test(tc, input_that_is_not_the_framing);
    tcase_add_test(tc, codec_plugins_as_the_framing);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
