/*
 * standalone_wire.h -- one connection's bytes through a framing and a
 * standalone chain, as morphd serves a stream connection: the codec cuts
 * messages, the chain runs each, each reply goes out in its frame, a
 * failed message gets what the codec says for one (resp: -ERR), and a
 * codec plugin's own answers and closes are kept in order. `morph pipe`
 * prints what it gathers and morph_test_wire() returns it: both show what
 * morphd would send.
 *
 * Errors: 0, or -1 when out of memory; what the input or a plugin did
 * wrong is in the wire's fields (refused, reason) and told to `failed`.
 */
#ifndef MORPHD_STANDALONE_WIRE_H
#define MORPHD_STANDALONE_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/codec.h"
#include "engine/standalone.h"

typedef struct morphd_wire {
    morphd_standalone_t *s;
    morphd_codec_t codec;     /* bound to s's codec plugin, if it has one */
    morphd_decoder_t decoder;
    morphd_buf_t out;         /* what morphd would send, in order */
    unsigned long messages;   /* run so far, from 1 */
    bool ended;               /* input refused or closed: feed no more */
    int refused;              /* MORPHD_DECODER_TOO_LONG / _INVALID, or 0 */
    bool closed_by_codec;     /* a codec plugin's answer that closes */
    /* Told of each message before it runs (may be NULL). */
    void (*message)(void *ctx, const unsigned char *msg, size_t len);
    /* Told when message n failed, or its reply could not be framed, and
     * why (may be NULL): the connection goes on, as in morphd. */
    void (*failed)(void *ctx, unsigned long n, const char *why);
    void *ctx;
} morphd_wire_t;

/* Starts a connection on `s` (opened with morphd_standalone_open_framed)
 * under `codec` (morphd_codec_init'ed; for a codec plugin, its ops),
 * which is copied. */
void morphd_wire_init(morphd_wire_t *w, morphd_standalone_t *s,
                      const morphd_codec_t *codec);

/* The client's next bytes. Returns 0 (w->ended says whether the
 * connection is over) or -1. */
int morphd_wire_feed(morphd_wire_t *w, const void *data, size_t len);

/* The client shut down its write side: a last message without its ending
 * (line, delimiter), a chain's trailer (MORPH_MSG_END). Returns 0 or -1. */
int morphd_wire_finish(morphd_wire_t *w);

/* A fresh connection on the same chain: the plugins' connection states
 * and the decoder start again; w->out is emptied. Returns 0, or -1 with
 * the reason in err. */
int morphd_wire_reconnect(morphd_wire_t *w, char *err, size_t err_size);

void morphd_wire_free(morphd_wire_t *w);

#endif
