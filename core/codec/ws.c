/*
 * ws.c -- WebSocket messages (RFC 6455 5): the frames a client sends,
 * read into messages, and the frames of the replies. A parser of morph's
 * own rather than wslay's: wslay's event layer owns the message buffer
 * and a send queue (which max_message and max_pending_output already
 * are here) and reads through a callback, and its frame layer alone is
 * the header's 2..14 bytes, which this reads in a dozen lines, in place,
 * on the decoder's bytes. Its fuzz target is tests/fuzz/fuzz_ws.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "codec/codec.h"
#include "codec/ws.h"

enum {
    OP_CONTINUATION = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xA,
};

#define FIN 0x80

struct morphd_ws_conn {
    morphd_buf_t msg;  /* a fragmented message's payload so far, unmasked */
    uint8_t opcode;    /* its type (text, binary); 0: none under way */
    bool high;         /* a byte of it so far is not ASCII */
    bool delivered;    /* msg went to the plugins: emptied at the next frame */
};

morphd_ws_conn_t *morphd_ws_conn_new(void)
{
    return calloc(1, sizeof(morphd_ws_conn_t));
}

void morphd_ws_conn_free(morphd_ws_conn_t *w)
{
    if (w == NULL)
        return;
    morphd_buf_free(&w->msg);
    free(w);
}

/* --- replies ------------------------------------------------------------------ */

/* A reply of up to 125 bytes has a 2-byte header (a server's frames are
 * not masked): morphd_frame_begin keeps its room, and the fast path of
 * morphd_frame_end_reply writes it (morphd_frame_put_fixed). */
const morphd_frame_shape_t morphd_ws_shape_text = {
    .length = MORPHD_LEN_WS_TEXT, .field_size = 2, .field_max = 125};
const morphd_frame_shape_t morphd_ws_shape_binary = {
    .length = MORPHD_LEN_WS_BINARY, .field_size = 2, .field_max = 125};

size_t morphd_ws_overhead(size_t body_len)
{
    return body_len <= 125 ? 2 : body_len <= 0xffff ? 4 : 10;
}

/* A frame's header for `op` and a payload of n bytes at p; its size. */
static size_t put_header(unsigned char *p, unsigned op, uint64_t n)
{
    p[0] = (unsigned char)(FIN | op);
    if (n <= 125) {
        p[1] = (unsigned char)n;
        return 2;
    }
    if (n <= 0xffff) {
        p[1] = 126;
        p[2] = (unsigned char)(n >> 8);
        p[3] = (unsigned char)n;
        return 4;
    }
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)(n >> (56 - 8 * i));
    return 10;
}

int morphd_ws_close_frame(morphd_buf_t *out, unsigned code)
{
    unsigned char f[4] = {FIN | OP_CLOSE, 2, (unsigned char)(code >> 8),
                          (unsigned char)code};
    return morphd_buf_append(out, f, sizeof f);
}

int morphd_ws_frame_end(const morphd_frame_t *f, morphd_buf_t *out,
                        size_t mark, size_t body_len, uint32_t reply)
{
    unsigned op = f->shape->length == MORPHD_LEN_WS_TEXT ? OP_TEXT : OP_BINARY;
    unsigned char head[10];
    size_t n = put_header(head, op, body_len);
    /* morphd_frame_begin kept 2 bytes (field_size) before the body */
    if (n > 2) {
        if (morphd_buf_reserve(out, out->len + (n - 2)) != 0)
            return -1;
        unsigned char *at = out->data + mark;
        memmove(at + n, at + 2, body_len);
        out->len += n - 2;
    }
    memcpy(out->data + mark, head, n);
    if (!(reply & MORPH_REPLY_CLOSE))
        return 0;
    /* the plugin closes: the close handshake, begun by morphd */
    return morphd_ws_close_frame(out, MORPHD_WS_NORMAL) != 0
               ? -1
               : MORPHD_FRAME_CLOSE;
}

/* --- the handshake ------------------------------------------------------------ */

static bool is_base64(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

bool morphd_ws_accept(const unsigned char *key, size_t key_len,
                      char accept[MORPHD_WS_ACCEPT_SIZE])
{
    /* 16 bytes in base64: 22 characters and "==" (RFC 6455 4.1) */
    if (key_len != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!is_base64(key[i]))
            return false;
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char text[24 + sizeof guid - 1];
    memcpy(text, key, 24);
    memcpy(text + 24, guid, sizeof guid - 1);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(text, sizeof text, digest);
    /* 20 bytes: 28 characters and the NUL EVP_EncodeBlock adds */
    EVP_EncodeBlock((unsigned char *)accept, digest, sizeof digest);
    return true;
}

/* --- UTF-8 -------------------------------------------------------------------- */

bool morphd_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII, eight bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* past U+10FFFF */
        } else {
            return false; /* a continuation byte, C0, C1, F5..FF */
        }
        if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

/* --- reading frames ----------------------------------------------------------- */

