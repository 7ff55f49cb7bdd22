/* morphd's command line: --help, --version, -t, exit codes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

START_TEST(help_and_version)
{
    char *out;
    const char *help[] = {"--help", NULL};
    ck_assert_int_eq(run_morphd(help, &out), 0);
    ck_assert_msg(strstr(out, "Usage: morphd") && strstr(out, "--config") &&
                      strstr(out, "--test"), "%s", out);
    free(out);
    const char *version[] = {"--version", NULL};
    ck_assert_int_eq(run_morphd(version, &out), 0);
    ck_assert_msg(strstr(out, "morphd " MORPH_VERSION), "%s", out);
    free(out);
    const char *ref[] = {"--help-config", NULL};
    ck_assert_int_eq(run_morphd(ref, &out), 0);
    ck_assert_msg(strstr(out, "max_message") && strstr(out, "[service NAME]"),
                  "%s", out);
    free(out);
}
END_TEST

START_TEST(bad_usage_exits_64)
{
    char *out;
    const char *args[] = {"--frobnicate", NULL};
    ck_assert_int_eq(run_morphd(args, &out), 64);
    free(out);
    const char *extra[] = {"stray", NULL};
    ck_assert_int_eq(run_morphd(extra, &out), 64);
    ck_assert_msg(strstr(out, "unexpected argument 'stray'"), "%s", out);
    free(out);
}
END_TEST

START_TEST(test_mode_accepts_the_builtin_and_packaged_configs)
{
    char *out;
    const char *builtin[] = {"-t", NULL};
    ck_assert_int_eq(run_morphd(builtin, &out), 0);
    ck_assert_msg(strstr(out, "configuration OK") &&
                      strstr(out, "service uppercase: uppercase"), "%s", out);
    free(out);
    const char *packaged[] = {"-t", "-c", SOURCE_DIR "/config/morphd.ini", NULL};
    ck_assert_int_eq(run_morphd(packaged, &out), 0);
    ck_assert_msg(strstr(out, "plugin uppercase"), "%s", out);
    free(out);
    /* the README's worked example */
    const char *examples[] = {"-t", "-c", SOURCE_DIR "/config/examples.ini", NULL};
    ck_assert_int_eq(run_morphd(examples, &out), 0);
    ck_assert_msg(strstr(out, "service reverse: reverse (line framing)") &&
                      strstr(out, "service shout-backwards: uppercase | reverse"),
                  "%s", out);
    free(out);
}
END_TEST

/* -t -q is what the packaged unit runs before each reload: silent when the
 * file is good, the errors (and 78) when it is not. */
START_TEST(test_mode_quiet_prints_only_errors)
{
    char *out;
    const char *good[] = {"-t", "-q", "-c", SOURCE_DIR "/config/examples.ini", NULL};
    ck_assert_int_eq(run_morphd(good, &out), 0);
    ck_assert_msg(out[0] == '\0', "printed: %s", out);
    free(out);
    const char *bad[] = {"-t", "-q", "--set", "uppercase.framing=sideways", NULL};
    ck_assert_int_eq(run_morphd(bad, &out), 78);
    ck_assert_msg(strstr(out, "framing") && strstr(out, "1 error"), "%s", out);
    free(out);
    const char *alone[] = {"-q", NULL};
    ck_assert_int_eq(run_morphd(alone, &out), 64);
    ck_assert_msg(strstr(out, "-q goes with -t"), "%s", out);
    free(out);
}
END_TEST

/* An http:// service that sets framing = stream streams bodies in pieces:
 * a plugin that is not chunk-safe is refused, with framing's line; one
 * that leaves framing at its default gets whole bodies and may use it. */
START_TEST(test_mode_checks_chunk_safety_of_streamed_http)
{
    char ini[512];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nallow_root = yes\n[service a]\n"
             "listen = http://127.0.0.1:0\ntransform = reverse\n"
             "framing = stream\n", PLUGIN_DIR);
    char *path = write_temp_file(ini);
    const char *args[] = {"-t", "-c", path, NULL};
    char *out;
    ck_assert_int_eq(run_morphd(args, &out), 78);
    char want[256];
    snprintf(want, sizeof want, "%s:7: service 'a': plugin 'reverse' is not "
             "chunk-safe", path);
    ck_assert_msg(strstr(out, want), "%s", out);
    free(out);
    unlink(path);
    free(path);
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\nallow_root = yes\n[service a]\n"
             "listen = http://127.0.0.1:0\ntransform = reverse\n", PLUGIN_DIR);
    path = write_temp_file(ini);
    const char *ok[] = {"-t", "-c", path, NULL};
    ck_assert_int_eq(run_morphd(ok, &out), 0);
    free(out);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(test_mode_reports_every_error_and_exits_78)
{
    char ini[512];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n[service a]\nlisten = tcp://127.0.0.1:0\n"
             "transform = uppercase | nosuch\nframing = line\nmax_mesage = 1K\n",
             PLUGIN_DIR);
    char *path = write_temp_file(ini);
    const char *args[] = {"-t", "-c", path, NULL};
    char *out;
    ck_assert_int_eq(run_morphd(args, &out), 78);
    char want[256];
    snprintf(want, sizeof want, "%s:7: unknown key 'max_mesage'; did you mean "
             "'max_message'?", path);
    ck_assert_msg(strstr(out, want), "%s", out);
    free(out);

    /* once the key is fixed, the plugin error appears, with its line */
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n[service a]\nlisten = tcp://127.0.0.1:0\n"
             "transform = uppercase | nosuch\nframing = line\n", PLUGIN_DIR);
    FILE *f = fopen(path, "w");
    fputs(ini, f);
    fclose(f);
    ck_assert_int_eq(run_morphd(args, &out), 78);
    snprintf(want, sizeof want, "%s:5: plugin 'nosuch': %s/nosuch.so: No such "
             "file", path, PLUGIN_DIR);
    ck_assert_msg(strstr(out, want), "%s", out);
    free(out);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(missing_config_file_exits_78)
{
    char *out;
    const char *args[] = {"-c", "/nonexistent/x.ini", NULL};
    ck_assert_int_eq(run_morphd(args, &out), 78);
    ck_assert_msg(strstr(out, "/nonexistent/x.ini: cannot open"), "%s", out);
    free(out);
}
END_TEST

