/*
 * standalone.h -- a transform chain outside the daemon: plugins loaded by
 * name from one folder, options given as "PLUGIN.KEY=VALUE" strings, one
 * connection's worth of state, and a loop of its own so that plugins that
 * answer later or block work as they do in morphd. `morph pipe` and the
 * plugin authors' test helper (<morph/testing.h>) are built on it.
 */
#ifndef MORPHD_STANDALONE_H
#define MORPHD_STANDALONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "engine/chain.h"
#include "engine/plugin_loader.h"
#include "base/spec.h"
#include "engine/stats.h"

typedef struct morphd_standalone {
    morphd_plugin_t *plugins; /* n of them, in chain order */
    size_t n;
    morphd_plugin_opts_t opts;
    morphd_stats_t *stats; /* its own registry: metrics and counters */
    uv_loop_t loop;
    bool loop_open;
    morphd_chain_env_t env;
    morphd_chain_t *chain;
    void **states;
    bool open;
    morphd_conn_t conn;
    morphd_buf_t out; /* the last message's output */
    /* the last message while it is in flight */
    morphd_job_t *job;
    bool ended;
    morphd_result_t result;
    unsigned timeout_ms; /* how long apply() waits for a later answer */
    /* the peer plugins see (morphd_standalone_peer): transport and address */
    morphd_conn_ops_t ops;
    char transport[16];
    struct sockaddr_storage peer;
    /* a codec plugin (morphd_standalone_open_framed): the file, its state
     * for the one connection, and the scratch of its codec */
    morphd_plugin_t codec;
    bool has_codec, codec_open;
    void *codec_state;
    morphd_buf_t codec_scratch;
} morphd_standalone_t;

/* Loads `names` (in order) from `dir` and creates each with the options
 * meant for it ("PLUGIN.KEY=VALUE"). `max_message` bounds outputs as in a
 * service. Returns 0, or -1 with a message naming the plugin in err (and
 * nothing left to close). */
int morphd_standalone_open(morphd_standalone_t *s, const char *dir,
                           const char *const *names, size_t n,
                           const char *const *options, size_t n_options,
                           size_t max_message, char *err, size_t err_size);

/* The same, with the codec plugin `codec` (framing = NAME) created beside
 * the chain and opened for the connection; morphd_standalone_codec binds
 * a codec to it. */
int morphd_standalone_open_framed(morphd_standalone_t *s, const char *dir,
                                  const char *const *names, size_t n,
                                  const char *codec,
                                  const char *const *options, size_t n_options,
                                  size_t max_message, char *err,
                                  size_t err_size);

/* Sets up `c` for the codec plugin of morphd_standalone_open_framed:
 * morphd_codec_init(c, &morphd_codec_plugin, max_message, ...) first. The
 * connection's codec state is s->codec_state (a decoder's `state`). */
void morphd_standalone_codec(morphd_standalone_t *s, morphd_codec_t *c);

/* Runs one message, waiting (up to timeout_ms, 30 s by default) when a
 * plugin answers later. Returns 0 with *out valid until the next call;
 * 1 when a plugin asked for no reply (*out_len is 0); or -1 with the
 * reason in err. *reply gets the MORPH_REPLY_* flags (may be NULL). With
 * the clock of morphd_standalone_use_clock, a message a plugin defers is
 * not waited for: 2, and morphd_standalone_advance ends it. */
int morphd_standalone_apply(morphd_standalone_t *s, const void *in,
                            size_t len, uint32_t flags,
                            const unsigned char **out, size_t *out_len,
                            uint32_t *reply, char *err, size_t err_size);

/* Ends the current connection's state and starts a fresh one. */
int morphd_standalone_reconnect(morphd_standalone_t *s, char *err,
                                size_t err_size);

/* From the next connection on (it starts one), plugins see the client as
 * `transport` ("tcp", "udp", "tls", "unix") at `address` (numeric IPv4 or
 * IPv6) and `port`. Returns 0, or -1 with the reason. */
int morphd_standalone_peer(morphd_standalone_t *s, const char *transport,
                           const char *address, uint16_t port, char *err,
                           size_t err_size);

/* Runs one message and, if a plugin defers it, lets the client leave
 * before the answer, as morphd does when a connection closes: the job is
 * abandoned (the plugin's cancel()), the connection's states closed and a
 * fresh connection opened. Returns 0 when the message was pending and was
 * cancelled, 1 when it was answered (or failed) at once, -1 on an error. */
int morphd_standalone_leave_during(morphd_standalone_t *s, const void *in,
                                   size_t len, char *err, size_t err_size);

/* From now on the plugins' timers follow a clock that only
 * morphd_standalone_advance moves, from 0 (the test helper's). */
void morphd_standalone_use_clock(morphd_standalone_t *s);

/* Moves that clock on by `ms`, firing the timers that fall due. When the
 * pending message ended, returns what apply() would have for it (0, 1 or
 * -1); else 2. */
int morphd_standalone_advance(morphd_standalone_t *s, uint64_t ms,
                              const unsigned char **out, size_t *out_len,
                              uint32_t *reply, char *err, size_t err_size);

/* The value of counter `name` a plugin of the chain registered
 * (morph_host_t.counter); -1 when there is none. */
int morphd_standalone_counter(const morphd_standalone_t *s, const char *name,
                              uint64_t *value);

/* Gives up the message in flight, if any (its plugin's cancel() runs),
 * as morphd does when its client leaves. */
void morphd_standalone_abandon(morphd_standalone_t *s);

void morphd_standalone_close(morphd_standalone_t *s);

#endif