/* dst[0, n) = src[0, n) unmasked with `mask` (4 bytes), sixteen at a
 * time. Returns whether a byte of it is not ASCII: a text message that is
 * all ASCII is UTF-8 without a second pass over it (every message pays
 * for the unmasking; only those with such a byte for the check). */
static bool unmask(unsigned char *dst, const unsigned char *src, size_t n,
                   const unsigned char mask[4])
{
    uint32_t m32;
    memcpy(&m32, mask, 4);
    size_t i = 0;
    bool high = false;
#if defined(__SSE2__)
    const __m128i m = _mm_set1_epi32((int)m32);
    __m128i acc = _mm_setzero_si128();
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_xor_si128(
            _mm_loadu_si128((const __m128i *)(const void *)(src + i)), m);
        acc = _mm_or_si128(acc, v);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), v);
    }
    high = _mm_movemask_epi8(acc) != 0;
#endif
    uint64_t m64 = ((uint64_t)m32 << 32) | m32, acc64 = 0;
    for (; i + 8 <= n; i += 8) { /* (the mask repeats every 4 bytes) */
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= m64;
        acc64 |= w;
        memcpy(dst + i, &w, 8);
    }
    unsigned char tail = 0;
    for (; i < n; i++) {
        dst[i] = src[i] ^ mask[i & 3];
        tail |= dst[i];
    }
    return high || (acc64 & 0x8080808080808080ull) != 0 || (tail & 0x80) != 0;
}

/* A frame that breaks the protocol: the close frame with `code` to send,
 * then the connection ends (INVALID, or TOO_LONG for 1009). */
static morphd_decode_status_t fail(const morphd_codec_t *c, morphd_decoded_t *d,
                                   unsigned code, const char *reason)
{
    snprintf(d->reason, sizeof d->reason, "%s (close %u)", reason, code);
    morphd_buf_t *b = c->scratch;
    b->len = 0;
    if (morphd_ws_close_frame(b, code) == 0) {
        d->direct = b->data;
        d->direct_len = b->len;
    }
    return code == MORPHD_WS_TOO_BIG ? MORPHD_DECODE_TOO_LONG
                                     : MORPHD_DECODE_INVALID;
}

/* A control frame's answer, into the scratch: a pong for a ping, a close
 * for a close. */
static morphd_decode_status_t control(const morphd_codec_t *c,
                                      morphd_decoded_t *d, unsigned op,
                                      const unsigned char *payload, size_t n,
                                      const unsigned char mask[4], size_t used)
{
    d->used = used;
    if (op == OP_PONG)
        return MORPHD_DECODE_SKIP; /* unasked-for pongs are allowed */
    morphd_buf_t *b = c->scratch;
    b->len = 0;
    if (morphd_buf_reserve(b, 2 + 125) != 0) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return MORPHD_DECODE_INVALID;
    }
    unsigned char *body = b->data + 2;
    unmask(body, payload, n, mask);
    if (op == OP_CLOSE) {
        if (n == 1)
            return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                        "a close frame of one byte");
        if (n >= 2) {
            unsigned code = (unsigned)body[0] << 8 | body[1];
            /* the codes a peer may send (RFC 6455 7.4, and IANA's) */
            bool valid = (code >= 1000 && code <= 1003) ||
                         (code >= 1007 && code <= 1014) ||
                         (code >= 3000 && code <= 4999);
            if (!valid)
                return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                            "a close frame with a code no peer may send");
            if (!morphd_utf8_valid(body + 2, n - 2))
                return fail(c, d, MORPHD_WS_INVALID_DATA,
                            "a close frame whose reason is not UTF-8");
            n = 2; /* the answer echoes the code, not the reason */
        }
        put_header(b->data, OP_CLOSE, n);
        b->len = 2 + n;
        d->direct = b->data;
        d->direct_len = b->len;
        d->direct_close = true; /* the handshake is done: the end */
        return MORPHD_DECODE_SKIP;
    }
    put_header(b->data, OP_PONG, n); /* a ping: its payload back */
    b->len = 2 + n;
    d->direct = b->data;
    d->direct_len = b->len;
    return MORPHD_DECODE_SKIP;
}

