/*
 * codec.h -- framing as one interface: a codec finds messages in a
 * connection's bytes and says how each reply is framed. The built-in
 * codecs are here (stream, line, length, netstring, delimiter); the
 * transports know no framing, they feed bytes to morphd_decoder_feed and
 * frame replies with morphd_frame_begin/end.
 *
 * The layer sits on base/ only: a codec is pure computation on bytes, so
 * its unit tests and fuzz targets need no loop, socket or plugin.
 *
 * Errors in this layer (codec/): decoding returns a MORPHD_DECODE_* status
 * (a malformed or oversized frame is a status with its reason in the
 * decoder's `error`, not a failure of the call); the other functions
 * return 0, or -1 when out of memory.
 */
#ifndef MORPHD_CODEC_H
#define MORPHD_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "morph/plugin.h"

/* --- how a reply is framed ---------------------------------------------------- */

/* The length field of a frame (framing = length: length_field), or the
 * decimal "N:" of a netstring. */
typedef enum morphd_length_kind {
    MORPHD_LEN_NONE,
    MORPHD_LEN_U8,
    MORPHD_LEN_U16BE,
    MORPHD_LEN_U16LE,
    MORPHD_LEN_U24BE,
    MORPHD_LEN_U32BE,
    MORPHD_LEN_U32LE,
    MORPHD_LEN_U64BE,
    MORPHD_LEN_U64LE,
    MORPHD_LEN_VARINT,  /* protobuf's unsigned base-128, 1..10 bytes */
    MORPHD_LEN_DECIMAL, /* a netstring's "N:" */
    MORPHD_LEN_WS_TEXT,   /* a WebSocket text message's frame (ws.c) */
    MORPHD_LEN_WS_BINARY, /* a binary one's */
    MORPHD_LEN_PLUGIN,  /* a codec plugin frames its replies itself */
    MORPHD_LEN_HTTP,    /* an HTTP/1.1 response (http.c) */
    MORPHD_LEN_HTTP_CHUNK, /* a piece of one, chunked (framing = stream) */
} morphd_length_kind_t;

/* Header bytes before a length field (length_offset), and the bytes after
 * a reply (a delimiter), at most: */
#define MORPHD_FRAME_HEAD_MAX 64
/* The request's bytes a reply's frame refers to (its head), at most: a
 * message in flight keeps a copy (length_offset's header; http's
 * Content-Type, echoed in the response). */
#define MORPHD_FRAME_KEEP_MAX 256
#define MORPHD_FRAME_TAIL_MAX 16

/* What every reply of a codec gets around it: a length before it (the
 * reply's length minus `adjust`) and `tail` after it. One per codec
 * (a line codec has one per line ending). */
typedef struct morphd_codec morphd_codec_t;
/* http's request and response as plugins see them (codec/http.h) */
typedef struct morphd_http_exchange morphd_http_exchange_t;

typedef struct morphd_frame_shape {
    morphd_length_kind_t length;
    const morphd_codec_t *codec; /* MORPHD_LEN_PLUGIN: whose encode() */
    uint8_t field_size;  /* a fixed-size field's bytes (0: none or variable) */
    uint64_t field_max;  /* the largest value the field holds */
    int64_t adjust;
    uint8_t tail_len;
    unsigned char tail[MORPHD_FRAME_TAIL_MAX];
} morphd_frame_shape_t;

/* How one message's reply is framed: its codec's shape, and the request's
 * own header bytes, copied before the length (length_offset). NULL shape:
 * the reply goes out as it is (stream, datagrams). `guess`: the bytes a
 * varint or decimal length took in the request, room that
 * morphd_frame_begin keeps for the reply's, so that a reply of a like
 * length is not moved to make room for it. */
