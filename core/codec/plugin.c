/*
 * plugin.c -- a codec plugin (plugin.h: morph_codec_t) behind the codec
 * interface: framing = NAME gets exactly what a built-in gets. Its
 * decode() is bounded as the built-ins are (a message over max_message, or
 * one a header announced so, is refused; a frame still not whole past
 * twice max_message and 4 KiB is refused), its encode() frames each reply,
 * and what it answers on its own is handed on as a frame of its own.
 */
#include <stdio.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/http.h"
#include "codec/ws.h"

const morphd_frame_shape_t morphd_shape_direct = {.length = MORPHD_LEN_NONE};
const morphd_frame_shape_t morphd_shape_direct_close = {.length = MORPHD_LEN_NONE};
const morphd_frame_shape_t morphd_shape_direct_switch = {.length = MORPHD_LEN_NONE};

/* A morph_out_t that appends to a morphd_buf_t (host_private). */
static int buf_reserve(morph_out_t *out, size_t min_cap)
{
    morphd_buf_t *b = out->host_private;
    size_t base = (size_t)(out->data - b->data); /* where out begins in b */
    if (morphd_buf_reserve(b, base + min_cap) != 0)
        return MORPH_ERROR;
    out->data = b->data + base;
    out->cap = b->cap - base;
    return MORPH_OK;
}

static int buf_fail(morph_out_t *out, const char *reason)
{
    (void)out, (void)reason; /* encode() and decode() return their errors */
    return MORPH_ERROR;
}

static morph_pending_t *buf_defer(morph_out_t *out, void *user)
{
    (void)out, (void)user; /* a codec answers now */
    return NULL;
}

/* An out over b from b->len on (b may be empty: reserve a little). */
static int out_over(morphd_buf_t *b, morph_out_t *out)
{
    if (morphd_buf_reserve(b, b->len + 64) != 0)
        return -1;
    memset(out, 0, sizeof *out);
    out->data = b->data + b->len;
    out->cap = b->cap - b->len;
    out->reserve = buf_reserve;
    out->fail_message = buf_fail;
    out->defer = buf_defer;
    out->host_private = b;
    out->struct_size = (uint32_t)sizeof *out;
    return 0;
}

/* Around each call into the plugin: the owner's watch, if any. */
static inline uint64_t call_begin(const morphd_codec_t *c)
{
    return c->call_begin != NULL ? c->call_begin(c->watch) : 0;
}

static inline void call_end(const morphd_codec_t *c, uint64_t since,
                            bool failed)
{
    if (c->call_end != NULL)
        c->call_end(c->watch, since, failed);
}

void morphd_codec_bind(morphd_codec_t *c, const morph_codec_t *plugin,
                       void *instance, morphd_buf_t *scratch)
{
    c->plugin = plugin;
    c->instance = instance;
    c->scratch = scratch;
    c->shape.codec = c;
}

