/* The plugin loader's errors, each naming the plugin, its file and why; and
 * the same errors at start-up as FILE:LINE config errors. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "engine/options.h"
#include "engine/plugin_loader.h"

static void assert_load_fails(const char *name, const char *why)
{
    morphd_plugin_t p;
    char err[1024] = "";
    ck_assert_int_eq(morphd_plugin_load(TEST_PLUGIN_DIR, name, &p, err,
                                        sizeof err), -1);
    char named[256];
    snprintf(named, sizeof named, "plugin '%s': %s/%s.so", name,
             TEST_PLUGIN_DIR, name);
    ck_assert_msg(strstr(err, named) != NULL, "names plugin and file: %s", err);
    ck_assert_msg(strstr(err, why) != NULL, "expected '%s' in: %s", why, err);
    ck_assert_ptr_null(p.handle); /* nothing left loaded */
}

START_TEST(loads_a_good_plugin)
{
    morphd_plugin_t p;
    char err[1024];
    ck_assert_int_eq(morphd_plugin_load(PLUGIN_DIR, "echo", &p, err, sizeof err),
                     0);
    ck_assert_str_eq(p.desc->name, "echo");
    ck_assert_uint_eq(p.desc->abi_version, MORPH_PLUGIN_ABI_VERSION);
    ck_assert(p.desc->flags & MORPH_PLUGIN_CHUNK_SAFE);
    morphd_plugin_unload(&p);
}
END_TEST

START_TEST(missing_file)
{
    assert_load_fails("no_such_plugin", "No such file or directory");
}
END_TEST

START_TEST(not_a_shared_object)
{
    assert_load_fails("garbage", "cannot load");
}
END_TEST

START_TEST(missing_symbol)
{
    assert_load_fails("no_symbol", "does not export the symbol 'morph_plugin'");
}
END_TEST

/* Rule 3: a plugin that needs a newer host is refused, naming both. */
START_TEST(wrong_abi_version)
{
    char why[256];
    snprintf(why, sizeof why, "built for plugin ABI %d: it needs a host with "
             "plugin ABI %d or later (abi_min), and this morphd has plugin "
             "ABI %d", MORPH_PLUGIN_ABI_VERSION + 997,
             MORPH_PLUGIN_ABI_VERSION + 997, MORPH_PLUGIN_ABI_VERSION);
    assert_load_fails("bad_abi", why);
}
END_TEST

/* Rule 3: built against a newer header, needing no more than this host:
 * loads, and the member this host does not know is not read. */