/* --set overrides one key of the file, e.g. to move the packaged service
 * to another port. */
START_TEST(set_overrides_a_key)
{
    char *out;
    const char *args[] = {"-t", "-c", SOURCE_DIR "/config/morphd.ini", "--set",
                          "uppercase.listen=tcp://127.0.0.1:0 udp://[::1]:0",
                          "--set", "uppercase.uppercase.locale=tr", NULL};
    ck_assert_int_eq(run_morphd(args, &out), 0);
    ck_assert_msg(strstr(out, "on tcp://127.0.0.1:0 udp://[::1]:0\n"), "%s", out);
    free(out);
    const char *typo[] = {"-t", "--set", "uppercase.max_mesage=1K", NULL};
    ck_assert_int_eq(run_morphd(typo, &out), 78);
    ck_assert_msg(strstr(out, "did you mean 'max_message'?"), "%s", out);
    free(out);
    const char *bad[] = {"-t", "--set", "uppercase.framing=sideways", NULL};
    ck_assert_int_eq(run_morphd(bad, &out), 78);
    ck_assert_msg(strstr(out, "framing = sideways is not a built-in framing"), "%s", out);
    free(out);
    const char *nosvc[] = {"-t", "--set", "nope.listen=tcp://127.0.0.1:0", NULL};
    ck_assert_int_eq(run_morphd(nosvc, &out), 78);
    ck_assert_msg(strstr(out, "no service 'nope'"), "%s", out);
    free(out);
    const char *badopt[] = {"-t", "--set", "uppercase.uppercase.colour=red", NULL};
    ck_assert_int_eq(run_morphd(badopt, &out), 78);
    ck_assert_msg(strstr(out, "morphd: --set: unknown option "
                              "'uppercase.colour'"), "%s", out);
    free(out);
}
END_TEST

/* docs/configuration.md holds exactly the table morphd generates. */
/* The generated part of `path` (between its markers) is exactly what
 * `morphd --help-config=FORMAT` prints. */
static void assert_generated(const char *path, const char *format,
                             const char *begin_mark, const char *end_mark)
{
    char *table, arg[64];
    snprintf(arg, sizeof arg, "--help-config=%s", format);
    const char *args[] = {arg, NULL};
    ck_assert_int_eq(run_morphd(args, &table), 0);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char doc[131072];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    const char *begin = strstr(doc, begin_mark);
    ck_assert_ptr_nonnull(begin);
    begin = strchr(begin, '\n') + 1;
    const char *end = strstr(begin, end_mark);
    ck_assert_ptr_nonnull(end);
    ck_assert_msg(strlen(table) == (size_t)(end - begin) &&
                      strncmp(begin, table, strlen(table)) == 0,
                  "%s is out of date: run scripts/gen-config-doc.sh build",
                  path);
    free(table);
}

/* docs/configuration.md and morphd.ini(5) hold exactly the key lists
 * morphd generates (every key, every bundled plugin's options). */
START_TEST(configuration_doc_matches_the_key_table)
{
    assert_generated(SOURCE_DIR "/docs/configuration.md", "markdown",
                     "<!-- BEGIN KEYS", "<!-- END KEYS");
    assert_generated(SOURCE_DIR "/docs/man/morphd.ini.5", "man",
                     ".\\\" BEGIN KEYS", ".\\\" END KEYS");
}
END_TEST

/* -t fails, before any socket is opened, for what the same user could not
 * start: as root, neither `user` nor `allow_root`; a user that does not
 * exist. (Not as root, there is nothing to drop: -t passes.) */