typedef struct morphd_frame {
    const morphd_frame_shape_t *shape;
    const unsigned char *head; /* http: the request's Content-Type */
    size_t head_len;
    size_t guess; /* a codec plugin's: decode()'s tag; http: MORPHD_HTTP_* */
    void *state;  /* a codec plugin's: the connection's state; http: the
                     request's exchange (codec/http.h) */
} morphd_frame_t;

/* An HTTP response's frame (guess): the connection closes after it. */
#define MORPHD_HTTP_CLOSE 1u
/* The http codec's MORE (morphd_decoder_t.scanned): set once a request's
 * head is whole and its body is awaited; else the bytes of a head seen
 * without its blank line (0: read it from the start). */
#define MORPHD_HTTP_IN_BODY ((size_t)1 << (sizeof(size_t) * 8 - 1))

/* morphd_frame_end_reply: the reply went out, and the connection is to
 * close after it (an HTTP response that says Connection: close). */
#define MORPHD_FRAME_CLOSE 2

/* The frame of a reply sent as it is. */
extern const morphd_frame_t morphd_frame_none;

int morphd_frame_begin_header(const morphd_frame_t *f, morphd_buf_t *out);

/* Writes v into a fixed-size length field at p (big- or little-endian as
 * `kind` says; the hosts are little-endian, frame.c checks). */
static inline void morphd_frame_put_fixed(unsigned char *p,
                                          morphd_length_kind_t kind, uint64_t v)
{
    uint32_t x32;
    uint64_t x64;
    switch (kind) {
    case MORPHD_LEN_U8: p[0] = (unsigned char)v; break;
    case MORPHD_LEN_U16BE: p[0] = (unsigned char)(v >> 8); p[1] = (unsigned char)v; break;
    case MORPHD_LEN_U16LE: p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); break;
    case MORPHD_LEN_U24BE:
        p[0] = (unsigned char)(v >> 16);
        p[1] = (unsigned char)(v >> 8);
        p[2] = (unsigned char)v;
        break;
    case MORPHD_LEN_U32BE: x32 = __builtin_bswap32((uint32_t)v); __builtin_memcpy(p, &x32, 4); break;
    case MORPHD_LEN_U32LE: x32 = (uint32_t)v; __builtin_memcpy(p, &x32, 4); break;
    case MORPHD_LEN_U64BE: x64 = __builtin_bswap64(v); __builtin_memcpy(p, &x64, 8); break;
    case MORPHD_LEN_U64LE: __builtin_memcpy(p, &v, 8); break;
    /* a WebSocket frame's 2-byte header: FIN, the opcode, a length of
     * up to 125 (ws.c writes the longer ones) */
    case MORPHD_LEN_WS_TEXT: p[0] = 0x81; p[1] = (unsigned char)v; break;
    case MORPHD_LEN_WS_BINARY: p[0] = 0x82; p[1] = (unsigned char)v; break;
    default: break;
    }
}
int morphd_frame_end_header(const morphd_frame_t *f, morphd_buf_t *out,
                            size_t mark, size_t body_len, uint32_t reply);

/* The size of a netstring's "N:" (N < 10^19: a reply is at most 1 GiB). */
static inline size_t morphd_decimal_size(uint64_t v)
{
    size_t n = 2;
    for (uint64_t p = 10; v >= p && n < 20; p *= 10)
        n++;
    return n;
}

/* Whether v's "N:" takes `size` bytes (2..20: a netstring decode()'s
 * guess, at most 19 digits and the ':'), by two compares against tables
 * rather than morphd_decimal_size's loop: a netstring's reply, on every
 * message. */
static inline bool morphd_decimal_fits(uint64_t v, size_t size)
{
    static const uint64_t lo[21] = {
        [2] = 0, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
        10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
        100000000000ull, 1000000000000ull, 10000000000000ull,
        100000000000000ull, 1000000000000000ull, 10000000000000000ull,
        100000000000000000ull, 1000000000000000000ull,
    };
    static const uint64_t hi[21] = {
        [2] = 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
        10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
        100000000000ull, 1000000000000ull, 10000000000000ull,
        100000000000000ull, 1000000000000000ull, 10000000000000000ull,
        100000000000000000ull, 1000000000000000000ull,
        10000000000000000000ull,
    };
    return v >= lo[size] && v < hi[size];
}