START_TEST(newer_plugin_within_abi_min_loads)
{
    morphd_plugin_t p;
    char err[1024];
    ck_assert_msg(morphd_plugin_load(TEST_PLUGIN_DIR, "newer_ok", &p, err,
                                     sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(p.abi, MORPH_PLUGIN_ABI_VERSION + 1);
    ck_assert_uint_eq(p.abi_min, MORPH_PLUGIN_ABI_VERSION);
    ck_assert_uint_gt(p.desc->struct_size, sizeof(morph_plugin_t));
    morphd_plugin_unload(&p);
}
END_TEST

/* Rule 4: unknown flag bits are refused, never ignored. */
START_TEST(unknown_flag_is_refused)
{
    assert_load_fails("unknown_flag", "sets flag bits 0x40000000");
    /* a bit ABI 2 knows is still unknown to a plugin built for ABI 1 */
    assert_load_fails("abi1_flag", "flag bits 0x2 (blocking) that its ABI "
                      "version does not have");
}
END_TEST

/* Rule 5: ABI 1 plugins, built with the frozen ABI 1 header, load; their
 * reserved room must be zero, as ABI 1 demanded. */
START_TEST(abi1_plugin_loads)
{
    morphd_plugin_t p;
    char err[1024];
    ck_assert_msg(morphd_plugin_load(TEST_PLUGIN_DIR, "abi1_upper", &p, err,
                                     sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(p.abi, 1);
    ck_assert_uint_eq(p.desc->struct_size, 144); /* ABI 1's, reserved[8] */
    ck_assert_ptr_null(p.cancel); /* read as absent, not from reserved[] */
    ck_assert(!p.declares_options);
    morphd_plugin_unload(&p);
    assert_load_fails("abi1_reserved", "an ABI 1 descriptor whose reserved[] "
                      "room is not zero");
    /* the same source built against today's header is a plugin of today's ABI */
    ck_assert_msg(morphd_plugin_load(TEST_PLUGIN_DIR, "abi1_rebuilt", &p, err,
                                     sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(p.abi, MORPH_PLUGIN_ABI_VERSION);
    ck_assert_uint_eq(p.abi_min, MORPH_PLUGIN_ABI_MIN_DEFAULT);
    morphd_plugin_unload(&p);
    test_chain_t tc;
    char ini[512];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\n[service t]\n"
             "listen = tcp://127.0.0.1:0\ntransform = abi1_rebuilt\n"
             "abi1_rebuilt.tag = t\n", TEST_PLUGIN_DIR);
    ck_assert_ptr_null(test_chain_try(&tc, ini));
    char *out = test_chain_str(&tc, "same");
    ck_assert_str_eq(out, "t1:SAME");
    free(out);
    test_chain_free(&tc);
}
END_TEST

/* Rule 2: the struct sizes the header promises, checked with offsetof so
 * that a member moved or resized by mistake fails here. */
START_TEST(struct_layouts_only_grow)
{
    /* ABI 1's members stay where they were */
    ck_assert_uint_eq(offsetof(morph_plugin_t, transform), 72);
    ck_assert_uint_eq(offsetof(morph_plugin_t, abi_min), 80);
    ck_assert_uint_eq(offsetof(morph_msg_t, flags), 16);
    ck_assert_uint_eq(offsetof(morph_msg_t, struct_size), 20);
    ck_assert_uint_eq(offsetof(morph_out_t, host_private), 40);
    ck_assert_uint_eq(offsetof(morph_out_t, struct_size), 48);
    ck_assert_uint_eq(offsetof(morph_host_t, host_private), 16);
    ck_assert_uint_eq(offsetof(morph_host_t, service), 24);
    ck_assert_uint_eq(sizeof(morph_option_t), 16); /* an array element */
    /* MORPH_HAS reads struct_size */
    morph_host_t h = {.struct_size = offsetof(morph_host_t, service)};
    ck_assert(MORPH_HAS(&h, log));
    ck_assert(!MORPH_HAS(&h, service));
    h.struct_size = sizeof h;
    ck_assert(MORPH_HAS(&h, counter_add));
    /* ABI 5's HTTP services come after ABI 4's last member: a host of
     * ABI 4's size has none of them */
    ck_assert_uint_eq(offsetof(morph_host_t, http_request),
                      offsetof(morph_host_t, instance_flags) + sizeof(void *));
    ck_assert_uint_eq(offsetof(morph_host_t, http_header_add),
                      offsetof(morph_host_t, http_request) + 3 * sizeof(void *));
    h.struct_size = offsetof(morph_host_t, http_request);
    ck_assert(MORPH_HAS(&h, instance_flags));
    ck_assert(!MORPH_HAS(&h, http_request));
    ck_assert_uint_eq(offsetof(morph_http_request_t, struct_size), 0);
    ck_assert_uint_eq(offsetof(morph_http_field_t, struct_size), 0);
}
END_TEST

START_TEST(descriptor_too_small)
{
    assert_load_fails("small_desc", "descriptor is 16 bytes");
}
END_TEST

START_TEST(name_mismatch)
{
    assert_load_fails("wrong_name", "the descriptor's name is 'something_else'");
}
END_TEST

/* At start-up, loader errors are config errors at the transform line. */
static char *startup_error(const char *plugin_dir, const char *transform,
                           const char *framing)
{
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n\n[service s]\n"
             "listen = tcp://127.0.0.1:0\ntransform = %s\nframing = %s\n",
             plugin_dir, transform, framing);
    test_chain_t tc;
    char *err = test_chain_try(&tc, ini);
    if (err == NULL)
        test_chain_free(&tc);
    return err;
}

START_TEST(unknown_plugin_is_a_config_error_with_line)
{
    char *e = startup_error(PLUGIN_DIR, "uppercase | shout", "line");
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "test.ini:6: plugin 'shout': ") == e, "%s", e);
    ck_assert_msg(strstr(e, "/shout.so: No such file"), "%s", e);
    free(e);
}
END_TEST

START_TEST(abi_mismatch_is_a_config_error_with_line)
{
    char *e = startup_error(TEST_PLUGIN_DIR, "bad_abi", "line");
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "test.ini:6: plugin 'bad_abi': ") == e, "%s", e);
    ck_assert_msg(strstr(e, "abi_min"), "%s", e);
    free(e);
}
END_TEST

