/* Plugins written as Lua scripts (NAME.lua): the contract of docs/lua.md,
 * through `morph pipe`, `morphd -t` and a served morphd -- exact bytes,
 * errors with the script's FILE:LINE, the budget and the memory cap, the
 * sandbox, per-connection and per-worker state, options, the plugin
 * search path, and reload. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_MS 5000

static morphd_proc_t proc;

/* --- scripts in a folder of their own ----------------------------------- */

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/morph-lua-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    chmod(dir, 0755); /* the loader refuses folders others can write */
}

/* Writes DIR/NAME.lua (by rename, as a deployment would). */
static void put_script(const char *name, const char *source)
{
    char path[160], tmp[170];
    snprintf(path, sizeof path, "%s/%s.lua", dir, name);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(source, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, path), 0);
}

/* Copies an example script from examples/lua. */
static void put_example(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/examples/lua/%s.lua", SOURCE_DIR, name);
    char *text = read_file(path);
    ck_assert_msg(text[0] != '\0', "%s: missing or empty", path);
    put_script(name, text);
    free(text);
}

/* What the last command run here printed (its standard output, of
 * out_len bytes, and its standard error; for morphd -t, both in out),
 * kept until the next command or the end of the test. */
static char *out, *err;
static size_t out_len;

static void forget_output(void)
{
    free(out);
    free(err);
    out = err = NULL;
    out_len = 0;
}

static void teardown(void)
{
    forget_output();
    if (proc.pid > 0)
        morphd_proc_stop(&proc);
    if (proc.dir[0])
        morphd_proc_cleanup(&proc);
    memset(&proc, 0, sizeof proc);
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
        dir[0] = '\0';
    }
}

/* `morph pipe -d DIRS [args] CHAIN` on `input`; the exit status. */
static int pipe_run(const char *dirs, const char *const *args, const void *in,
                    size_t in_len)
{
    const char *argv[16] = {MORPH_BIN, "pipe", "-d", dirs};
    int n = 4;
    for (; *args; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    forget_output();
    return run_program(argv, in, in_len, &out, &out_len, &err);
}

static const char identity[] =
    "return {\n"
    "    chunk_safe = true,\n"
    "    transform = function(message) return message end,\n"
    "}\n";

/* --- bytes ---------------------------------------------------------------- */

/* The message is a Lua string holding the exact bytes: NUL, invalid UTF-8
 * and every other byte come back as they went. */
START_TEST(messages_are_the_exact_bytes)
{
    make_dir();
    put_script("same", identity);
    unsigned char in[4096];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 131 + (i >> 7));
    const char *args[] = {"--stream", "same", NULL};
    ck_assert_int_eq(pipe_run(dir, args, in, sizeof in), 0);
    ck_assert_uint_eq(out_len, sizeof in);
    ck_assert(memcmp(out, in, sizeof in) == 0);

    put_script("up", "return { transform = function(m) return m:upper() end }\n");
    const char *up[] = {"up", NULL};
    const char line[] = "caf\xc3\xa9 \0 \xff x\n";
    ck_assert_int_eq(pipe_run(dir, up, line, sizeof line - 1),
                     0);
    ck_assert_uint_eq(out_len, sizeof line - 1);
    ck_assert(memcmp(out, "CAF\xc3\xa9 \0 \xff X\n", out_len) == 0);
}
END_TEST

/* Scripts and .so plugins chain in any order. */
START_TEST(scripts_and_shared_objects_chain)
{
    make_dir();
    put_script("tag", "return { transform = function(m) return '<' .. m .. '>' end }\n");
    char dirs[256];
    snprintf(dirs, sizeof dirs, "%s %s", dir, PLUGIN_DIR);
    const char *args[] = {"uppercase,tag,reverse", NULL};
    ck_assert_int_eq(pipe_run(dirs, args, "abc\n", 4), 0);
    ck_assert_str_eq(out, ">CBA<\n");
}
END_TEST

/* --- errors ----------------------------------------------------------------- */

/* What `morphd -t` says about the INI file naming `plugin` in `dir`. */
static int check_config(const char *plugin)
{
    char ini[512];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\nallow_root = yes\n"
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = %s\n"
             "framing = line\n", dir, plugin);
    char *path = write_temp_file(ini);
    const char *args[] = {"-t", "-c", path, NULL};
    forget_output();
    int rc = run_morphd(args, &out);
    unlink(path);
    free(path);
    return rc;
}

/* The message's first line for the script starts with its FILE:LINE. */
static void expect_script_error(const char *output, const char *script,
                                int line, const char *text)
{
    char want[256];
    snprintf(want, sizeof want, "%s/%s.lua:%d: ", dir, script, line);
    const char *at = strstr(output, want);
    ck_assert_msg(at != NULL && (at == output || at[-1] == '\n' ||
                                 at[-1] == ' '),
                  "no line starting %s in:\n%s", want, output);
    ck_assert_msg(strstr(at, text), "no '%s' in:\n%s", text, output);
}

/* A syntax error, a script without transform, and one that returns no
 * table are configuration errors, each starting with the script's
 * FILE:LINE; so is a runtime error while the script runs. */
START_TEST(script_errors_are_config_errors_at_file_line)
{
    make_dir();
    put_script("syntax", "return {\n  transform = function(m) return m end\n"
                         "  oops = 1,\n}\n");
    ck_assert_int_eq(check_config("syntax"), 78);
    expect_script_error(out, "syntax", 3, "'}' expected");
    ck_assert_msg(strstr(out, "(plugin 'syntax' of service 's', "), "%s", out);

    put_script("notransform", "local t = {}\n\nreturn { transfrom = t }\n");
    ck_assert_int_eq(check_config("notransform"), 78);
    expect_script_error(out, "notransform", 3, "has no transform function");

    put_script("number", "return 42\n");
    ck_assert_int_eq(check_config("number"), 78);
    expect_script_error(out, "number", 1, "the script returned number");

    put_script("throws", "local x = nil\nlocal y = x.field\nreturn {}\n");
    ck_assert_int_eq(check_config("throws"), 78);
    expect_script_error(out, "throws", 2, "attempt to index a nil value");

    put_script("bytecode", "\x1bLua\x54");
    ck_assert_int_eq(check_config("bytecode"), 78);
    ck_assert_msg(strstr(out, "attempt to load a binary chunk"), "%s", out);

    put_script("forever", "while true do end\nreturn {}\n");
    ck_assert_int_eq(check_config("forever"), 78);
    expect_script_error(out, "forever", 1, "over its budget of 10000000 "
                                           "instructions (forever.budget)");
}
END_TEST