/* "N:" in its `size` bytes at p, two digits at a time. */
static inline void morphd_put_decimal(unsigned char *p, uint64_t v, size_t size)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233"
        "34353637383940414243444546474849505152535455565758596061626364656667"
        "6869707172737475767778798081828384858687888990919293949596979899";
    size_t i = size - 1;
    p[i] = ':';
    while (v >= 100) {
        unsigned k = (unsigned)(v % 100) * 2;
        v /= 100;
        p[--i] = (unsigned char)pairs[k + 1];
        p[--i] = (unsigned char)pairs[k];
    }
    if (v >= 10) {
        p[--i] = (unsigned char)pairs[v * 2 + 1];
        p[--i] = (unsigned char)pairs[v * 2];
    } else {
        p[--i] = (unsigned char)('0' + v);
    }
}

/* Starts a reply at the end of `out`: appends the header bytes that do not
 * depend on the reply's length and room for its length field. *mark is
 * where the reply's frame starts. Returns 0 or -1. (Inline: a line's
 * reply, on every message, has no header.) */
static inline int morphd_frame_begin(const morphd_frame_t *f, morphd_buf_t *out,
                                     size_t *mark)
{
    const morphd_frame_shape_t *s = f->shape;
    *mark = out->len;
    if (s == NULL)
        return 0;
    if (f->head_len == 0) {
        if (s->length == MORPHD_LEN_NONE || s->length >= MORPHD_LEN_PLUGIN)
            return 0; /* a plugin's encode() (http.c) writes the frame */
        /* room for the field (a varint or decimal: for one as long as
         * the request's); morphd_frame_end fills it */
        size_t room = (size_t)s->field_size + f->guess;
        if (room > 0 && out->len + room <= out->cap) {
            out->len += room;
            return 0;
        }
    }
    return morphd_frame_begin_header(f, out);
}

/* Ends it: the `body_len` bytes appended after morphd_frame_begin are the
 * reply; writes its length field and appends the tail. Returns 0, -1 when
 * out of memory, 1 when the length cannot be written (a reply over 255
 * bytes for a u8 field; shorter than adjust): the frame is taken out of
 * `out` again (morphd_frame_explain says why), or MORPHD_FRAME_CLOSE.
 * `reply`: the chain's MORPH_REPLY_* flags (an HTTP response says
 * Connection: close when the plugin closes). */
static inline int morphd_frame_end_reply(const morphd_frame_t *f,
                                         morphd_buf_t *out, size_t mark,
                                         size_t body_len, uint32_t reply)
{
    const morphd_frame_shape_t *s = f->shape;
    if (s == NULL)
        return 0;
    if (s->length == MORPHD_LEN_NONE && s->tail_len <= 1) {
        if (s->tail_len == 0)
            return 0;
        if (out->len < out->cap) { /* a line's "\n" */
            out->data[out->len++] = s->tail[0];
            return 0;
        }
    } else if (s->length == MORPHD_LEN_DECIMAL) {
        /* a netstring's reply as long as its request, in digits: into the
         * room morphd_frame_begin kept */
        if (f->head_len == 0 && out->len < out->cap &&
            morphd_decimal_fits(body_len, f->guess)) {
            morphd_put_decimal(out->data + mark, body_len, f->guess);
            out->data[out->len++] = s->tail[0]; /* ',' */
            return 0;
        }
    } else if (s->field_size > 0 && s->tail_len == 0 && s->adjust == 0 &&
               body_len <= s->field_max && !(reply & MORPH_REPLY_CLOSE)) {
        /* a length field that fits (a WebSocket reply after which the
         * plugin closes has a close frame after it: not here) */
        morphd_frame_put_fixed(out->data + mark + f->head_len, s->length,
                               body_len);
        return 0;
    }
    return morphd_frame_end_header(f, out, mark, body_len, reply);
}