START_TEST(create_failure_is_a_config_error_with_reason)
{
    char *e = startup_error(TEST_PLUGIN_DIR, "bad_create", "line");
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "test.ini:6: service 's': plugin 'bad_create'") == e,
                  "%s", e);
    ck_assert_msg(strstr(e, "the flux capacitor is missing"), "%s", e);
    free(e);
}
END_TEST

START_TEST(non_chunk_safe_plugin_in_stream_framing)
{
    char *e = startup_error(PLUGIN_DIR, "uppercase | reverse", "stream");
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "test.ini:7: service 's': plugin 'reverse' is not "
                            "chunk-safe") == e, "%s", e);
    ck_assert_msg(strstr(e, "set framing = line"), "%s", e);
    free(e);
    /* the same chain in line framing is fine */
    ck_assert_ptr_null(startup_error(PLUGIN_DIR, "uppercase | reverse", "line"));
}
END_TEST

START_TEST(bad_plugin_option_is_a_config_error)
{
    test_chain_t tc;
    char ini[512];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n[service s]\nlisten = tcp://127.0.0.1:0\n"
             "transform = reverse\nframing = line\nreverse.unit = word\n",
             PLUGIN_DIR);
    char *e = test_chain_try(&tc, ini);
    ck_assert_ptr_nonnull(e);
    /* a declared option: the error names the option's own line */
    ck_assert_msg(strcmp(e, "test.ini:7: reverse.unit: 'word' is not one of "
                            "grapheme|codepoint|byte") == 0, "%s", e);
    free(e);
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n[service s]\nlisten = tcp://127.0.0.1:0\n"
             "transform = echo\necho.loud = yes\n", PLUGIN_DIR);
    e = test_chain_try(&tc, ini);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strcmp(e, "test.ini:6: plugin 'echo' takes no options, but "
                            "'echo.loud' is set") == 0, "%s", e);
    free(e);
}
END_TEST

/* Declared options: every bad one in one pass, each at its own line, the
 * closest name suggested; values are parsed as their declared types. */
START_TEST(declared_options_all_errors_at_their_lines)
{
    char path[] = "/tmp/morph-opts-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    dprintf(fd, "[morphd]\nplugin_dir = %s\nuser = nobody\n[service s]\n"
            "listen = tcp://127.0.0.1:0\ntransform = delay | reverse\n"
            "framing = line\n"
            "delay.mss = 5\n"            /* line 8: a typo */
            "delay.mode = nap\n"         /* line 9: not one of */
            "reverse.unit = byte\n"      /* line 10: fine */
            "delay.ms = -3\n",           /* line 11: out of range */
            PLUGIN_DIR);
    close(fd);
    char *out;
    const char *args[] = {"-t", "-c", path, NULL};
    ck_assert_int_eq(run_morphd(args, &out), 78);
    char want[3][256];
    snprintf(want[0], sizeof want[0], "%s:8: unknown option 'delay.mss' of "
             "plugin 'delay'; did you mean 'delay.ms'?", path);
    snprintf(want[1], sizeof want[1], "%s:9: delay.mode: 'nap' is not one of "
             "timer|sleep", path);
    snprintf(want[2], sizeof want[2], "%s:11: delay.ms: -3 is out of range "
             "0..3600000", path);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(strstr(out, want[i]), "expected '%s' in:\n%s", want[i],
                      out);
    ck_assert_msg(strstr(out, "3 errors"), "%s", out);
    ck_assert_msg(!strstr(out, ":10:"), "%s", out);
    free(out);
    unlink(path);
}
END_TEST