static morphd_decode_status_t ws_decode(const morphd_codec_t *c, void *state,
                                        const unsigned char *data, size_t len,
                                        size_t from, bool eof,
                                        morphd_decoded_t *d)
{
    (void)from; /* a header is read again in a few compares */
    morphd_ws_conn_t *w = state;
    d->direct_len = 0;
    d->direct_close = false;
    d->direct_switch = false;
    if (w->delivered) { /* the message is the plugins' no more */
        w->delivered = false;
        morphd_buf_free(&w->msg);
    }
    /* the header: its first two bytes, a longer length, the mask; each
     * checked as soon as it is there (an overlong message is refused at
     * its length, before any of its payload is waited for) */
    size_t head = 2;
    uint64_t n = len >= 2 ? data[1] & 0x7f : 0;
    if (len >= 2) {
        if (data[0] & 0x70)
            return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                        "a frame with RSV bits set, of an extension never "
                        "agreed");
        if (!(data[1] & 0x80))
            return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                        "an unmasked frame from a client");
        if (n == 126) {
            head = 4;
            if (len >= 4)
                n = (uint64_t)data[2] << 8 | data[3];
        } else if (n == 127) {
            head = 10;
            if (len >= 10) {
                n = 0;
                for (int i = 0; i < 8; i++)
                    n = n << 8 | data[2 + i];
                if (n >> 63)
                    return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                                "a frame length with its top bit set");
            }
        }
    }
    if (len < head) { /* its length not yet whole */
        if (eof) {
            snprintf(d->reason, sizeof d->reason, "the input ended inside "
                     "a frame's header");
            return MORPHD_DECODE_INVALID;
        }
        d->scanned = 0;
        return MORPHD_DECODE_MORE;
    }
    unsigned op = data[0] & 0x0f;
    bool fin = (data[0] & FIN) != 0;
    if (op & 0x8) {
        if (op != OP_CLOSE && op != OP_PING && op != OP_PONG)
            return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                        "a frame of a reserved control opcode");
        if (!fin || n > 125)
            return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                        "a control frame fragmented or over 125 bytes");
    } else {
        if (op != OP_CONTINUATION && op != OP_TEXT && op != OP_BINARY)
            return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                        "a frame of a reserved data opcode");
        if (op == OP_CONTINUATION && w->opcode == 0)
            return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                        "a continuation frame with no message begun");
        if (op != OP_CONTINUATION && w->opcode != 0)
            return fail(c, d, MORPHD_WS_PROTOCOL_ERROR,
                        "a new message inside a fragmented one");
        if (n > c->max_message - w->msg.len) {
            d->announced = w->msg.len + n;
            return fail(c, d, MORPHD_WS_TOO_BIG,
                        "a message longer than max_message");
        }
    }
    size_t hl = head + 4; /* and the mask */
    if (len < hl || len - hl < n) {
        if (eof) {
            snprintf(d->reason, sizeof d->reason, "the input ended inside "
                     "a frame");
            return MORPHD_DECODE_INVALID;
        }
        d->scanned = 0;
        return MORPHD_DECODE_MORE;
    }
    const unsigned char *mask = data + head, *payload = data + hl;
    size_t used = hl + (size_t)n;
    if (op & 0x8)
        return control(c, d, op, payload, (size_t)n, mask, used);

    unsigned type = op == OP_CONTINUATION ? w->opcode : op;
    bool high;
    const unsigned char *msg;
    size_t msg_len;
    if (fin && op != OP_CONTINUATION) { /* a whole message: the common case */
        morphd_buf_t *b = c->scratch;
        if (b->cap < n && morphd_buf_reserve(b, (size_t)n) != 0) {
            snprintf(d->reason, sizeof d->reason, "out of memory");
            return MORPHD_DECODE_INVALID;
        }
        high = unmask(b->data, payload, (size_t)n, mask);
        b->len = (size_t)n;
        msg = b->data;
        msg_len = (size_t)n;
    } else { /* a fragment: kept with those before it */
        if (morphd_buf_reserve(&w->msg, w->msg.len + (size_t)n) != 0) {
            snprintf(d->reason, sizeof d->reason, "out of memory");
            return MORPHD_DECODE_INVALID;
        }
        if (op != OP_CONTINUATION)
            w->high = false; /* a message begins */
        w->high |= unmask(w->msg.data + w->msg.len, payload, (size_t)n, mask);
        w->msg.len += (size_t)n;
        w->opcode = (uint8_t)type;
        d->used = used;
        if (!fin)
            return MORPHD_DECODE_SKIP;
        w->opcode = 0;
        w->delivered = true;
        msg = w->msg.data != NULL ? w->msg.data : payload;
        msg_len = w->msg.len;
        high = w->high;
    }
    if (type == OP_TEXT && high && !morphd_utf8_valid(msg, msg_len))
        return fail(c, d, MORPHD_WS_INVALID_DATA,
                    "a text message that is not UTF-8");
    d->msg = msg;
    d->len = msg_len;
    d->used = used;
    d->frame = (morphd_frame_t){type == OP_TEXT ? &morphd_ws_shape_text
                                                : &morphd_ws_shape_binary,
                                NULL, 0, 0, NULL};
    return MORPHD_DECODE_MESSAGE;
}

const morphd_codec_ops_t morphd_codec_ws = {"websocket", ws_decode};

void morphd_codec_ws_init(morphd_codec_t *c, size_t max_message,
                          morphd_buf_t *scratch)
{
    memset(c, 0, sizeof *c);
    c->ops = &morphd_codec_ws;
    c->max_message = max_message;
    c->scratch = scratch;
    c->answers = true;
    /* a frame: its header, its mask, a message's payload (or a control
     * frame's 125 bytes) */
    c->max_frame = (max_message > 125 ? max_message : 125) + 14;
}