/* The same for a reply whose MORPH_REPLY_* flags do not matter to its
 * frame: every framing but http's. */
static inline int morphd_frame_end(const morphd_frame_t *f, morphd_buf_t *out,
                                   size_t mark, size_t body_len)
{
    return morphd_frame_end_reply(f, out, mark, body_len, 0);
}

/* Why morphd_frame_end returned 1 for a reply of body_len bytes. */
void morphd_frame_explain(const morphd_frame_t *f, size_t body_len, char *why,
                          size_t why_size);

/* Takes a started reply out of `out` again (failed, or no reply). */
static inline void morphd_frame_cancel(morphd_buf_t *out, size_t mark)
{
    out->len = mark;
}

/* The bytes morphd_frame_end adds to a body of `body_len` bytes, in all. */
size_t morphd_frame_overhead(const morphd_frame_t *f, size_t body_len);

/* A failed message (no reply): a codec plugin may say so in its protocol
 * (morph_codec_t.encode with MORPH_ENCODE_FAILED), http with a 500,
 * appended to `out`. Returns 0, -1 (out of memory), or MORPHD_FRAME_CLOSE
 * (an HTTP response after which the connection closes). */
int morphd_frame_failed(const morphd_frame_t *f, morphd_buf_t *out);

/* A message the plugins answered with no reply (MORPH_REPLY_NONE): http
 * still answers, 204; the other framings send nothing. Returns as
 * morphd_frame_failed. */
int morphd_frame_unanswered(const morphd_frame_t *f, morphd_buf_t *out,
                            uint32_t reply);

/* --- the codecs --------------------------------------------------------------- */

/* What decode found at the start of the bytes it was given. */
typedef enum morphd_decode_status {
    MORPHD_DECODE_MESSAGE,  /* a message (d->msg, d->len); d->used bytes */
    MORPHD_DECODE_SKIP,     /* d->used bytes that hold no message */
    MORPHD_DECODE_MORE,     /* no whole frame yet; d->scanned: how many of
                               the bytes need not be looked at again */
    MORPHD_DECODE_TOO_LONG, /* a message over max_message: d->announced is
                               its announced length (0: not announced),
                               d->reason says what ("... longer than
                               max_message") */
    MORPHD_DECODE_INVALID,  /* not this framing: d->reason says why */
} morphd_decode_status_t;

typedef struct morphd_decoded {
    const unsigned char *msg; /* MESSAGE: inside the bytes given */
    size_t len;
    size_t used;              /* MESSAGE, SKIP: bytes consumed */
    size_t scanned;           /* MORE */
    uint64_t announced;       /* TOO_LONG */
    morphd_frame_t frame;     /* MESSAGE: how its reply is framed */
    char reason[128];         /* INVALID */
    /* a codec plugin's answer of its own (morph_decoded_t.reply), to send
     * before what follows: bytes, and whether to close after them */
    const unsigned char *direct;
    size_t direct_len;
    bool direct_close;
    /* http: the answer is a 101 to a WebSocket handshake; what follows it
     * is WebSocket frames (the feeding stops after it: the transport
     * switches the connection to morphd_codec_ws, ws.h) */
    bool direct_switch;
} morphd_decoded_t;

typedef struct morphd_codec_ops {
    const char *name;
    /* Looks for one frame at the start of data[0, len), of which the first
     * `from` bytes were seen before (a MORE's d->scanned). At the end of
     * input (`eof`), bytes that are no whole frame are a last message
     * (line, delimiter) or INVALID. Never returns MORE with more than
     * codec->max_frame bytes. */
    morphd_decode_status_t (*decode)(const morphd_codec_t *c, void *state,
                                     const unsigned char *data, size_t len,
                                     size_t from, bool eof,
                                     morphd_decoded_t *d);
} morphd_codec_ops_t;

