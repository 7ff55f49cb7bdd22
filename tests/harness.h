/*
 * harness.h -- helpers shared by the tests: running a chain of real
 * plugins in-process, starting morphd on ephemeral ports with a config
 * text, and talking to it over loopback sockets with timeouts.
 */
#ifndef MORPH_TEST_HARNESS_H
#define MORPH_TEST_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "engine/chain.h"
#include "conf/config.h"
#include "base/errors.h"
#include "daemon/server.h"

/* Runs a Check suite; the exit status is the number of failures. */
#define MORPH_TEST_MAIN(make_suite)                                            \
    int main(void)                                                             \
    {                                                                          \
        SRunner *sr = srunner_create(make_suite());                            \
        srunner_run_all(sr, CK_NORMAL);                                        \
        int failed = srunner_ntests_failed(sr);                                \
        srunner_free(sr);                                                      \
        return failed == 0 ? 0 : 1;                                            \
    }

/* --- in-process chains ---------------------------------------------------- */

/* A chain built from INI text with one service (named t): its plugins are
 * loaded from PLUGIN_DIR. */
typedef struct test_chain {
    morphd_server_t server; /* owns config, plugins, chain */
    morphd_chain_t *chain;
    void *states[8];
    bool open;
    morphd_conn_t conn;
    morphd_buf_t out;
} test_chain_t;

/* Builds the chain `transform` with extra service lines (e.g. options).
 * Fails the test with the errors when it cannot. */
void test_chain_init(test_chain_t *tc, const char *transform,
                     const char *extra_lines);
/* Like test_chain_init but returns the first error text instead (or NULL
 * on success, then the chain must be freed). Caller frees the string. */
char *test_chain_try(test_chain_t *tc, const char *ini_text);
/* Applies the chain to one message; returns a malloc'd NUL-terminated copy
 * of the output, its length in *len. */
char *test_chain_run(test_chain_t *tc, const void *in, size_t n,
                     uint32_t flags, size_t *len);
/* Runs one message and returns how it ended (MORPHD_RUN_*), with the
 * failure's reason in err. */
int test_chain_status(test_chain_t *tc, const void *in, size_t n,
                      uint32_t flags, char *err, size_t err_size);
/* Shorthand for whole C-string messages. */
char *test_chain_str(test_chain_t *tc, const char *in);
void test_chain_free(test_chain_t *tc);

/* --- a morphd process ------------------------------------------------------ */

/* morphd is run as systemd runs it: with $NOTIFY_SOCKET, a datagram socket
 * of the harness's own, on which morphd says READY=1 with the endpoints it
 * bound (core/daemon/notify.h). Readiness, ports and reload outcomes come
 * from there, not from the log. */
typedef struct morphd_proc {
    pid_t pid;
    char dir[64];      /* temp folder with morphd.ini and morphd.log */
    char ini[96];
    char logfile[96];
    char notify_path[96];
    int notify_fd;     /* the harness's end of $NOTIFY_SOCKET */
    int exit_status;   /* after morphd_proc_stop/wait */
    int ready, reloads_ok, reloads_failed; /* READY=1 messages so far */
    char listening[8192]; /* X_MORPHD_LISTENING of the last READY=1 */
    char notes[16384]; /* the messages so far, each ending in "\n\n" (the
                          oldest go when it is full) */
    size_t notes_len;
} morphd_proc_t;

/* Writes `ini_text` to a temp file and starts morphd on it; waits until it
 * says READY=1 (returns 0) or exits (returns -1; the log says why). */
int morphd_proc_start(morphd_proc_t *p, const char *ini_text);
/* Same, with extra command-line arguments (NULL-terminated list). When
 * the tests run as root, morphd is given --set morphd.allow_root=yes unless
 * the first argument is "--as-is" (which is not passed on). */
int morphd_proc_start_args(morphd_proc_t *p, const char *ini_text,
                           const char *const *args);
/* Starts morphd on `services` (INI text) with [morphd] plugin_dir =
 * `plugin_dir`, an admin socket (its path, unique to this process, written
 * to admin[admin_size]) and `morphd_lines` (more [morphd] keys, or ""); the
 * test fails with morphd's log when it does not start. */
void morphd_proc_serve(morphd_proc_t *p, const char *plugin_dir,
                       const char *morphd_lines, const char *services,
                       char *admin, size_t admin_size);
/* morphd_proc_port that fails the test when the port is not there. */
int morphd_proc_need_port(morphd_proc_t *p, const char *service,
                          const char *proto, bool v6);
/* Stops morphd, expecting exit status 0, and cleans its folder. */
void morphd_proc_finish(morphd_proc_t *p);

/* The port morphd bound for `service` on `proto` ("tcp"/"udp"/"tls"), v6
 * or not; -1 when not found. From its last READY=1. */
int morphd_proc_port(morphd_proc_t *p, const char *service, const char *proto,
                     bool v6);
