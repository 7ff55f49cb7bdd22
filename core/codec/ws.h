/*
 * ws.h -- WebSocket (RFC 6455) on http:// and https:// endpoints. http.c
 * answers a GET with Upgrade: websocket (morphd_ws_handshake checks it
 * and makes the 101's Sec-WebSocket-Accept), and the connection then
 * switches to the codec here: each text or binary message, whole or in
 * fragments, is one message, and its reply goes back as one message of
 * the same type. Pings are answered with pongs, a close with a close; a
 * frame that breaks the protocol is answered with the close code RFC
 * 6455 gives it (1002, 1007, 1009), and the connection ends.
 *
 * Messages are unmasked into the worker's scratch (a whole one) or into
 * the connection's own buffer (the fragments of one), never in place: a
 * codec reads its input, it does not write it.
 */
#ifndef MORPHD_WS_H
#define MORPHD_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "codec/codec.h"

/* The close codes morphd sends (RFC 6455 7.4.1). */
#define MORPHD_WS_NORMAL 1000
#define MORPHD_WS_GOING_AWAY 1001     /* shutdown, idle_timeout */
#define MORPHD_WS_PROTOCOL_ERROR 1002 /* a frame against the protocol */
#define MORPHD_WS_INVALID_DATA 1007   /* a text message not UTF-8 */
#define MORPHD_WS_TOO_BIG 1009        /* a message over max_message */
#define MORPHD_WS_INTERNAL_ERROR 1011 /* a message the plugins failed */

/* A connection's state between frames: the fragments of a message so
 * far. The decoder's state (morphd_decoder_t.state) of a connection that
 * switched to morphd_codec_ws. */
typedef struct morphd_ws_conn morphd_ws_conn_t;
morphd_ws_conn_t *morphd_ws_conn_new(void);
void morphd_ws_conn_free(morphd_ws_conn_t *w);

/* The codec after the handshake; a codec's state is a morphd_ws_conn_t. */
extern const morphd_codec_ops_t morphd_codec_ws;

/* Sets up `c` for WebSocket messages up to max_message, whole ones
 * unmasked into `scratch` (the owner's). */
void morphd_codec_ws_init(morphd_codec_t *c, size_t max_message,
                          morphd_buf_t *scratch);

/* The frames of replies: a text or a binary message. */
extern const morphd_frame_shape_t morphd_ws_shape_text, morphd_ws_shape_binary;

/* morphd_frame_end for them past its fast path (a reply over 125 bytes,
 * or one after which the plugin closes: a close frame follows). Returns
 * 0, -1, or MORPHD_FRAME_CLOSE. */
int morphd_ws_frame_end(const morphd_frame_t *f, morphd_buf_t *out,
                        size_t mark, size_t body_len, uint32_t reply);
/* The bytes of a frame's header for a payload of body_len bytes. */
size_t morphd_ws_overhead(size_t body_len);

/* A close frame with `code` (and no reason) appended to out: 0 or -1. */
int morphd_ws_close_frame(morphd_buf_t *out, unsigned code);

/* What a handshake asks for: its Sec-WebSocket-Key, checked. Fills
 * accept (28 characters and a NUL) with the Sec-WebSocket-Accept that
 * answers it; false when the key is not the base64 of 16 bytes. */
#define MORPHD_WS_ACCEPT_SIZE 29
bool morphd_ws_accept(const unsigned char *key, size_t key_len,
                      char accept[MORPHD_WS_ACCEPT_SIZE]);

/* Whether p[0, n) is UTF-8 as RFC 3629 has it: no overlong forms, no
 * surrogates, nothing past U+10FFFF. */
bool morphd_utf8_valid(const unsigned char *p, size_t n);

#endif