START_TEST(declared_option_types)
{
    static const morph_option_decl_t d_size =
        MORPH_OPTION_SIZE("s", NULL, 0, 1 << 30, "");
    static const morph_option_decl_t d_dur =
        MORPH_OPTION_DURATION("d", NULL, 0, 3600000, "");
    static const morph_option_decl_t d_bool = MORPH_OPTION_BOOL("b", NULL, "");
    static const morph_option_decl_t d_enum =
        MORPH_OPTION_ENUM("e", NULL, "timer|sleep", "");
    static const struct {
        const morph_option_decl_t *d;
        const char *in, *out; /* out NULL: refused */
    } cases[] = {
        {&d_size, "64K", "65536"},     {&d_size, "1 MiB", "1048576"},
        {&d_size, "2g", NULL},         {&d_size, "-1", NULL},
        {&d_size, "12x", NULL},        {&d_dur, "250ms", "250"},
        {&d_dur, "1.5s", "1500"},      {&d_dur, "2m", "120000"},
        {&d_dur, "40", NULL},          {&d_dur, "0", "0"},
        {&d_dur, "40ms", "40"},        {&d_dur, "1e3ms", NULL},
        {&d_dur, "nan", NULL},
        {&d_dur, "inf", NULL},         {&d_dur, "-5ms", NULL},
        {&d_dur, "2h", NULL},          {&d_bool, "on", "yes"},
        {&d_bool, "FALSE", "no"},      {&d_bool, "maybe", NULL},
        {&d_enum, "Sleep", "sleep"},   {&d_enum, "time", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[64], err[256];
        int rc = morphd_option_normalize(cases[i].d, cases[i].in, false, out,
                                         sizeof out, err, sizeof err);
        if (cases[i].out == NULL) {
            ck_assert_msg(rc == -1, "'%s' accepted as '%s'", cases[i].in, out);
        } else {
            ck_assert_msg(rc == 0, "'%s': %s", cases[i].in, err);
            ck_assert_str_eq(out, cases[i].out);
        }
    }
}
END_TEST

/* plugin_dir is a search path: the first folder with NAME.so provides
 * plugin NAME -- a local folder before the packaged one adds and overrides
 * plugins; an entry there that is broken is an error, not skipped. */
START_TEST(plugin_dir_searches_its_folders_in_order)
{
    char local[] = "/tmp/morph-local-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(local));
    chmod(local, 0755);
    char dirs[1024], cmd[1024], err[1024];
    snprintf(dirs, sizeof dirs, "%s %s", local, PLUGIN_DIR);
    morphd_plugin_t p;

    /* not in the local folder: the packaged one's */
    ck_assert_msg(morphd_plugin_load(dirs, "echo", &p, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(strncmp(p.path, PLUGIN_DIR "/", strlen(PLUGIN_DIR) + 1) == 0,
                  "%s", p.path);
    morphd_plugin_unload(&p);

    /* a plugin only the local folder has, in a chain with a packaged one */
    snprintf(cmd, sizeof cmd, "cp %s/swap_a.so %s/swap.so", TEST_PLUGIN_DIR, local);
    ck_assert_int_eq(system(cmd), 0);
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[morphd]\nplugin_dir = %s\n\n[service s]\n"
             "listen = tcp://127.0.0.1:0\ntransform = swap | uppercase\n", dirs);
    test_chain_t tc;
    char *e = test_chain_try(&tc, ini);
    ck_assert_msg(e == NULL, "%s", e);
    char *out = test_chain_str(&tc, "hello");
    ck_assert_str_eq(out, "A:HELLO");
    free(out);
    test_chain_free(&tc);

    /* the same name in both: the local folder's wins */
    snprintf(cmd, sizeof cmd, "cp %s/echo.so %s/echo.so", PLUGIN_DIR, local);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(morphd_plugin_load(dirs, "echo", &p, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_msg(strncmp(p.path, local, strlen(local)) == 0, "%s", p.path);
    morphd_plugin_unload(&p);

    /* a broken entry in the local folder is reported, not passed over */
    snprintf(cmd, sizeof cmd, "ln -s /nonexistent/reverse.so %s/reverse.so", local);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(morphd_plugin_load(dirs, "reverse", &p, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "%s/reverse.so: No such file", local);
    ck_assert_msg(strstr(err, want), "%s", err);

    /* in no folder: every folder is named */
    ck_assert_int_eq(morphd_plugin_load(dirs, "nosuch", &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no nosuch.so or nosuch.lua in any folder of "
                              "plugin_dir") &&
                      strstr(err, dirs), "%s", err);
    /* blanks only */
    ck_assert_int_eq(morphd_plugin_load(" \t ", "echo", &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "plugin_dir names no folder"), "%s", err);

    snprintf(cmd, sizeof cmd, "rm -rf %s", local);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A plugin runs from a sealed in-memory copy named after its file
 * (issue 21); a path past the 249 bytes a memfd name may have still loads. */
START_TEST(plugins_in_long_paths_load)
{
    char base[] = "/tmp/morph-long-XXXXXX";
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
    snprintf(cmd, sizeof cmd, "cp %s/echo.so %s/echo.so", PLUGIN_DIR, dir);
    ck_assert_int_eq(system(cmd), 0);
    morphd_plugin_t p;
    char err[1024];
    ck_assert_msg(morphd_plugin_load(dir, "echo", &p, err, sizeof err) == 0,
                  "%s", err);
    morphd_plugin_unload(&p);
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Like sshd's StrictModes: a plugin anyone else could have replaced is
 * refused, naming the culprit and the fix. */
START_TEST(refuses_plugins_others_can_write)
{
    char dir[] = "/tmp/morph-perm-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/echo.so", dir);
    snprintf(cmd, sizeof cmd, "cp %s/echo.so %s", PLUGIN_DIR, path);
    ck_assert_int_eq(system(cmd), 0);

    morphd_plugin_t p;
    char err[1024];
    chmod(dir, 0755);
    chmod(path, 0644);
    ck_assert_msg(morphd_plugin_load(dir, "echo", &p, err, sizeof err) == 0,
                  "%s", err);
    morphd_plugin_unload(&p);

    chmod(path, 0666);
    ck_assert_int_eq(morphd_plugin_load(dir, "echo", &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "refusing to load") &&
                      strstr(err, "echo.so is writable by everyone (mode 666)") &&
                      strstr(err, "chmod go-w"), "%s", err);

    chmod(path, 0664);
    ck_assert_int_eq(morphd_plugin_load(dir, "echo", &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "writable by its group"), "%s", err);

    chmod(path, 0644);
    chmod(dir, 0777); /* a folder on the path, without the sticky bit */
    ck_assert_int_eq(morphd_plugin_load(dir, "echo", &p, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "%s is writable by everyone", dir);
    ck_assert_msg(strstr(err, want), "%s", err);

    /* sticky, like /tmp: others cannot replace echo.so, but can put
     * echo.lua beside it and break the next start (issue 21): refused */
    chmod(dir, 01777);
    ck_assert_int_eq(morphd_plugin_load(dir, "echo", &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, want) && strstr(err, "sticky: others can still "
                                                   "add files to it"), "%s", err);

    /* a sticky folder further up (/tmp itself) is fine */
    chmod(dir, 0755);
    ck_assert_msg(morphd_plugin_load(dir, "echo", &p, err, sizeof err) == 0,
                  "%s", err);
    morphd_plugin_unload(&p);

    unlink(path);
    rmdir(dir);
}
END_TEST

/* Issue 14, hole 1: plugin_dir/echo.so a symbolic link to a 0755 file in
 * a world-writable, non-sticky folder passed the check (stat follows the
 * link; the folders checked were the link's) and loaded -- as root, before
 * the privilege drop. The real file's folders are checked now; a link
 * into a safe folder still loads. */
START_TEST(refuses_symlinks_into_folders_others_can_write)
{
    char safe[] = "/tmp/morph-link-XXXXXX", open_dir[] = "/tmp/morph-open-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(safe));
    ck_assert_ptr_nonnull(mkdtemp(open_dir));
    chmod(safe, 0755);
    chmod(open_dir, 0777); /* anyone may replace what is in it */
    char target[128], link_path[128], cmd[512];
    snprintf(target, sizeof target, "%s/echo.so", open_dir);
    snprintf(link_path, sizeof link_path, "%s/echo.so", safe);
    snprintf(cmd, sizeof cmd, "cp %s/echo.so %s", PLUGIN_DIR, target);
    ck_assert_int_eq(system(cmd), 0);
    chmod(target, 0755);
    ck_assert_int_eq(symlink(target, link_path), 0);

    morphd_plugin_t p;
    char err[1024];
    ck_assert_int_eq(morphd_plugin_load(safe, "echo", &p, err, sizeof err), -1);
    char want[160];
    snprintf(want, sizeof want, "%s is writable by everyone", open_dir);
    ck_assert_msg(strstr(err, "refusing to load") && strstr(err, want) &&
                      strstr(err, "(it is ") && strstr(err, target),
                  "%s", err);

    /* the same link into a folder nobody else may write: loads */
    chmod(open_dir, 0755);
    ck_assert_msg(morphd_plugin_load(safe, "echo", &p, err, sizeof err) == 0,
                  "%s", err);
    morphd_plugin_unload(&p);

    /* a link to a link: the last one counts */
    char open2[] = "/tmp/morph-open2-XXXXXX", hop[160];
    ck_assert_ptr_nonnull(mkdtemp(open2));
    chmod(open2, 0777);
    snprintf(hop, sizeof hop, "%s/echo.so", open2);
    snprintf(cmd, sizeof cmd, "cp %s/echo.so %s", PLUGIN_DIR, hop);
    ck_assert_int_eq(system(cmd), 0);
    unlink(target);
    ck_assert_int_eq(symlink(hop, target), 0);
    ck_assert_int_eq(morphd_plugin_load(safe, "echo", &p, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s is writable by everyone", open2);
    ck_assert_msg(strstr(err, want), "%s", err);

    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", safe, open_dir, open2);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A script keeps no code mapped, only its source and descriptor, so more
 * versions of it may be loaded than of a .so (MORPHD_SCRIPT_VERSIONS_MAX
 * against MORPHD_PLUGIN_VERSIONS_MAX); past that, loading says why and
 * what to do, as for a .so. */
START_TEST(script_versions_are_bounded_too)
{
    char dir[] = "/tmp/morph-script-vers-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755);
    char path[96];
    snprintf(path, sizeof path, "%s/v.lua", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("return { transform = function(m) return m end }\n", f);
    fclose(f);
    morphd_plugin_t p;
    char err[512];
    ck_assert_int_eq(morphd_plugin_load_variant(dir, "v",
                                                MORPHD_SCRIPT_VERSIONS_MAX - 1,
                                                &p, NULL, err, sizeof err), 0);
    ck_assert_ptr_nonnull(p.script);
    morphd_plugin_unload(&p);
    bool in_script = true;
    ck_assert_int_eq(morphd_plugin_load_variant(dir, "v",
                                                MORPHD_SCRIPT_VERSIONS_MAX, &p,
                                                &in_script, err, sizeof err), -1);
    ck_assert(!in_script); /* the version bound, not the script's error */
    ck_assert_msg(strstr(err, "loaded 1024 times since morphd started") &&
                      strstr(err, "restart morphd"), "%s", err);
    /* an error in the script itself: -1 as every failure, and the flag
     * that its message starts with the script's FILE:LINE (no -2) */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("return { transform = \n", f);
    fclose(f);
    in_script = false;
    ck_assert_int_eq(morphd_plugin_load_variant(dir, "v", 0, &p, &in_script,
                                                err, sizeof err), -1);
    ck_assert_msg(in_script && strncmp(err, path, strlen(path)) == 0, "%s", err);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, loads_a_good_plugin);
    tcase_add_test(tc, refuses_symlinks_into_folders_others_can_write);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, not_a_shared_object);
    tcase_add_test(tc, missing_symbol);
    tcase_add_test(tc, wrong_abi_version);
    tcase_add_test(tc, newer_plugin_within_abi_min_loads);
    tcase_add_test(tc, unknown_flag_is_refused);
    tcase_add_test(tc, abi1_plugin_loads);
    tcase_add_test(tc, struct_layouts_only_grow);
    tcase_add_test(tc, declared_options_all_errors_at_their_lines);
    tcase_add_test(tc, declared_option_types);
    tcase_add_test(tc, descriptor_too_small);
    tcase_add_test(tc, name_mismatch);
    tcase_add_test(tc, unknown_plugin_is_a_config_error_with_line);
    tcase_add_test(tc, abi_mismatch_is_a_config_error_with_line);
    tcase_add_test(tc, create_failure_is_a_config_error_with_reason);
    tcase_add_test(tc, non_chunk_safe_plugin_in_stream_framing);
    tcase_add_test(tc, bad_plugin_option_is_a_config_error);
    tcase_add_test(tc, refuses_plugins_others_can_write);
    tcase_add_test(tc, plugins_in_long_paths_load);
    tcase_add_test(tc, plugin_dir_searches_its_folders_in_order);
    tcase_add_test(tc, script_versions_are_bounded_too);
    suite_add_tcase(s, tc);
    return s;
}

MORPH_TEST_MAIN(suite)