/* A codec as a service configured it. */
struct morphd_codec {
    const morphd_codec_ops_t *ops;
    size_t max_message; /* the longest message */
    size_t max_frame;   /* the longest frame that holds one */
    bool chunks;        /* stream: every read is a message (MORPH_MSG_CHUNK) */
    /* framing = length */
    morphd_length_kind_t length_field;
    size_t length_size; /* its bytes; 0: varint */
    size_t length_offset;
    int64_t length_adjust;
    /* the shape of every reply (line: of replies to \n lines) */
    morphd_frame_shape_t shape;
    morphd_frame_shape_t shape_crlf; /* line: replies to \r\n lines */
    morphd_frame_shape_t shape_eof;  /* line: to a last line without one */
    /* a codec plugin (framing = NAME, morphd_codec_plugin): its
     * descriptor's codec and an instance (one per service and worker);
     * scratch (the owner's) holds its answers and a reply being framed */
    const morph_codec_t *plugin;
    void *instance;
    morphd_buf_t *scratch; /* http: a chunked body, decoded */
    /* it answers on its own (morphd_decoded_t.direct): a codec plugin, http */
    bool answers;
    size_t http_max_head; /* http: http_max_header_size */
    bool http_stream;     /* http: framing = stream, bodies in chunks */
    morphd_http_exchange_t *exchange; /* http: the request served now */
    char *const *http_origins;        /* http: http_allow_origin */
    size_t n_http_origins;
    /* Its calls watched as the chain watches a transform's (the engine
     * sets these, morphd_chain_codec_bind: the watchdog's mark and the
     * plugin's metrics): call_begin returns when the call started, for
     * call_end. NULL: not watched (the unit tests and fuzz targets). */
    uint64_t (*call_begin)(void *watch);
    void (*call_end)(void *watch, uint64_t since, bool failed);
    void *watch;
};

/* The operations of a codec plugin's framing (plugin.c). */
extern const morphd_codec_ops_t morphd_codec_plugin;
/* Sets up `c` (made by morphd_codec_init for morphd_codec_plugin) for an
 * instance of a codec plugin: it is then this worker's. */
void morphd_codec_bind(morphd_codec_t *c, const morph_codec_t *plugin,
                       void *instance, morphd_buf_t *scratch);

/* Frames a reply with a codec plugin's encode() (morphd_frame_end for a
 * MORPHD_LEN_PLUGIN shape). Returns 0, -1 (out of memory), or 1 when
 * encode() failed (nothing of the frame is left in `out`). */
int morphd_codec_plugin_encode(const morphd_frame_t *f, morphd_buf_t *out,
                               size_t mark, size_t body_len, uint32_t flags);

/* The frames a codec plugin's own answers go in: sent as they are, and the
 * connection closed after them (_close). */
extern const morphd_frame_shape_t morphd_shape_direct, morphd_shape_direct_close;
/* ... and the one after which the connection's codec changes
 * (morphd_decoded_t.direct_switch). */
extern const morphd_frame_shape_t morphd_shape_direct_switch;

/* For the codecs: the bytes at the end of input that no ending closed,
 * as a last message answered without one (line, delimiter). */
morphd_decode_status_t morphd_decode_last(const morphd_codec_t *c,
                                          const unsigned char *data,
                                          size_t len, morphd_decoded_t *d);

/* The framings built in, one file each (stream.c, line.c, ...). */
extern const morphd_codec_ops_t morphd_codec_stream;
extern const morphd_codec_ops_t morphd_codec_line;
extern const morphd_codec_ops_t morphd_codec_length;
extern const morphd_codec_ops_t morphd_codec_netstring;
extern const morphd_codec_ops_t morphd_codec_delimiter;
/* http:// endpoints' (http.c); not a value of `framing`. */
extern const morphd_codec_ops_t morphd_codec_http;

