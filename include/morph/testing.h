/*
 * morph/testing.h -- unit-test a morph plugin in a few lines.
 *
 * Loads a plugin the way morphd does (same loader, same checks, same
 * output limits), creates it with options, and feeds it messages:
 *
 *     #include <check.h>
 *     #include <morph/testing.h>
 *
 *     START_TEST(rot13_rotates)
 *     {
 *         char err[512];
 *         const char *opts[] = {"shift=13", NULL};
 *         morph_test_t *t = morph_test_load(".", "rot", opts, err, sizeof err);
 *         ck_assert_msg(t != NULL, "%s", err);
 *         char *out = morph_test_transform(t, "Hello");
 *         ck_assert_str_eq(out, "Uryyb");
 *         free(out);
 *         morph_test_free(t);
 *     }
 *     END_TEST
 *
 * Link with -lmorph-testing (pkg-config morph-testing, or the CMake target
 * morph::testing). Not for use inside plugins: it is the host's side.
 */
#ifndef MORPH_TESTING_H
#define MORPH_TESTING_H

#include <stddef.h>
#include <stdint.h>

#include <morph/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library exports these and nothing else. */
#if defined(__GNUC__) || defined(__clang__)
#define MORPH_TEST_API __attribute__((visibility("default")))
#else
#define MORPH_TEST_API
#endif

typedef struct morph_test morph_test_t;

/* Loads `<dir>/<name>.so` or, for a Lua script, `<dir>/<name>.lua` (dir:
 * folders separated by spaces, searched in order, as morphd's
 * plugin_dir), checks it as morphd would, and creates one instance with
 * `options`, a NULL-terminated list of "KEY=VALUE" strings (or NULL). One
 * connection is open from the start. Returns NULL with the reason (naming
 * the plugin and file; for a script, its FILE:LINE) in err. */
MORPH_TEST_API morph_test_t *morph_test_load(const char *dir, const char *name,
                              const char *const *options, char *err,
                              size_t err_size);

/* Feeds one message with MORPH_MSG_* flags (0 for a whole message). On
 * success returns 0 and points *out at the output, valid until the next
 * call. When the plugin fails the message returns -1; morph_test_error()
 * then gives the reason; 2 when it is pending on the test's clock
 * (morph_test_use_clock). A plugin that answers later (morph_out_defer) or
 * blocks (MORPH_PLUGIN_BLOCKING) is waited for, on a loop of the helper's
 * own, for up to 30 s. */
MORPH_TEST_API int morph_test_feed(morph_test_t *t, const void *in, size_t len,
                    uint32_t flags, const unsigned char **out,
                    size_t *out_len);

/* Transforms a whole message given as a C string; returns the output as a
 * new NUL-terminated string (free it), or NULL when the plugin failed. */
MORPH_TEST_API char *morph_test_transform(morph_test_t *t, const char *in);

/* The reason the last message failed; "" when it did not. */
MORPH_TEST_API const char *morph_test_error(const morph_test_t *t);

/* The MORPH_REPLY_* flags the plugin set for the last message (e.g.
 * MORPH_REPLY_NONE: no reply; MORPH_REPLY_CLOSE). */
MORPH_TEST_API uint32_t morph_test_reply(const morph_test_t *t);

/* Ends the current connection (conn_close) and opens a new one. */
MORPH_TEST_API int morph_test_reconnect(morph_test_t *t);

/* The value of the counter `name` the plugin registered
 * (morph_host_t.counter) into *value; returns 0, or -1 when it registered
 * none of that name. */
MORPH_TEST_API int morph_test_counter(const morph_test_t *t, const char *name,
                                      uint64_t *value);

/* From now on the plugin's timers (morph_host_t.timer_start) follow a
 * clock that only morph_test_advance() moves, starting at 0, and a message
 * the plugin defers is not waited for: morph_test_feed() returns 2 for it
 * (pending) and morph_test_transform() NULL. */
MORPH_TEST_API void morph_test_use_clock(morph_test_t *t);

/* Moves the test's clock on by `ms`, firing in order the plugin's timers
 * that fall due. Returns 0 with the pending message's output in *out
 * (valid until the next call) once it ended, -1 when it failed
 * (morph_test_error() says why), or 2 while it is still pending. */
MORPH_TEST_API int morph_test_advance(morph_test_t *t, uint64_t ms,
                                      const unsigned char **out,
                                      size_t *out_len);

/* Ends the current connection and opens a new one from a client the
 * plugin sees as `transport` ("tcp", "udp", "tls" or "unix") at `address`
 * (numeric IPv4 or IPv6; no traffic is sent) and `port`: what
 * conn_info() and conn_open2() are told. Returns 0, or -1 when the address
 * is not one or the plugin refused the connection (morph_test_error()
 * says which). */
MORPH_TEST_API int morph_test_peer(morph_test_t *t, const char *transport,
                                   const char *address, uint16_t port);

/* Feeds a message and, if the plugin defers it (morph_out_defer), lets
 * the client leave before the answer, as morphd does when a connection
 * closes: the plugin's cancel() runs, then conn_close(), and a fresh
 * connection opens. Returns 0 when the message was pending and was
 * cancelled, 1 when it was answered or failed at once, -1 on an error. */
MORPH_TEST_API int morph_test_leave_during(morph_test_t *t, const void *in,
                                           size_t len);

/* Closes the connection and destroys the instance. */
MORPH_TEST_API void morph_test_free(morph_test_t *t);

#ifdef __cplusplus
}
#endif

#endif /* MORPH_TESTING_H */