/* A runtime error fails that message only: it is reported with the
 * script's FILE:LINE and the text, and the next lines are served;
 * `return nil, "reason"` fails a message the same way. */
START_TEST(runtime_errors_fail_only_that_message)
{
    make_dir();
    put_script("picky",
               "return { transform = function(m)\n"
               "    if m == 'boom' then error('no booms here') end\n"
               "    if m == 'no' then return nil, 'refused: ' .. m end\n"
               "    if m == 'num' then return 42 end\n"
               "    return m\n"
               "end }\n");
    const char *args[] = {"picky", NULL};
    const char in[] = "a\nboom\nb\nno\nnum\nc\n";
    ck_assert_int_eq(pipe_run(dir, args, in, sizeof in - 1), 1);
    ck_assert_str_eq(out, "a\nb\nc\n");
    char want[160];
    snprintf(want, sizeof want, "line 2: plugin picky: %s/picky.lua:2: no "
             "booms here", dir);
    ck_assert_msg(strstr(err, want), "%s", err);
    ck_assert_msg(strstr(err, "line 4: plugin picky: refused: no"), "%s", err);
    ck_assert_msg(strstr(err, "line 5: plugin picky: transform returned "
                              "number, not a string"), "%s", err);
}
END_TEST

/* Lua cuts a long path short in its messages ("...the end of it"); the
 * bridge puts the whole path back, so that every message still starts
 * with the script's FILE:LINE. */
START_TEST(long_paths_keep_file_line)
{
    make_dir();
    char deep[200];
    snprintf(deep, sizeof deep, "%s/a-folder-name-long-enough-to-pass-"
             "what-lua-keeps-of-a-chunk-name", dir);
    ck_assert_int_eq(mkdir(deep, 0755), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/deep.lua", deep);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("return { transform = function(m)\n  error('from deep') end }\n", f);
    fclose(f);
    const char *args[] = {"deep", NULL};
    ck_assert_int_eq(pipe_run(deep, args, "x\n", 2), 1);
    char want[400];
    snprintf(want, sizeof want, "line 1: plugin deep: %s:2: from deep", path);
    ck_assert_msg(strstr(err, want), "%s", err);
}
END_TEST

/* --- the budget and the memory cap --------------------------------------------- */

static const char spinner[] =
    "return { transform = function(m)\n"
    "    if m == 'loop' then while true do end end\n"
    "    if m == 'sneaky' then\n"
    "        while true do pcall(function() while true do end end) end\n"
    "    end\n"
    "    if m == 'hog' then\n"
    "        local t = {}\n"
    "        for i = 1, 1e9 do t[i] = string.rep('x', 100) .. i end\n"
    "    end\n"
    "    if m == 'rep' then return string.rep('x', 1 << 40) end\n"
    "    return m:upper()\n"
    "end }\n";

/* An endless loop (even one that catches the budget's error with pcall)
 * fails its message when the budget runs out, and so does a script over
 * its memory cap; each following message is served. */
START_TEST(budget_and_memory_cap_fail_the_message_not_the_process)
{
    make_dir();
    put_script("spin", spinner);
    const char *args[] = {"-o", "spin.budget=200000", "-o", "spin.memory=2M",
                          "spin", NULL};
    const char in[] = "loop\na\nsneaky\nb\nhog\nc\nrep\nd\n";
    ck_assert_int_eq(pipe_run(dir, args, in, sizeof in - 1), 1);
    ck_assert_str_eq(out, "A\nB\nC\nD\n");
    char want[160];
    snprintf(want, sizeof want, "line 1: plugin spin: %s/spin.lua:2: over its "
             "budget of 200000 instructions (spin.budget)", dir);
    ck_assert_msg(strstr(err, want), "%s", err);
    snprintf(want, sizeof want, "line 3: plugin spin: %s/spin.lua:4: over its "
             "budget", dir);
    ck_assert_msg(strstr(err, want), "%s", err);
    ck_assert_msg(strstr(err, "line 5: plugin spin: ") &&
                      strstr(err, "out of memory: over spin.memory (2097152 "
                                  "bytes)"), "%s", err);
    ck_assert_msg(strstr(err, "line 7: plugin spin: "), "%s", err);
}
END_TEST

/* In morphd, a client whose message loops costs that message only: with
 * one worker another client is served once the budget is spent, and the
 * looping client's connection goes on. */
START_TEST(a_looping_message_leaves_the_worker_serving)
{
    make_dir();
    put_script("spin", spinner);
    char services[512], admin[108];
    /* (a budget below the default: under valgrind, 10,000,000
     * instructions take seconds) */
    snprintf(services, sizeof services,
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = spin\n"
             "framing = line\nspin.budget = 1000000\n");
    char morphd_lines[160];
    snprintf(morphd_lines, sizeof morphd_lines, "workers = 1\n");
    morphd_proc_serve(&proc, dir, morphd_lines, services, admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    int looper = tcp_connect(port, false);
    int other = tcp_connect(port, false);
    ck_assert_int_eq(send_all(looper, "loop\n", 5), 0);
    ck_assert_int_eq(send_all(other, "hi\n", 3), 0);
    char buf[16] = "";
    ck_assert_uint_eq(recv_exact(other, buf, 3, TIMEOUT_MS), 3);
    ck_assert_str_eq(buf, "HI\n");
    ck_assert_int_eq(send_all(looper, "after\n", 6), 0);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_exact(looper, buf, 6, TIMEOUT_MS), 6);
    ck_assert_str_eq(buf, "AFTER\n");
    ck_assert_int_ge(morphd_proc_log_count(&proc, "over its budget of 1000000 "
                                                  "instructions"), 1);
    close(looper);
    close(other);
    morphd_proc_finish(&proc);
}
END_TEST

/* Issue 21: work the instruction budget did not count -- a backtracking
 * pattern inside one string.find (5 s on a worker, then the watchdog
 * aborted morphd), and a quadratic concatenation -- fails that message
 * now: matching counts its steps, and what one call may allocate is
 * bounded. plugin_timeout = 2s: were either not bounded, the watchdog
 * would abort morphd before the other client's answer. */
START_TEST(uncounted_work_fails_the_message_not_the_process)
{
    make_dir();
    put_script("work",
               "return { transform = function(m)\n"
               "  if m == 'bomb' then\n"
               "    return tostring(string.find(string.rep('a', 22),\n"
               "                                ('a-'):rep(12) .. 'b'))\n"
               "  end\n"
               "  if m == 'concat' then\n"
               "    local s, piece = '', ('x'):rep(1000)\n"
               "    for i = 1, 20000 do s = s .. piece end\n"
               "    return #s .. ''\n"
               "  end\n"
               "  local k, v = m:match('^(%w+)=(%w+)')\n"
               "  return (k and (v .. '=' .. k)) or m:upper()\n"
               "end }\n");
    char services[512], admin[108];
    snprintf(services, sizeof services,
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = work\n"
             "framing = line\nwork.budget = 1000000\n");
    morphd_proc_serve(&proc, dir, "workers = 1\nplugin_timeout = 2s\n",
                      services, admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    const char *attacks[] = {"bomb\n", "concat\n"};
    for (int i = 0; i < 2; i++) {
        int bad = tcp_connect(port, false);
        int other = tcp_connect(port, false);
        ck_assert_int_eq(send_all(bad, attacks[i], strlen(attacks[i])), 0);
        ck_assert_int_eq(send_all(other, "hi\n", 3), 0);
        char buf[16] = "";
        ck_assert_msg(recv_exact(other, buf, 3, TIMEOUT_MS) == 3,
                      "no answer to the other client after %s:\n%s",
                      attacks[i], morphd_proc_log(&proc));
        ck_assert_str_eq(buf, "HI\n");
        /* the attacker's connection is served on, patterns included */
        ck_assert_int_eq(send_all(bad, "a=b\n", 4), 0);
        memset(buf, 0, sizeof buf);
        ck_assert_uint_eq(recv_exact(bad, buf, 4, TIMEOUT_MS), 4);
        ck_assert_str_eq(buf, "b=a\n");
        close(bad);
        close(other);
    }
    ck_assert_int_eq(morphd_proc_log_count(&proc, "pattern matching over its "
                                                  "budget of 1000000 steps"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "allocated more than "
                                                  "64000000 bytes in one call"), 1);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "watchdog"), 0);
    morphd_proc_finish(&proc);
}
END_TEST

