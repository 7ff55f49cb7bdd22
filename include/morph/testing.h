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
 * the plugin and file; for a script, its FILE:LINE) in err.
 *
 * `name` NULL loads no transform: each message is answered with itself,
 * to test a codec plugin with morph_test_framing() and morph_test_wire()
 * (`options` is then ignored). */
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

/* --- framing: a transform under a framing, and codec plugins ---------------- */

/* From now on morph_test_wire() cuts a connection's bytes into messages
 * as a service with `framing = FRAMING` does, and frames each reply the
 * same way. FRAMING is line, stream, length, netstring, delimiter, or the
 * name of a codec plugin (a .so or .lua in the test's dir, loaded and
 * checked as morphd does). `settings`, NULL-terminated or NULL, are
 * "KEY=VALUE" strings: for a built-in framing, the service's keys
 * length_field, length_offset, length_adjust and delimiter, with the
 * values the INI file takes ("u16le", "-4", "\r\n"); for a codec plugin,
 * its options. max_message=SIZE (default 64K) is for either. The plugins
 * are created again and a fresh connection opens. Returns 0, or -1 with
 * the reason in morph_test_error() (then the test is as it was). */
MORPH_TEST_API int morph_test_framing(morph_test_t *t, const char *framing,
                                      const char *const *settings);

/* morph_test_wire() flags: feed the bytes in one piece only. */
#define MORPH_TEST_ONE_PIECE 1u

/* One connection that sends `len` bytes and then shuts down its write
 * side, served under the framing (line without morph_test_framing()) as
 * morphd serves it. *out (valid until the next call) gets what morphd
 * would send back, in order: each reply in its frame, what a failed
 * message gets in the protocol (resp: -ERR; the built-ins: nothing), a
 * codec's answers of its own. Returns
 *   0  when all of it was served;
 *   1  when morphd would close the connection before the end (a frame too
 *      long or malformed, a codec that closes): *out has what was sent
 *      before, morph_test_error() says why;
 *   2  when the answers depend on how the bytes were split (below):
 *      morph_test_error() names the split and the difference;
 *  -1  on an error of the helper (out of memory, a connection refused).
 * A message the plugin fails is not an error here: morph_test_error()
 * gives the first one's reason ("message 2: ...").
 *
 * Unless `flags` has MORPH_TEST_ONE_PIECE, the same bytes are then fed
 * again, each time on a fresh connection, split in two at every position
 * and one byte at a time, as TCP may deliver them; any other answer, end
 * or message makes it return 2 (with framing = stream, whose messages are
 * the reads themselves, only the answer and the end count). (A plugin whose answers depend on more
 * than the connection's bytes, such as an instance's counter, wants
 * MORPH_TEST_ONE_PIECE.) */
MORPH_TEST_API int morph_test_wire(morph_test_t *t, const void *in, size_t len,
                                   uint32_t flags, const unsigned char **out,
                                   size_t *out_len);

/* The messages the transform was given in the last morph_test_wire() (fed
 * in one piece), in order: how many, and the i-th (from 0) with its length
 * in *len, or NULL past the last. Valid until the next call. */
MORPH_TEST_API size_t morph_test_messages(const morph_test_t *t);
MORPH_TEST_API const unsigned char *morph_test_message(const morph_test_t *t,
                                                       size_t i, size_t *len);

/* Closes the connection and destroys the instance. */
MORPH_TEST_API void morph_test_free(morph_test_t *t);

#ifdef __cplusplus
}
#endif

#endif /* MORPH_TESTING_H */