START_TEST(test_mode_checks_what_dropping_root_would_refuse)
{
    char ini[512];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\n[service a]\n"
             "listen = tcp://127.0.0.1:0\ntransform = echo\n", PLUGIN_DIR);
    char *path = write_temp_file(ini);
    char *out;
    const char *args[] = {"-t", "-c", path, NULL};
    const char *allowed[] = {"-t", "-c", path, "--set", "morphd.allow_root=yes",
                             NULL};
    const char *nouser[] = {"-t", "-c", path, "--set",
                            "morphd.user=no-such-user-here", NULL};
    if (geteuid() == 0) {
        ck_assert_int_eq(run_morphd(args, &out), 78);
        ck_assert_msg(strstr(out, "morphd refuses to run as root: set user = "
                                  "NAME"), "%s", out);
        ck_assert_msg(!strstr(out, "listening"), "%s", out);
        free(out);
        ck_assert_int_eq(run_morphd(nouser, &out), 78);
        ck_assert_msg(strstr(out, "user = no-such-user-here: no such user"),
                      "%s", out);
        free(out);
    } else {
        ck_assert_int_eq(run_morphd(args, &out), 0);
        free(out);
    }
    ck_assert_int_eq(run_morphd(allowed, &out), 0);
    free(out);
    unlink(path);
    free(path);
}
END_TEST

/* Runs `morph ARGS...`; returns the exit status, stdout and stderr. */
static int morph_run(const char *const *args, char **out, char **err)
{
    const char *argv[16] = {MORPH_BIN};
    int n = 1;
    for (; args[n - 1] != NULL && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    return run_program(argv, "", 0, out, NULL, err);
}

START_TEST(plugin_info)
{
    char *out, *err;
    const char *delay[] = {"plugin", "info", "delay", "-d", PLUGIN_DIR, NULL};
    ck_assert_int_eq(morph_run(delay, &out, &err), 0);
    char want[128];
    snprintf(want, sizeof want, "built for plugin ABI %d; loads on morph hosts "
             "with plugin ABI 2 and later", MORPH_PLUGIN_ABI_VERSION);
    ck_assert_msg(strstr(out, "plugin       delay\n") && strstr(out, want) &&
                      strstr(out, "flags        chunk-safe\n") &&
                      strstr(out, "delay.mode                 default: timer; "
                                  "values: timer, sleep"),
                  "%s", out);
    free(out);
    free(err);
    /* a file, built for ABI 1 */
    const char *abi1[] = {"plugin", "info", TEST_PLUGIN_DIR "/abi1_upper.so",
                          NULL};
    ck_assert_int_eq(morph_run(abi1, &out, &err), 0);
    ck_assert_msg(strstr(out, "built for plugin ABI 1; loads on morph hosts "
                              "with plugin ABI 1 and later") &&
                      strstr(out, "options      not declared"), "%s", out);
    free(out);
    free(err);
    /* no plugin code runs, not even load() */
    const char *hooks[] = {"plugin", "info", "hooks", "-d", TEST_PLUGIN_DIR,
                           NULL};
    ck_assert_int_eq(morph_run(hooks, &out, &err), 0);
    ck_assert_msg(!strstr(out, "hook ran") && !strstr(err, "hook ran"),
                  "%s%s", out, err);
    free(out);
    free(err);
    /* what morphd would refuse, with its reason */
    const char *bad[] = {"plugin", "info", "bad_abi", "-d", TEST_PLUGIN_DIR,
                         NULL};
    ck_assert_int_eq(morph_run(bad, &out, &err), 78);
    ck_assert_msg(strstr(err, "abi_min"), "%s", err);
    free(out);
    free(err);
    const char *none[] = {"plugin", "info", "nope", "-d", TEST_PLUGIN_DIR, NULL};
    ck_assert_int_eq(morph_run(none, &out, &err), 78);
    free(out);
    free(err);
    const char *usage[] = {"plugin", "frob", NULL};
    ck_assert_int_eq(morph_run(usage, &out, &err), 64);
    free(out);
    free(err);
}
END_TEST

/* --help-config lists the options plugins declare, after morphd's keys. */
START_TEST(help_config_lists_plugin_options)
{
    char *out;
    const char *args[] = {"--help-config", NULL};
    ck_assert_int_eq(run_morphd(args, &out), 0);
    char *keys = strstr(out, "idle_timeout");
    char *opts = strstr(out, "delay.mode");
    ck_assert_msg(keys && opts && keys < opts, "%s", out);
    ck_assert_msg(strstr(out, "reverse.unit               default: grapheme"),
                  "%s", out);
    free(out);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, bad_usage_exits_64);
    tcase_add_test(tc, test_mode_accepts_the_builtin_and_packaged_configs);
    tcase_add_test(tc, test_mode_quiet_prints_only_errors);
    tcase_add_test(tc, test_mode_reports_every_error_and_exits_78);
    tcase_add_test(tc, test_mode_checks_chunk_safety_of_streamed_http);
    tcase_add_test(tc, missing_config_file_exits_78);
    tcase_add_test(tc, set_overrides_a_key);
    tcase_add_test(tc, configuration_doc_matches_the_key_table);
    tcase_add_test(tc, plugin_info);
    tcase_add_test(tc, test_mode_checks_what_dropping_root_would_refuse);
    tcase_add_test(tc, help_config_lists_plugin_options);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