/* Issue 21, Lua parity: a script can say "no reply", "close after this
 * reply" and "send an empty datagram", as C plugins can. */
START_TEST(scripts_say_how_to_reply)
{
    make_dir();
    put_script("how",
               "return { transform = function(m)\n"
               "  if m == 'none' then return morph.no_reply end\n"
               "  if m == 'bye' then return 'bye', { close = true } end\n"
               "  if m == 'empty' then return '', { empty_datagram = true } end\n"
               "  if m == 'bad' then return 'x', { clsoe = true } end\n"
               "  return m:upper()\n"
               "end }\n");
    char services[512], admin[108];
    snprintf(services, sizeof services,
             "[service s]\nlisten = tcp://127.0.0.1:0 udp://127.0.0.1:0\n"
             "transform = how\nframing = line\n");
    morphd_proc_serve(&proc, dir, "", services, admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    int fd = tcp_connect(port, false);
    /* no reply, not even the line ending; then a failed one; then served */
    ck_assert_int_eq(send_all(fd, "none\nbad\nok\n", 12), 0);
    char buf[32] = "";
    ck_assert_ptr_nonnull(recv_line(fd, buf, sizeof buf, TIMEOUT_MS));
    ck_assert_str_eq(buf, "OK"); /* (recv_line drops the newline) */
    ck_assert_int_eq(send_all(fd, "bye\nafter\n", 10), 0);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 4);
    ck_assert_str_eq(buf, "bye\n"); /* and closed: "after" is not answered */
    close(fd);
    int udp = morphd_proc_need_port(&proc, "s", "udp", false);
    ck_assert_int_eq(udp_roundtrip(udp, false, "empty", 5, buf, sizeof buf,
                                   TIMEOUT_MS), 0); /* a datagram of 0 bytes */
    ck_assert_int_eq(udp_roundtrip(udp, false, "none", 4, buf, sizeof buf, 300), -1);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "transform returned a reply "
                                                  "option 'clsoe'; the options "
                                                  "are close and empty_datagram"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* Issue 21: open() sees its connection (conn_open2): a script refuses a
 * client by its address. */
START_TEST(open_sees_the_peer)
{
    make_dir();
    put_script("gate",
               "return {\n"
               "  open = function(conn) return morph.peer() ~= '127.0.0.2' end,\n"
               "  transform = function(m) return (morph.peer()) end,\n"
               "}\n");
    char services[512], admin[108];
    snprintf(services, sizeof services,
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = gate\n"
             "framing = line\n");
    morphd_proc_serve(&proc, dir, "", services, admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    int fd = tcp_connect(port, false);
    char buf[64];
    ck_assert_int_eq(send_all(fd, "x\n", 2), 0);
    ck_assert_ptr_nonnull(recv_line(fd, buf, sizeof buf, TIMEOUT_MS));
    ck_assert_str_eq(buf, "127.0.0.1");
    close(fd);
    fd = tcp_connect_from("127.0.0.2", port);
    send_all(fd, "x\n", 2);
    ck_assert_uint_eq(recv_until_close(fd, buf, sizeof buf, TIMEOUT_MS), 0);
    close(fd);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "open() returned false"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* Issue 21, Lua parity: options get bounds and choices as C's declared
 * options do -- { default, min = N, max = N } and { default, one_of =
 * {...} } -- checked by the same code, with the same messages. */
START_TEST(script_options_have_bounds_and_choices)
{
    make_dir();
    put_script("opt",
               "return {\n"
               "  options = { level = { 3, min = 1, max = 9 },\n"
               "              mode = { 'fast', one_of = { 'fast', 'safe' } } },\n"
               "  transform = function(m, c, o) return o.level .. o.mode end,\n"
               "}\n");
    const char *plain[] = {"opt", NULL};
    ck_assert_int_eq(pipe_run(dir, plain, "x\n", 2), 0);
    ck_assert_str_eq(out, "3fast\n");
    const char *ok[] = {"-o", "opt.level=9", "-o", "opt.mode=safe", "opt", NULL};
    ck_assert_int_eq(pipe_run(dir, ok, "x\n", 2), 0);
    ck_assert_str_eq(out, "9safe\n");
    const char *high[] = {"-o", "opt.level=12", "opt", NULL};
    ck_assert_int_ne(pipe_run(dir, high, "x\n", 2), 0);
    ck_assert_msg(strstr(err, "opt.level: 12 is out of range 1..9"), "%s", err);
    const char *other[] = {"-o", "opt.mode=slow", "opt", NULL};
    ck_assert_int_ne(pipe_run(dir, other, "x\n", 2), 0);
    ck_assert_msg(strstr(err, "opt.mode: 'slow' is not one of fast|safe"), "%s", err);
    /* a declaration that contradicts itself is the script's error */
    put_script("badopt", "return { options = { n = { 12, min = 1, max = 9 } },\n"
                         "  transform = function(m) return m end }\n");
    const char *bad[] = {"badopt", NULL};
    ck_assert_int_ne(pipe_run(dir, bad, "x\n", 2), 0);
    ck_assert_msg(strstr(err, "badopt.lua:") &&
                      strstr(err, "'n': its default 12 is not within min and max"),
                  "%s", err);
}
END_TEST

/* Scripts written to break the bridge: a returned table whose metatable
 * loops (read raw, it has no transform), a script that fills its memory
 * to the cap so that the next message cannot even be handed to it, and
 * errors that are not strings. Each is an error message, never a crash. */
START_TEST(hostile_scripts_never_crash_the_process)
{
    make_dir();
    put_script("meta", "return setmetatable({}, { __index = function(t, k)\n"
                       "    while true do end end })\n");
    const char *meta[] = {"meta", NULL};
    ck_assert_int_eq(pipe_run(dir, meta, "x\n", 2), 78);
    ck_assert_msg(strstr(err, "has no transform function"), "%s", err);

    put_script("fill", "local hoard = {}\n"
                       "return { transform = function(m)\n"
                       "  if m == 'fill' then\n"
                       "    pcall(function() while true do\n"
                       "      hoard[#hoard + 1] = ('x'):rep(1000) .. #hoard\n"
                       "    end end)\n"
                       "    return 'full'\n"
                       "  end\n"
                       "  if m == 'table' then error({}) end\n"
                       "  return m\n"
                       "end }\n");
    static char in[8192];
    size_t n = (size_t)snprintf(in, sizeof in, "fill\n");
    memset(in + n, 'y', 4000);
    n += 4000;
    n += (size_t)snprintf(in + n, sizeof in - n, "\nsmall\n");
    const char *fill[] = {"-o", "fill.memory=1M", "fill", NULL};
    ck_assert_int_eq(pipe_run(dir, fill, in, n), 1);
    ck_assert_str_eq(out, "full\nsmall\n");
    ck_assert_msg(strstr(err, "line 2: plugin fill: ") &&
                      strstr(err, "out of memory: over fill.memory"), "%s", err);

    /* a script file past MORPHD_SCRIPT_MAX_BYTES (4 MiB) is not read */
    char big[160];
    snprintf(big, sizeof big, "%s/big.lua", dir);
    FILE *f = fopen(big, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 4 * 1024; i++)
        fprintf(f, "%01023d\n", 0);
    fputs("return { transform = function(m) return m end }\n", f);
    fclose(f);
    const char *bigargs[] = {"big", NULL};
    ck_assert_int_eq(pipe_run(dir, bigargs, "x\n", 2), 78);
    ck_assert_msg(strstr(err, "big.lua:1: the script is ") &&
                      strstr(err, "scripts are 4194304 bytes at most"), "%s",
                  err);

    const char *plain[] = {"fill", NULL};
    ck_assert_int_eq(pipe_run(dir, plain, "table\nok\n", 9), 1);
    ck_assert_str_eq(out, "ok\n");
    ck_assert_msg(strstr(err, "the script raised an error that is table, not "
                              "a string"), "%s", err);
}
END_TEST

/* --- the sandbox ------------------------------------------------------------- */

/* A script sees string, table, math, utf8, os.time/os.clock and morph;
 * nothing that reaches files, programs, the network or bytecode. */
START_TEST(the_sandbox_holds)
{
    make_dir();
    put_script("probe",
               "return { transform = function(m)\n"
               "  local r = {}\n"
               "  for _, n in ipairs{'io', 'debug', 'package', 'require',\n"
               "      'dofile', 'loadfile', 'collectgarbage', 'coroutine'} do\n"
               "    r[#r + 1] = n .. '=' .. type(rawget(_G, n))\n"
               "  end\n"
               "  for _, n in ipairs{'execute', 'getenv', 'remove', 'rename',\n"
               "      'exit', 'tmpname', 'time', 'clock'} do\n"
               "    r[#r + 1] = 'os.' .. n .. '=' .. type(rawget(os, n))\n"
               "  end\n"
               "  r[#r + 1] = 'dump=' .. type(rawget(string, 'dump'))\n"
               /* issue 21: reading a removed name says the sandbox
                * removed it (not "attempt to index a nil value") */
               "  for _, f in ipairs{function() return io.open end,\n"
               "      function() return os.execute end,\n"
               "      function() return require end} do\n"
               "    local ok, e = pcall(f)\n"
               "    r[#r + 1] = tostring(ok) .. ':' .. e:gsub('^.-: ', '')\n"
               "  end\n"
               "  r[#r + 1] = 'undefined=' .. type(no_such_global)\n"
               "  r[#r + 1] = 'bytecode=' .. type(load('\\27Lua\\84\\0'))\n"
               "  r[#r + 1] = 'text=' .. load('return (\"x\"):rep(6 * 7 // 21)')()\n"
               "  r[#r + 1] = 'env=' .. load('return string.upper(\"a\")')()\n"
               "  r[#r + 1] = 'ownenv=' .. tostring(load('return string', "
               "'c', 't', {})())\n"
               "  r[#r + 1] = 'gc=' .. tostring((pcall(setmetatable, {},\n"
               "                                 {__gc = print})))\n"
               "  r[#r + 1] = 'utf8=' .. utf8.char(233)\n"
               "  r[#r + 1] = 'morph=' .. type(morph.log)\n"
               "  return table.concat(r, ' ')\n"
               "end }\n");
    const char *args[] = {"probe", NULL};
    ck_assert_int_eq(pipe_run(dir, args, "x\n", 2), 0);
    ck_assert_str_eq(out, "io=nil debug=nil package=nil require=nil "
                          "dofile=nil loadfile=nil collectgarbage=nil "
                          "coroutine=nil os.execute=nil os.getenv=nil "
                          "os.remove=nil os.rename=nil os.exit=nil "
                          "os.tmpname=nil os.time=function os.clock=function "
                          "dump=nil "
                          "false:io is not available to scripts: morph's "
                          "sandbox removes it (docs/lua.md, \"The sandbox\") "
                          "false:os.execute is not available to scripts: morph's "
                          "sandbox removes it (docs/lua.md, \"The sandbox\") "
                          "false:require is not available to scripts: morph's "
                          "sandbox removes it (docs/lua.md, \"The sandbox\") "
                          "undefined=nil "
                          "bytecode=nil text=xx env=A ownenv=nil "
                          "gc=false "
                          "utf8=\xc3\xa9 morph=function\n");
}
END_TEST

/* --- state -------------------------------------------------------------------- */

/* examples/lua/counter.lua in morphd: `conn` lives as long as the TCP
 * connection (a fresh one per datagram), a local of the script is shared
 * by the connections of a worker, and morph.count feeds `morph stats`;
 * morph.conn_info() and morph.peer() describe the connection. */
START_TEST(connection_tables_and_worker_state)
{
    make_dir();
    put_example("counter");
    put_script("whoami",
               "return { transform = function(m)\n"
               "  local i = morph.conn_info()\n"
               "  local a, p, t = morph.peer()\n"
               "  return table.concat({i.transport, i.service, i.worker,\n"
               "    i.peer_address, tostring(i.peer_port == p), t,\n"
               "    i.local_address, tostring(i.local_port > 0),\n"
               "    i.peer_pid}, ' ')\n"
               "end }\n");
    char admin[108];
    morphd_proc_serve(&proc, dir, "workers = 1\n",
                      "[service c]\nlisten = tcp://127.0.0.1:0 "
                      "udp://127.0.0.1:0\ntransform = counter\n"
                      "framing = line\n\n[service who]\n"
                      "listen = tcp://127.0.0.1:0\ntransform = whoami\n"
                      "framing = line\n",
                      admin, sizeof admin);
    int who = tcp_connect(morphd_proc_need_port(&proc, "who", "tcp", false),
                          false);
    char line[128];
    ck_assert_int_eq(send_all(who, "?\n", 2), 0);
    ck_assert_str_eq(recv_line(who, line, sizeof line, TIMEOUT_MS),
                     "tcp who 0 127.0.0.1 true tcp 127.0.0.1 true -1");
    close(who);
    int port = morphd_proc_need_port(&proc, "c", "tcp", false);
    int a = tcp_connect(port, false);
    int b = tcp_connect(port, false);
    char buf[64] = "";
    ck_assert_int_eq(send_all(a, "x\ny\n", 4), 0);
    ck_assert_uint_eq(recv_exact(a, buf, 10, TIMEOUT_MS), 10);
    ck_assert_str_eq(buf, "1: x\n2: y\n");
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(send_all(b, "z\n", 2), 0);
    ck_assert_uint_eq(recv_exact(b, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "1: z\n");
    int uport = morphd_proc_need_port(&proc, "c", "udp", false);
    for (int i = 0; i < 2; i++) {
        memset(buf, 0, sizeof buf);
        ck_assert_int_eq(udp_roundtrip(uport, false, "u", 1, buf, sizeof buf,
                                       TIMEOUT_MS), 4);
        ck_assert_str_eq(buf, "1: u");
    }
    ck_assert_int_eq(morph_plugin_stat(admin, "c", "counter", "lines"), 5);
    close(a);
    close(b);
    morphd_proc_finish(&proc);
}
END_TEST

/* Declared options: the defaults, the INI's NAME.KEY lines over them
 * (typed as the defaults are), and an undeclared key refused at its
 * file:line with a suggestion. */
START_TEST(options_are_declared_by_the_script)
{
    make_dir();
    put_script("opts",
               "return {\n"
               "  options = { prefix = '>', times = 1, loud = false, "
               "ratio = 0.5 },\n"
               "  transform = function(m, conn, o)\n"
               "    local s = o.prefix .. m:rep(o.times)\n"
               "    if o.loud then s = s:upper() end\n"
               "    return s .. ' ' .. math.type(o.times) .. ' ' .. o.ratio\n"
               "  end,\n"
               "}\n");
    const char *plain[] = {"opts", NULL};
    ck_assert_int_eq(pipe_run(dir, plain, "ab\n", 3), 0);
    ck_assert_str_eq(out, ">ab integer 0.5\n");
    const char *set[] = {"-o", "opts.times=3", "-o", "opts.loud=yes", "-o",
                         "opts.prefix=#", "opts", NULL};
    ck_assert_int_eq(pipe_run(dir, set, "ab\n", 3), 0);
    ck_assert_str_eq(out, "#ABABAB integer 0.5\n");

    const char *nan[] = {"-o", "opts.ratio=half", "opts", NULL};
    ck_assert_int_eq(pipe_run(dir, nan, "ab\n", 3), 78);
    ck_assert_msg(strstr(err, "opts.ratio: 'half' is not a number"), "%s", err);

    char ini[512];
    snprintf(ini, sizeof ini, "[morphd]\nplugin_dir = %s\nallow_root = yes\n"
             "[service s]\nlisten = tcp://127.0.0.1:0\ntransform = opts\n"
             "framing = line\nopts.tmes = 2\nopts.times = many\n", dir);
    char *path = write_temp_file(ini);
    const char *args[] = {"-t", "-c", path, NULL};
    forget_output();
    ck_assert_int_eq(run_morphd(args, &out), 78);
    ck_assert_msg(strstr(out, ":8: unknown option 'opts.tmes' of plugin "
                              "'opts'; did you mean 'opts.times'?"), "%s", out);
    ck_assert_msg(strstr(out, ":9: opts.times: 'many' is not an integer"),
                  "%s", out);
    unlink(path);
    free(path);
}
END_TEST

/* open(conn) returning false refuses the connection: it is closed
 * unanswered and logged, and the next one (open returns nothing: fine)
 * is served; close(conn) runs when a connection ends. */
START_TEST(open_can_refuse_a_connection)
{
    make_dir();
    put_script("gate",
               "local n = 0\n"
               "return {\n"
               "  open = function(conn) n = n + 1; conn.n = n\n"
               "    if n == 1 then return false end end,\n"
               "  close = function(conn) morph.log('info', 'closed ' .. conn.n) end,\n"
               "  transform = function(m, conn) return conn.n .. m end,\n"
               "}\n");
    char admin[108];
    morphd_proc_serve(&proc, dir, "workers = 1\n",
                      "[service g]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = gate\nframing = line\n", admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "g", "tcp", false);
    int first = tcp_connect(port, false);
    char buf[16] = "";
    send_all(first, "a\n", 2); /* may fail: the connection is refused */
    ck_assert_uint_eq(recv_until_close(first, buf, sizeof buf, TIMEOUT_MS), 0);
    close(first);
    int second = tcp_connect(port, false);
    ck_assert_int_eq(send_all(second, "b\n", 2), 0);
    ck_assert_str_eq(recv_line(second, buf, sizeof buf, TIMEOUT_MS), "2b");
    close(second);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "open() returned false: the "
                                                  "connection is refused"), 1);
    for (int i = 0; i < 100 && morphd_proc_log_count(&proc, "closed 2") == 0; i++)
        usleep(20 * 1000);
    ck_assert_int_eq(morphd_proc_log_count(&proc, "plugin gate: closed 2"), 1);
    morphd_proc_finish(&proc);
}
END_TEST

/* --- answering later -------------------------------------------------------- */

/* `return morph.defer(ms, fn)` answers later: other clients are served
 * meanwhile, the connection's next message waits its turn, fn's nil,
 * "reason" fails the message, a client that leaves first has its message
 * cancelled (nothing fires for it, nothing leaks: the valgrind run), and
 * SIGTERM waits for a message still waiting. */
START_TEST(morph_defer_answers_later)
{
    make_dir();
    put_script("slow",
               "return { transform = function(m)\n"
               "  if m == 'now' then return 'NOW' end\n"
               "  if m == 'no' then\n"
               "    return morph.defer(10, function() return nil, 'later: no' end)\n"
               "  end\n"
               "  return morph.defer(1000, function() return m:upper() end)\n"
               "end }\n");
    char admin[108];
    morphd_proc_serve(&proc, dir, "workers = 1\n",
                      "[service s]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = slow\nframing = line\n", admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    int waiting = tcp_connect(port, false);
    int other = tcp_connect(port, false);
    int leaver = tcp_connect(port, false);
    ck_assert_int_eq(send_all(waiting, "slow\nnow\n", 9), 0);
    ck_assert_int_eq(send_all(leaver, "gone\n", 5), 0);
    ck_assert_int_eq(send_all(other, "now\n", 4), 0);
    char buf[32] = "";
    ck_assert_uint_eq(recv_exact(other, buf, 4, TIMEOUT_MS), 4);
    ck_assert_str_eq(buf, "NOW\n");
    /* answered while `waiting` still waits: nothing of it has come yet */
    struct pollfd pw = {waiting, POLLIN, 0};
    ck_assert_int_eq(poll(&pw, 1, 0), 0);
    close_reset(leaver);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_exact(waiting, buf, 9, TIMEOUT_MS), 9);
    ck_assert_str_eq(buf, "SLOW\nNOW\n");
    ck_assert_int_eq(send_all(other, "no\nnow\n", 7), 0);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_exact(other, buf, 4, TIMEOUT_MS), 4);
    ck_assert_str_eq(buf, "NOW\n");
    ck_assert_int_ge(morphd_proc_log_count(&proc, "plugin slow: later: no"), 1);
    /* a message still waiting at SIGTERM is answered before morphd ends */
    ck_assert_int_eq(send_all(other, "last\n", 5), 0);
    close(waiting);
    morphd_proc_finish(&proc);
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(recv_until_close(other, buf, sizeof buf, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "LAST\n");
    close(other);
}
END_TEST

/* One HTTP/1.1 request with Connection: close; the whole response. */
static const char *http_once(int port, const char *head_fields, const char *body)
{
    static char buf[4096];
    int fd = tcp_connect(port, false);
    ck_assert_int_ge(fd, 0);
    char req[1024];
    snprintf(req, sizeof req, "POST /p/q?k=v HTTP/1.1\r\nHost: t\r\n%s"
             "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
             head_fields, strlen(body), body);
    ck_assert_int_eq(send_all(fd, req, strlen(req)), 0);
    size_t n = recv_until_close(fd, buf, sizeof buf - 1, TIMEOUT_MS);
    buf[n] = '\0';
    close(fd);
    return buf;
}

/* morph.request(), morph.status() and morph.add_header() over http://:
 * the request's line and fields (lower-case names, repeated ones joined),
 * the response shaped, also from a deferred function; a status without a
 * body is an error (500); over tcp:// there is no request. */
START_TEST(scripts_read_and_shape_http)
{
    make_dir();
    put_script("web",
               "return { transform = function(m)\n"
               "  local r = morph.request()\n"
               "  if r == nil then return 'no request' end\n"
               "  local s = r.headers['x-status']\n"
               "  if s then morph.status(tonumber(s)) end\n"
               "  morph.add_header('X-Path', r.path)\n"
               "  if r.headers['x-later'] then\n"
               "    return morph.defer(10, function()\n"
               "      morph.status(202)\n"
               "      return 'later ' .. morph.request().target\n"
               "    end)\n"
               "  end\n"
               "  return table.concat({r.method, r.target, r.path, r.query,\n"
               "    r.version, r.headers['x-a'] or '-', m}, ' ')\n"
               "end }\n");
    char admin[108];
    morphd_proc_serve(&proc, dir, "",
                      "[service s]\nlisten = http://127.0.0.1:0 "
                      "tcp://127.0.0.1:0\ntransform = web\nframing = line\n",
                      admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "http", false);
    const char *r = http_once(port, "X-A: 1\r\nx-a: 2\r\n", "body");
    ck_assert_msg(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", r);
    ck_assert_msg(strstr(r, "\r\nX-Path: /p/q\r\n") != NULL, "%s", r);
    ck_assert_msg(strstr(r, "\r\n\r\nPOST /p/q?k=v /p/q k=v 1.1 1, 2 body"),
                  "%s", r);
    r = http_once(port, "X-Status: 418\r\n", "x");
    ck_assert_msg(strncmp(r, "HTTP/1.1 418 ", 13) == 0, "%s", r);
    r = http_once(port, "X-Later: 1\r\n", "x");
    ck_assert_msg(strncmp(r, "HTTP/1.1 202 ", 13) == 0, "%s", r);
    ck_assert_msg(strstr(r, "\r\nX-Path: /p/q\r\n") != NULL, "%s", r);
    ck_assert_msg(strstr(r, "\r\n\r\nlater /p/q?k=v") != NULL, "%s", r);
    r = http_once(port, "X-Status: 204\r\n", "x");
    ck_assert_msg(strncmp(r, "HTTP/1.1 500 ", 13) == 0, "%s", r);
    ck_assert_int_ge(morphd_proc_log_count(&proc, "morph.status(204): a "
                                           "reply's status is 200..599"), 1);
    int fd = tcp_connect(morphd_proc_need_port(&proc, "s", "tcp", false), false);
    char line[64];
    ck_assert_int_eq(send_all(fd, "hi\n", 3), 0);
    ck_assert_ptr_nonnull(recv_line(fd, line, sizeof line, TIMEOUT_MS));
    ck_assert_str_eq(line, "no request");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

/* --- the search path ---------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    ck_assert_int_eq(system(cmd), 0);
}

/* NAME.lua is plugin NAME; between folders the first one listed wins,
 * whichever form it holds; both forms in one folder is an error. */
START_TEST(scripts_on_the_plugin_search_path)
{
    make_dir();
    put_script("reverse", "return { transform = function(m) return 'lua:' "
                          ".. m end }\n");
    char dirs[256];
    const char *args[] = {"reverse", NULL};
    snprintf(dirs, sizeof dirs, "%s %s", dir, PLUGIN_DIR);
    ck_assert_int_eq(pipe_run(dirs, args, "ab\n", 3), 0);
    ck_assert_str_eq(out, "lua:ab\n");
    snprintf(dirs, sizeof dirs, "%s %s", PLUGIN_DIR, dir);
    ck_assert_int_eq(pipe_run(dirs, args, "ab\n", 3), 0);
    ck_assert_str_eq(out, "ba\n");

    char so[160];
    snprintf(so, sizeof so, "%s/reverse.so", dir);
    copy_file(PLUGIN_DIR "/reverse.so", so);
    ck_assert_int_eq(pipe_run(dir, args, "ab\n", 3), 78);
    ck_assert_msg(strstr(err, "reverse.so and ") &&
                      strstr(err, "reverse.lua are both there"), "%s", err);
}
END_TEST

/* The loader's ownership and mode checks hold for scripts as for .so:
 * a script others can write is refused. */
START_TEST(a_script_others_can_write_is_refused)
{
    make_dir();
    put_script("open", identity);
    char path[160];
    snprintf(path, sizeof path, "%s/open.lua", dir);
    chmod(path, 0666);
    const char *args[] = {"open", NULL};
    ck_assert_int_eq(pipe_run(dir, args, "x\n", 2), 78);
    ck_assert_msg(strstr(err, "refusing to load") &&
                      strstr(err, "writable by everyone"), "%s", err);
}
END_TEST

/* `morph plugin info` shows what the script returned. */
START_TEST(plugin_info_shows_a_script)
{
    make_dir();
    put_example("redact");
    const char *argv[] = {MORPH_BIN, "plugin", "info", "-d", dir, "redact", NULL};
    forget_output();
    ck_assert_int_eq(run_program(argv, "", 0, &out, NULL, &err), 0);
    ck_assert_msg(strstr(out, "version      1.0") &&
                      strstr(out, "description  masks every digit") &&
                      strstr(out, "redact.mask ") && strstr(out, "default: #") &&
                      strstr(out, "the text each digit is replaced with") &&
                      strstr(out, "redact.budget ") &&
                      strstr(out, "redact.memory "), "%s", out);
}
END_TEST

/* --- the examples ------------------------------------------------------------ */

/* examples/lua/redact.lua masks each digit with its `mask` option, and
 * examples/lua/jsonl.lua wraps each line as a JSON object: control
 * characters, quotes and backslashes escaped, UTF-8 kept, an invalid byte
 * as U+FFFD. */
START_TEST(example_redactor_and_json_lines)
{
    make_dir();
    put_example("redact");
    put_example("jsonl");
    const char *redact[] = {"redact", NULL};
    const char card[] = "card 4111-1111, pin 0042\n";
    ck_assert_int_eq(pipe_run(dir, redact, card, sizeof card - 1), 0);
    ck_assert_str_eq(out, "card ####-####, pin ####\n");
    const char *stars[] = {"-o", "redact.mask=%*", "redact", NULL};
    ck_assert_int_eq(pipe_run(dir, stars, "a1b22\n", 6), 0);
    ck_assert_str_eq(out, "a%*b%*%*\n");

    const char *jsonl[] = {"jsonl", NULL};
    const char in[] = "say \"hi\" \\ \t\x01\x1f\x7f caf\xc3\xa9 \xe2\x82\xac "
                      "\xff\xc3 end\n";
    ck_assert_int_eq(pipe_run(dir, jsonl, in, sizeof in - 1),
                     0);
    ck_assert_str_eq(out, "{\"line\":\"say \\\"hi\\\" \\\\ \\t\\u0001\\u001f"
                          "\\u007f caf\xc3\xa9 \xe2\x82\xac \xef\xbf\xbd"
                          "\xef\xbf\xbd end\"}\n");
}
END_TEST

/* --- reload ------------------------------------------------------------------- */

/* SIGHUP reads a changed script: new connections get it, an open TCP
 * connection keeps the one it started with; a broken edit fails the
 * reload at the script's FILE:LINE and the last good script serves on. */
START_TEST(reload_reads_changed_scripts)
{
    make_dir();
    put_script("ver", "return { transform = function(m) return 'v1:' .. m end }\n");
    char admin[108];
    morphd_proc_serve(&proc, dir, "",
                      "[service s]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = ver\nframing = line\n", admin, sizeof admin);
    int port = morphd_proc_need_port(&proc, "s", "tcp", false);
    int old = tcp_connect(port, false);
    char buf[32] = "";
    ck_assert_int_eq(send_all(old, "a\n", 2), 0);
    ck_assert_uint_eq(recv_exact(old, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "v1:a\n");

    put_script("ver", "return { transform = function(m) return 'v2:' .. m end }\n");
    ck_assert_int_eq(morphd_proc_reload(&proc), 0);
    int fresh = tcp_connect(port, false);
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(send_all(fresh, "b\n", 2), 0);
    ck_assert_uint_eq(recv_exact(fresh, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "v2:b\n");
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(send_all(old, "c\n", 2), 0);
    ck_assert_uint_eq(recv_exact(old, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "v1:c\n");

    put_script("ver", "return {\n  transform = function(m) return 'v3:' .. m end\n"
                      "  broken\n}\n");
    ck_assert_int_eq(morphd_proc_reload(&proc), -1);
    char want[160];
    snprintf(want, sizeof want, "%s/ver.lua:3: '}' expected", dir);
    ck_assert_int_ge(morphd_proc_log_count(&proc, want), 1);
    int after = tcp_connect(port, false);
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(send_all(after, "d\n", 2), 0);
    ck_assert_uint_eq(recv_exact(after, buf, 5, TIMEOUT_MS), 5);
    ck_assert_str_eq(buf, "v2:d\n");
    close(old);
    close(fresh);
    close(after);
    morphd_proc_finish(&proc);
}
END_TEST

/* A reload that loads a changed script keeps the older version's
 * descriptor for the instances still serving, but frees its source: 60
 * reloads of a 1 MiB script grew morphd by 60 MiB before; now by what
 * the allocator keeps around (valgrind's quarantine is 20 MB). */
START_TEST(reloads_do_not_keep_old_sources)
{
    /* ASan keeps freed memory in quarantine (256 MB): without it, as
     * for any allocator, freed sources are reused (no effect elsewhere) */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    make_dir();
    static char text[(1 << 20) + 256];
    memset(text, 'x', 1 << 20);
    memcpy(text, "-- ", 3);
    put_script("big", "return { transform = function(m) return 'v0:' .. m end }\n");
    char admin[108];
    morphd_proc_serve(&proc, dir, "",
                      "[service s]\nlisten = tcp://127.0.0.1:0\n"
                      "transform = big\nframing = line\n", admin, sizeof admin);
    long before = 0;
    for (int v = 1; v <= 60; v++) {
        snprintf(text + (1 << 20), 256, "\nreturn { transform = function(m) "
                 "return 'v%d:' .. m end }\n", v);
        put_script("big", text);
        ck_assert_msg(morphd_proc_reload(&proc) == 0, "reload %d failed:\n%s",
                      v, morphd_proc_log(&proc));
        if (v == 5) /* the allocator has settled */
            before = morphd_proc_rss_kib(&proc);
    }
    long after = morphd_proc_rss_kib(&proc);
    ck_assert_msg(after - before < 40 * 1024, "RSS %ld -> %ld KiB over 55 "
                  "reloads of a 1 MiB script", before, after);
    int fd = tcp_connect(morphd_proc_need_port(&proc, "s", "tcp", false), false);
    char line[32];
    ck_assert_int_eq(send_all(fd, "x\n", 2), 0);
    ck_assert_str_eq(recv_line(fd, line, sizeof line, TIMEOUT_MS), "v60:x");
    close(fd);
    morphd_proc_finish(&proc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lua");
    TCase *tc = tcase_create("scripts");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, messages_are_the_exact_bytes);
    tcase_add_test(tc, scripts_and_shared_objects_chain);
    tcase_add_test(tc, script_errors_are_config_errors_at_file_line);
    tcase_add_test(tc, runtime_errors_fail_only_that_message);
    tcase_add_test(tc, long_paths_keep_file_line);
    tcase_add_test(tc, budget_and_memory_cap_fail_the_message_not_the_process);
    tcase_add_test(tc, a_looping_message_leaves_the_worker_serving);
    tcase_add_test(tc, hostile_scripts_never_crash_the_process);
    tcase_add_test(tc, uncounted_work_fails_the_message_not_the_process);
    tcase_add_test(tc, scripts_say_how_to_reply);
    tcase_add_test(tc, script_options_have_bounds_and_choices);
    tcase_add_test(tc, open_sees_the_peer);
    tcase_add_test(tc, the_sandbox_holds);
    tcase_add_test(tc, connection_tables_and_worker_state);
    tcase_add_test(tc, options_are_declared_by_the_script);
    tcase_add_test(tc, open_can_refuse_a_connection);
    tcase_add_test(tc, morph_defer_answers_later);
    tcase_add_test(tc, scripts_read_and_shape_http);
    tcase_add_test(tc, scripts_on_the_plugin_search_path);
    tcase_add_test(tc, a_script_others_can_write_is_refused);
    tcase_add_test(tc, plugin_info_shows_a_script);
    tcase_add_test(tc, example_redactor_and_json_lines);
    tcase_add_test(tc, reload_reads_changed_scripts);
    tcase_add_test(tc, reloads_do_not_keep_old_sources);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