static morphd_decode_status_t plugin_decode(const morphd_codec_t *c,
                                            void *state,
                                            const unsigned char *data,
                                            size_t len, size_t from, bool eof,
                                            morphd_decoded_t *d)
{
    (void)from;
    morphd_buf_t *scratch = c->scratch;
    scratch->len = 0;
    morph_out_t reply;
    d->direct_len = 0;
    d->direct_close = false;
    d->direct_switch = false;
    if (out_over(scratch, &reply) != 0) {
        snprintf(d->reason, sizeof d->reason, "out of memory");
        return MORPHD_DECODE_INVALID;
    }
    morph_decoded_t pd;
    memset(&pd, 0, sizeof pd);
    pd.struct_size = (uint32_t)sizeof pd;
    pd.flags = eof ? MORPH_DECODE_EOF : 0;
    pd.reply = &reply;
    uint64_t since = call_begin(c);
    int st = c->plugin->decode(c->instance, state, data, len, &pd);
    call_end(c, since, st == MORPH_DECODE_ERROR || reply.len > reply.cap);
    if (reply.len > reply.cap) { /* what it wrote there is not its answer */
        snprintf(d->reason, sizeof d->reason, "the codec's decode() wrote "
                 "past its reply buffer (cap %zu)", reply.cap);
        return MORPHD_DECODE_INVALID;
    }
    if (reply.len > 0 || (reply.reply & MORPH_REPLY_CLOSE)) {
        d->direct = reply.data;
        d->direct_len = reply.len;
        d->direct_close = (reply.reply & MORPH_REPLY_CLOSE) != 0;
    }
    /* Over the limit whatever else it says: a length announced comes
     * before what follows it, so input cut anywhere gets this verdict, as
     * a frame longer than the longest one does (its bytes may come in one
     * read or many). What it answered for bytes after the announcement is
     * dropped with them. */
    if (pd.announced > c->max_message) {
        d->direct_len = 0;
        d->direct_close = false;
        d->announced = pd.announced;
        snprintf(d->reason, sizeof d->reason, "a message announcing "
                 "%llu bytes, longer than max_message",
                 (unsigned long long)pd.announced);
        return MORPHD_DECODE_TOO_LONG;
    }
    if ((st == MORPH_DECODE_MESSAGE || st == MORPH_DECODE_SKIP) &&
        pd.used > c->max_frame && pd.used <= len) {
        d->direct_len = 0;
        d->direct_close = false;
        d->announced = 0;
        snprintf(d->reason, sizeof d->reason, "a frame of %zu bytes, longer "
                 "than max_message allows", pd.used);
        return MORPHD_DECODE_TOO_LONG;
    }
    switch (st) {
    case MORPH_DECODE_MESSAGE:
        if (pd.used == 0 || pd.used > len)
            break;
        if (pd.len > c->max_message) {
            d->announced = pd.len;
            snprintf(d->reason, sizeof d->reason, "a message of %zu bytes, "
                     "longer than max_message", pd.len);
            return MORPHD_DECODE_TOO_LONG;
        }
        d->msg = pd.msg;
        d->len = pd.len;
        d->used = pd.used;
        d->frame = (morphd_frame_t){&c->shape, NULL, 0, (size_t)pd.tag, state};
        return MORPHD_DECODE_MESSAGE;
    case MORPH_DECODE_SKIP:
        if (pd.used == 0 || pd.used > len)
            break;
        d->used = pd.used;
        return MORPHD_DECODE_SKIP;
    case MORPH_DECODE_MORE:
        if (len > c->max_frame) {
            d->announced = 0;
            snprintf(d->reason, sizeof d->reason, "%zu bytes that are no "
                     "whole message yet, longer than max_message", len);
            return MORPHD_DECODE_TOO_LONG;
        }
        if (eof) {
            snprintf(d->reason, sizeof d->reason, "the input ended inside a "
                     "message (%zu bytes of it)", len);
            return MORPHD_DECODE_INVALID;
        }
        d->scanned = 0;
        return MORPHD_DECODE_MORE;
    case MORPH_DECODE_ERROR:
        snprintf(d->reason, sizeof d->reason, "%s",
                 pd.reason ? pd.reason : "a protocol error (no reason given)");
        return MORPHD_DECODE_INVALID;
    }
    snprintf(d->reason, sizeof d->reason, "the codec's decode() returned %d "
             "with %zu of %zu bytes used", st, pd.used, len);
    return MORPHD_DECODE_INVALID;
}

const morphd_codec_ops_t morphd_codec_plugin = {"plugin", plugin_decode};

/* Frames a reply: the body at out[mark, +body_len) moves to scratch, and
 * encode() writes the frame there instead. */
int morphd_codec_plugin_encode(const morphd_frame_t *f, morphd_buf_t *out,
                               size_t mark, size_t body_len, uint32_t flags)
{
    const morphd_codec_t *c = f->shape->codec;
    morphd_buf_t *scratch = c->scratch;
    scratch->len = 0;
    if (body_len > 0 &&
        morphd_buf_append(scratch, out->data + mark, body_len) != 0)
        return -1;
    out->len = mark;
    morph_out_t o;
    if (out_over(out, &o) != 0)
        return -1;
    uint64_t since = call_begin(c);
    int rc = c->plugin->encode(c->instance, f->state, scratch->data, body_len,
                               (uint64_t)f->guess, flags, &o);
    if (o.len > o.cap) /* past what it was given: not a frame */
        rc = MORPH_ERROR;
    call_end(c, since, rc != MORPH_OK);
    if (rc != MORPH_OK) { /* not framed: morphd_frame_explain says so */
        out->len = mark;
        return 1;
    }
    out->len = (size_t)(o.data - out->data) + o.len;
    return 0;
}

int morphd_frame_failed(const morphd_frame_t *f, morphd_buf_t *out)
{
    if (f->shape != NULL && f->shape->length >= MORPHD_LEN_HTTP)
        return morphd_http_respond(f, out, 500, 0);
    if (f->shape == &morphd_ws_shape_text || f->shape == &morphd_ws_shape_binary)
        /* WebSocket: close 1011, the reason in morphd's log */
        return morphd_ws_close_frame(out, MORPHD_WS_INTERNAL_ERROR) != 0
                   ? -1
                   : MORPHD_FRAME_CLOSE;
    if (f->shape == NULL || f->shape->length != MORPHD_LEN_PLUGIN)
        return 0;
    /* an encode() that fails here sends nothing more: the message failed */
    return morphd_codec_plugin_encode(f, out, out->len, 0,
                                      MORPH_ENCODE_FAILED) < 0 ? -1 : 0;
}