/* Replaces morphd's config file with `ini_text` (atomically, by rename). */
void morphd_proc_rewrite(morphd_proc_t *p, const char *ini_text);
/* Sends SIGHUP and waits for the outcome (READY=1 with X_MORPHD_RELOAD): 0
 * when the reload succeeded, -1 when morphd reported it failed (or nothing
 * happened within 10 s; 60 s under MORPH_TEST_WRAPPER). */
int morphd_proc_reload(morphd_proc_t *p);
/* How many of morphd's notifications so far hold `needle` ("READY=1",
 * "STOPPING=1"); waits up to timeout_ms for at least `at_least` of them. */
int morphd_proc_notified(morphd_proc_t *p, const char *needle, int at_least,
                         long timeout_ms);
/* How many times `needle` occurs in the log so far. */
int morphd_proc_log_count(morphd_proc_t *p, const char *needle);
/* Sends SIGTERM and waits (up to 10 s; 30 s under MORPH_TEST_WRAPPER);
 * returns the exit status or -1. */
int morphd_proc_stop(morphd_proc_t *p);
/* The whole log so far (malloc'd). */
char *morphd_proc_log(morphd_proc_t *p);
/* Resident set size in KiB, from /proc/PID/status. */
long morphd_proc_rss_kib(morphd_proc_t *p);
/* Cleans the temp folder. */
void morphd_proc_cleanup(morphd_proc_t *p);

/* Runs morphd with args to completion; returns its exit status and its
 * combined stdout+stderr (malloc'd) in *output. */
int run_morphd(const char *const *args, char **output);

/* Runs argv (argv[0] a path) with `input` on standard input; returns the
 * exit status, stdout in *out (length *out_len) and stderr in *err (both
 * malloc'd, NUL-terminated). */
int run_program(const char *const *argv, const void *input, size_t in_len,
                char **out, size_t *out_len, char **err);

/* For morphd runs without a log to read ports from: a TCP port on
 * 127.0.0.1 that is free right now. */
int free_loopback_port(void);
/* Starts `morphd -c ini_path` with its stderr on stderr_fd and waits (up to
 * 5 s) until 127.0.0.1:port accepts; the test fails if it never does. */
pid_t spawn_morphd_on(const char *ini_path, int stderr_fd, int port);
/* SIGTERM, then its exit status (-1 when it died of a signal). */
int stop_morphd_pid(pid_t pid);

/* A counter of `service`, read with `morph stats --json -s admin_path`. */
long long morph_stat(const char *admin_path, const char *service,
                     const char *counter);

/* morph_stat, read again (every 50 ms, 5 s at most) until it is `want`;
 * the last value read: a counter that has not moved along in time, or
 * has gone past `want`, fails the caller's assertion. */
long long morph_stat_wait(const char *admin_path, const char *service,
                          const char *counter, long long want);

/* A field of plugin `plugin`'s metrics in `service` ("calls", "failures",
 * "time_us", or a counter of its own), from `morph stats --json`; -1 when
 * the plugin or field is not there. */
long long morph_plugin_stat(const char *admin_path, const char *service,
                            const char *plugin, const char *field);

/* The whole of a text file (malloc'd); "" when it cannot be read. */
char *read_file(const char *path);

/* Writes text to a new temp file; returns its path (malloc'd). */
char *write_temp_file(const char *text);

/* --- sockets --------------------------------------------------------------- */

int tcp_connect(int port, bool v6);
/* Closes with a reset (SO_LINGER 0): the client is gone, not done. */
void close_reset(int fd);
/* Sends all bytes. Returns 0 or -1. */
int send_all(int fd, const void *buf, size_t n);
/* What a shell command printed on its standard output (NUL-terminated,
 * up to 8 KiB, a static buffer: the next call's), asserting that it
 * exited 0. */
char *shell_output(const char *cmd);
/* Receives exactly n bytes within timeout_ms (six times that under
 * MORPH_TEST_WRAPPER, where morphd runs under valgrind). Returns bytes
 * received. */
size_t recv_exact(int fd, void *buf, size_t n, int timeout_ms);
/* Receives until the peer closes or timeout; returns bytes received. */
size_t recv_until_close(int fd, void *buf, size_t cap, int timeout_ms);
/* Receives one line into buf (cap bytes with the NUL) and returns it
 * without its newline; NULL when the connection ended, the time ran out
 * or the line did not fit first. */
char *recv_line(int fd, char *buf, size_t cap, int timeout_ms);
/* Sends `line` and a newline, and returns the reply line without its
 * newline (in a static buffer of 256 bytes, overwritten by the next call),
 * or NULL when the connection ended or the time ran out instead. */
const char *ask_line(int fd, const char *line, int timeout_ms);
/* A TCP connection from loopback address `src` (any of 127/8) to
 * 127.0.0.1:port. */
int tcp_connect_from(const char *src, int port);
/* A UDP socket connected to loopback:port, with a receive timeout. */
int udp_connect(int port, bool v6, int timeout_ms);
/* One UDP request and its reply. Returns reply length or -1 on timeout. */
ssize_t udp_roundtrip(int port, bool v6, const void *msg, size_t n,
                      void *reply, size_t cap, int timeout_ms);

#endif
