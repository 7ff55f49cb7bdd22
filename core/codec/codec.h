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
} morphd_length_kind_t;

/* Header bytes before a length field (length_offset), and the bytes after
 * a reply (a delimiter), at most: */
#define MORPHD_FRAME_HEAD_MAX 64
#define MORPHD_FRAME_TAIL_MAX 16

/* What every reply of a codec gets around it: a length before it (the
 * reply's length minus `adjust`) and `tail` after it. One per codec
 * (a line codec has one per line ending). */
typedef struct morphd_frame_shape {
    morphd_length_kind_t length;
    int64_t adjust;
    uint8_t tail_len;
    unsigned char tail[MORPHD_FRAME_TAIL_MAX];
} morphd_frame_shape_t;

/* How one message's reply is framed: its codec's shape, and the request's
 * own header bytes, copied before the length (length_offset). NULL shape:
 * the reply goes out as it is (stream, datagrams). */
typedef struct morphd_frame {
    const morphd_frame_shape_t *shape;
    const unsigned char *head;
    size_t head_len;
} morphd_frame_t;

/* The frame of a reply sent as it is. */
extern const morphd_frame_t morphd_frame_none;

/* Starts a reply at the end of `out`: appends the header bytes that do not
 * depend on the reply's length and room for a fixed-size length field.
 * *mark is where the reply's frame starts. Returns 0 or -1. */
int morphd_frame_begin(const morphd_frame_t *f, morphd_buf_t *out,
                       size_t *mark);

/* Ends it: the `body_len` bytes appended after morphd_frame_begin are the
 * reply; writes its length field and appends the tail. Returns 0, -1 when
 * out of memory, or 1 when the length cannot be written (a reply over 255
 * bytes for a u8 field; shorter than -adjust): the frame is taken out of
 * `out` again and `why` says so. */
int morphd_frame_end(const morphd_frame_t *f, morphd_buf_t *out, size_t mark,
                     size_t body_len, char *why, size_t why_size);

/* Takes a started reply out of `out` again (failed, or no reply). */
static inline void morphd_frame_cancel(morphd_buf_t *out, size_t mark)
{
    out->len = mark;
}

/* The bytes morphd_frame_end adds to a body of `body_len` bytes, in all. */
size_t morphd_frame_overhead(const morphd_frame_t *f, size_t body_len);

/* --- the codecs --------------------------------------------------------------- */

typedef struct morphd_codec morphd_codec_t;

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
} morphd_decoded_t;

typedef struct morphd_codec_ops {
    const char *name;
    /* Looks for one frame at the start of data[0, len), of which the first
     * `from` bytes were seen before (a MORE's d->scanned). At the end of
     * input (`eof`), bytes that are no whole frame are a last message
     * (line, delimiter) or INVALID. Never returns MORE with more than
     * codec->max_frame bytes. */
    morphd_decode_status_t (*decode)(const morphd_codec_t *c,
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
    bool line_end;      /* line: MORPH_PLUGIN_LINE_END plugins get an END */
    /* framing = length */
    morphd_length_kind_t length_field;
    size_t length_offset;
    int64_t length_adjust;
    /* the shape of every reply (line: of replies to \n lines) */
    morphd_frame_shape_t shape;
    morphd_frame_shape_t shape_crlf; /* line: replies to \r\n lines */
    morphd_frame_shape_t shape_eof;  /* line: to a last line without one */
};

/* The framings built in, one file each (stream.c, line.c, ...). */
extern const morphd_codec_ops_t morphd_codec_stream;
extern const morphd_codec_ops_t morphd_codec_line;
extern const morphd_codec_ops_t morphd_codec_length;
extern const morphd_codec_ops_t morphd_codec_netstring;
extern const morphd_codec_ops_t morphd_codec_delimiter;

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
    /* set with MORPHD_DECODER_TOO_LONG and _INVALID */
    uint64_t announced;
    char reason[128];
} morphd_decoder_t;

#define MORPHD_DECODER_TOO_LONG (-2)
#define MORPHD_DECODER_INVALID (-3)

#define MORPHD_DECODER_INIT {MORPHD_BUF_INIT, 0, 0, {0}}

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