/* The rest of http's is in codec/http.h. */

/* The framings built in, by name: stream, line, length, netstring,
 * delimiter. */
const morphd_codec_ops_t *morphd_codec_builtin(const char *name);
/* Their names, ", "-separated (for messages and --help-config). */
extern const char morphd_codec_builtin_names[];

/* Sets up `c` for framing `ops` with its settings. `delimiter` (framing =
 * delimiter) is 1..MORPHD_FRAME_TAIL_MAX bytes. Returns 0, or -1 with the
 * reason in err (a setting out of range). */
int morphd_codec_init(morphd_codec_t *c, const morphd_codec_ops_t *ops,
                      size_t max_message, morphd_length_kind_t length_field,
                      size_t length_offset, int64_t length_adjust,
                      const unsigned char *delimiter, size_t delimiter_len,
                      char *err, size_t err_size);

/* length_field's values: "u32be" -> MORPHD_LEN_U32BE. Returns -1 for a
 * name that is none. */
int morphd_length_kind_parse(const char *name, morphd_length_kind_t *kind);
const char *morphd_length_kind_name(morphd_length_kind_t kind);
/* The size of a fixed-size field, 0 for varint and decimal. */
size_t morphd_length_kind_size(morphd_length_kind_t kind);
extern const char morphd_length_kind_names[];

/* A delimiter as written in the INI file: C escapes \0 \t \r \n \\ \xHH.
 * Returns its length (1..size), or -1 with the reason in err. */
int morphd_delimiter_parse(const char *text, unsigned char *out, size_t size,
                           char *err, size_t err_size);

/* --- a connection's decoder --------------------------------------------------- */

/* One message: hand it on. Return 0 to go on, non-zero to stop feeding. */
typedef int (*morphd_message_cb)(void *ctx, const unsigned char *msg,
                                 size_t len, const morphd_frame_t *frame);

/* What a connection keeps between reads: the bytes of a frame not yet
 * whole (never more than codec->max_frame + 1). */
typedef struct morphd_decoder {
    morphd_buf_t partial;
    size_t scanned;
    void *state; /* a codec plugin's per-connection state (the owner's) */
    /* set with MORPHD_DECODER_TOO_LONG and _INVALID */
    uint64_t announced;
    char reason[128];
} morphd_decoder_t;

#define MORPHD_DECODER_TOO_LONG (-2)
#define MORPHD_DECODER_INVALID (-3)

#define MORPHD_DECODER_INIT {MORPHD_BUF_INIT, 0, NULL, 0, {0}}

/* Feeds bytes; calls cb for each message in order, in place when a frame
 * lies whole in `data`. Returns 0, the callback's non-zero value, -1 when
 * out of memory, or MORPHD_DECODER_TOO_LONG / _INVALID (d->announced,
 * d->reason; the messages before it were delivered; do not feed again).
 * *consumed (may be NULL) is how much of `data` was used: all of it, or
 * up to the end of the frame whose callback stopped the feeding. */
int morphd_decoder_feed(morphd_decoder_t *d, const morphd_codec_t *c,
                        const unsigned char *data, size_t len,
                        morphd_message_cb cb, void *ctx, size_t *consumed);

/* End of input: a last message in the bytes left (line, delimiter), or
 * MORPHD_DECODER_INVALID when they are part of a frame (length,
 * netstring). Returns as morphd_decoder_feed does. */
int morphd_decoder_finish(morphd_decoder_t *d, const morphd_codec_t *c,
                          morphd_message_cb cb, void *ctx);

/* Bytes of a frame not yet whole. */
static inline size_t morphd_decoder_pending(const morphd_decoder_t *d)
{
    return d->partial.len;
}

void morphd_decoder_free(morphd_decoder_t *d);

#endif
