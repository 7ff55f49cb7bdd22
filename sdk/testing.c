/*
 * testing.c -- <morph/testing.h>, the plugin authors' test helper: a thin
 * wrapper over core/engine/standalone.c (and standalone_wire.c for
 * framings) so that tests exercise the real loader, codecs and chain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/testing.h>

#include "base/log.h"
#include "base/value.h"
#include "codec/codec.h"
#include "engine/standalone.h"
#include "engine/standalone_wire.h"

/* What one connection of morph_test_wire() was given and sent. */
typedef struct record {
    morphd_buf_t out;  /* the bytes sent back */
    morphd_buf_t msgs; /* the messages, one after the other */
    size_t *ends;      /* where each ends in msgs */
    size_t n, cap;
    int end;           /* 0: served to the end; 1: closed before */
    char why[512];     /* the first failure, or why it closed */
} record_t;

struct morph_test {
    morphd_standalone_t *chain; /* on the heap: its loop cannot move */
    uint32_t reply;
    char error[512];
    /* how the plugins were made, to make them again under a framing */
    char *dir, *name;
    char **options; /* "NAME.KEY=VALUE" */
    size_t n_options;
    morphd_codec_t codec; /* the framing of morph_test_wire() */
    char framing[64];     /* its name: line, length, resp... */
    bool has_wire;
    morphd_wire_t wire;
    record_t whole, piece;
};

static void free_options(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* "KEY=VALUE" for plugin `name` as the chain's "NAME.KEY=VALUE". */
static int prefix_options(const char *name, const char *const *options,
                          char ***out, size_t *n_out)
{
    size_t n = 0;
    while (options && options[n])
        n++;
    char **v = calloc(n + 1, sizeof *v);
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (asprintf(&v[i], "%s.%s", name, options[i]) < 0) {
            v[i] = NULL;
            free_options(v, n);
            return -1;
        }
    *out = v;
    *n_out = n;
    return 0;
}

morph_test_t *morph_test_load(const char *dir, const char *name,
                              const char *const *options, char *err,
                              size_t err_size)
{
    morph_test_t *t = calloc(1, sizeof *t);
    if (t == NULL || (t->chain = calloc(1, sizeof *t->chain)) == NULL ||
        (t->dir = strdup(dir)) == NULL ||
        (name != NULL && (t->name = strdup(name)) == NULL) ||
        (name != NULL &&
         prefix_options(name, options, &t->options, &t->n_options) != 0)) {
        snprintf(err, err_size, "out of memory");
        morph_test_free(t);
        return NULL;
    }
    morphd_log_set_level(MORPH_LOG_WARN);
    const char *names[] = {name};
    if (morphd_standalone_open(t->chain, dir, names, name ? 1 : 0,
                               (const char *const *)t->options, t->n_options,
                               64 * 1024, err, err_size) != 0) {
        morph_test_free(t);
        return NULL;
    }
    char why[256];
    snprintf(t->framing, sizeof t->framing, "line");
    morphd_codec_init(&t->codec, &morphd_codec_line, 64 * 1024,
                      MORPHD_LEN_NONE, 0, 0, NULL, 0, why, sizeof why);
    return t;
}

int morph_test_feed(morph_test_t *t, const void *in, size_t len,
                    uint32_t flags, const unsigned char **out,
                    size_t *out_len)
{
    t->error[0] = '\0';
    t->reply = 0;
    int rc = morphd_standalone_apply(t->chain, in, len, flags, out, out_len,
                                     &t->reply, t->error, sizeof t->error);
    return rc < 0 ? -1 : rc == 2 ? 2 : 0;
}

char *morph_test_transform(morph_test_t *t, const char *in)
{
    const unsigned char *out;
    size_t len;
    if (morph_test_feed(t, in, strlen(in), 0, &out, &len) != 0)
        return NULL; /* failed, or pending on the test's clock */
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, out, len);
        copy[len] = '\0';
    }
    return copy;
}

const char *morph_test_error(const morph_test_t *t) { return t->error; }

uint32_t morph_test_reply(const morph_test_t *t) { return t->reply; }

int morph_test_reconnect(morph_test_t *t)
{
    return morphd_standalone_reconnect(t->chain, t->error, sizeof t->error);
}

void morph_test_use_clock(morph_test_t *t)
{
    morphd_standalone_use_clock(t->chain);
}

int morph_test_advance(morph_test_t *t, uint64_t ms, const unsigned char **out,
                       size_t *out_len)
{
    t->error[0] = '\0';
    int rc = morphd_standalone_advance(t->chain, ms, out, out_len, &t->reply,
                                       t->error, sizeof t->error);
    return rc < 0 ? -1 : rc == 2 ? 2 : 0;
}

int morph_test_counter(const morph_test_t *t, const char *name,
                       uint64_t *value)
{
    return morphd_standalone_counter(t->chain, name, value);
}

int morph_test_peer(morph_test_t *t, const char *transport,
                    const char *address, uint16_t port)
{
    return morphd_standalone_peer(t->chain, transport, address, port,
                                  t->error, sizeof t->error);
}

int morph_test_leave_during(morph_test_t *t, const void *in, size_t len)
{
    t->error[0] = '\0';
    return morphd_standalone_leave_during(t->chain, in, len, t->error,
                                          sizeof t->error);
}

/* --- framing ------------------------------------------------------------------ */

/* A built-in framing's settings, as the service's keys take them. */
typedef struct settings {
    size_t max_message;
    morphd_length_kind_t length_field;
    int64_t length_offset, length_adjust;
    unsigned char delimiter[MORPHD_FRAME_TAIL_MAX];
    size_t delimiter_len;
} settings_t;

/* One "KEY=VALUE": a built-in's key into *st (0), a plugin's option (1),
 * or -1 with the reason. */
static int setting(const morphd_codec_ops_t *ops, const char *kv,
                   settings_t *st, char *err, size_t err_size)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv) {
        snprintf(err, err_size, "setting '%s': KEY=VALUE", kv);
        return -1;
    }
    size_t klen = (size_t)(eq - kv);
    const char *v = eq + 1;
    char why[256] = "";
    int rc = 0;
    const char *owner = NULL; /* the framing a key belongs to */
    uint64_t u;
    if (klen == 11 && memcmp(kv, "max_message", 11) == 0) {
        rc = morphd_value_size(v, &u, why, sizeof why);
        if (rc == 0 && (u == 0 || u > (64u << 20))) {
            snprintf(why, sizeof why, "1 byte to 64M");
            rc = -1;
        }
        st->max_message = (size_t)u;
    } else if (ops == &morphd_codec_plugin) {
        return 1;
    } else if (klen == 12 && memcmp(kv, "length_field", 12) == 0) {
        owner = "length";
        if (morphd_length_kind_parse(v, &st->length_field) != 0) {
            snprintf(why, sizeof why, "one of %s", morphd_length_kind_names);
            rc = -1;
        }
    } else if ((klen == 13 && memcmp(kv, "length_offset", 13) == 0) ||
               (klen == 13 && memcmp(kv, "length_adjust", 13) == 0)) {
        owner = "length";
        rc = morphd_value_int(v, kv[7] == 'o' ? &st->length_offset
                                              : &st->length_adjust,
                              why, sizeof why);
        if (rc == 0 && kv[7] == 'o' &&
            (st->length_offset < 0 || st->length_offset > MORPHD_FRAME_HEAD_MAX)) {
            snprintf(why, sizeof why, "0 to %d", MORPHD_FRAME_HEAD_MAX);
            rc = -1;
        }
        if (rc == 0 && kv[7] == 'a' && (st->length_adjust < -(64ll << 20) ||
                                        st->length_adjust > (64ll << 20))) {
            snprintf(why, sizeof why, "-64M to 64M, as the INI file takes");
            rc = -1;
        }
    } else if (klen == 9 && memcmp(kv, "delimiter", 9) == 0) {
        owner = "delimiter";
        int n = morphd_delimiter_parse(v, st->delimiter, sizeof st->delimiter,
                                       why, sizeof why);
        rc = n < 0 ? -1 : 0;
        st->delimiter_len = n < 0 ? st->delimiter_len : (size_t)n;
    } else {
        snprintf(err, err_size, "setting '%.*s' is no key of framing = %s "
                 "(max_message; length: length_field, length_offset, "
                 "length_adjust; delimiter: delimiter)", (int)klen, kv,
                 ops->name);
        return -1;
    }
    if (rc == 0 && owner != NULL && strcmp(owner, ops->name) != 0) {
        snprintf(err, err_size, "setting '%.*s' is a key of framing = %s, "
                 "not of framing = %s", (int)klen, kv, owner, ops->name);
        return -1;
    }
    if (rc != 0)
        snprintf(err, err_size, "setting '%s': %s", kv, why);
    return rc;
}

int morph_test_framing(morph_test_t *t, const char *framing,
                       const char *const *settings)
{
    t->error[0] = '\0';
    const morphd_codec_ops_t *ops = morphd_codec_builtin(framing);
    const char *plugin = ops == NULL ? framing : NULL;
    if (ops == NULL)
        ops = &morphd_codec_plugin;
    settings_t st = {64 * 1024, MORPHD_LEN_U32BE, 0, 0, {0}, 1};
    /* the plugins' options, then the codec plugin's */
    size_t n = t->n_options;
    size_t extra = 0;
    while (settings && settings[extra])
        extra++;
    char **options = calloc(n + extra + 1, sizeof *options);
    if (options == NULL) {
        snprintf(t->error, sizeof t->error, "out of memory");
        return -1;
    }
    if (n > 0) /* (no options: t->options may be NULL) */
        memcpy(options, t->options, n * sizeof *options);
    size_t n_all = n;
    int rc = 0;
    for (size_t i = 0; i < extra && rc == 0; i++) {
        int kind = setting(ops, settings[i], &st, t->error, sizeof t->error);
        if (kind < 0)
            rc = -1;
        else if (kind == 1 &&
                 asprintf(&options[n_all++], "%s.%s", plugin, settings[i]) < 0) {
            options[--n_all] = NULL;
            snprintf(t->error, sizeof t->error, "out of memory");
            rc = -1;
        }
    }
    morphd_codec_t codec;
    if (rc == 0 &&
        morphd_codec_init(&codec, ops, st.max_message, st.length_field,
                          (size_t)st.length_offset, st.length_adjust,
                          st.delimiter, st.delimiter_len, t->error,
                          sizeof t->error) != 0)
        rc = -1;
    morphd_standalone_t *fresh = rc == 0 ? calloc(1, sizeof *fresh) : NULL;
    const char *names[] = {t->name};
    if (rc == 0 && fresh == NULL) {
        snprintf(t->error, sizeof t->error, "out of memory");
        rc = -1;
    }
    if (rc == 0 &&
        morphd_standalone_open_framed(fresh, t->dir, names, t->name ? 1 : 0,
                                      plugin, (const char *const *)options,
                                      n_all, st.max_message, t->error,
                                      sizeof t->error) != 0)
        rc = -1;
    for (size_t i = n; i < n_all; i++)
        free(options[i]);
    free(options);
    if (rc != 0) {
        free(fresh);
        return -1;
    }
    if (t->has_wire)
        morphd_wire_free(&t->wire);
    t->has_wire = false;
    morphd_standalone_close(t->chain);
    free(t->chain);
    t->chain = fresh;
    t->codec = codec;
    snprintf(t->framing, sizeof t->framing, "%s", framing);
    return 0;
}

static void record_reset(record_t *r)
{
    r->out.len = 0;
    r->msgs.len = 0;
    r->n = 0;
    r->end = 0;
    r->why[0] = '\0';
}

static void record_free(record_t *r)
{
    morphd_buf_free(&r->out);
    morphd_buf_free(&r->msgs);
    free(r->ends);
}

/* The wire's hooks: ctx is the record of the connection being served. */
static void on_message(void *ctx, const unsigned char *msg, size_t len)
{
    record_t *r = ctx;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        size_t *ends = realloc(r->ends, cap * sizeof *ends);
        if (ends == NULL)
            return; /* counted short: the comparison says so */
        r->ends = ends;
        r->cap = cap;
    }
    if (morphd_buf_append(&r->msgs, msg, len) == 0)
        r->ends[r->n++] = r->msgs.len;
}

static void on_failed(void *ctx, unsigned long n, const char *why)
{
    record_t *r = ctx;
    if (r->why[0] == '\0')
        snprintf(r->why, sizeof r->why, "message %lu: %s", n, why);
}

/* Serves one connection that sends `in` in pieces of `piece` bytes (0:
 * in one piece, or two pieces split at `split`). Returns 0 or -1. */
static int serve(morph_test_t *t, record_t *r, const unsigned char *in,
                 size_t len, size_t split, size_t piece)
{
    record_reset(r);
    morphd_wire_t *w = &t->wire;
    if (morphd_wire_reconnect(w, t->error, sizeof t->error) != 0)
        return -1;
    w->message = on_message;
    w->failed = on_failed;
    w->ctx = r;
    int rc = 0;
    size_t at = 0;
    while (rc == 0 && at < len) {
        size_t n = piece > 0 ? piece : at < split ? split - at : len - at;
        if (n > len - at)
            n = len - at;
        rc = morphd_wire_feed(w, in + at, n);
        at += n;
    }
    if (rc == 0)
        rc = morphd_wire_finish(w);
    if (rc != 0) {
        snprintf(t->error, sizeof t->error, "out of memory");
        return -1;
    }
    if (w->refused == MORPHD_DECODER_TOO_LONG) { /* as morphd logs it */
        r->end = 1;
        snprintf(r->why, sizeof r->why, "after %lu messages, the client sent "
                 "%s (%zu bytes); morphd closes the connection",
                 w->messages, w->decoder.reason, w->codec.max_message);
    } else if (w->refused != 0) {
        r->end = 1;
        snprintf(r->why, sizeof r->why, "after %lu messages, the client does "
                 "not speak framing = %s: %s; morphd closes the connection",
                 w->messages, t->framing, w->decoder.reason);
    } else if (w->closed_by_codec) {
        r->end = 1;
        snprintf(r->why, sizeof r->why, "after %lu messages, the codec "
                 "closes the connection", w->messages);
    }
    if (morphd_buf_append(&r->out, w->out.data, w->out.len) != 0) {
        snprintf(t->error, sizeof t->error, "out of memory");
        return -1;
    }
    return 0;
}

/* How `b` differs from `a` (in one piece), or NULL when it does not. */
static const char *differs(const record_t *a, const record_t *b, bool chunks,
                           char *buf, size_t size)
{
    if (chunks) /* stream: the messages are the reads */
        ;
    else if (a->n != b->n) {
        snprintf(buf, size, "the transform is given %zu messages, in one "
                 "piece %zu", b->n, a->n);
        return buf;
    }
    for (size_t i = 0; !chunks && i < a->n; i++) {
        size_t from = i ? a->ends[i - 1] : 0, bfrom = i ? b->ends[i - 1] : 0;
        size_t len = a->ends[i] - from;
        if (len != b->ends[i] - bfrom ||
            (len > 0 && memcmp(a->msgs.data + from, b->msgs.data + bfrom,
                               len) != 0)) {
            snprintf(buf, size, "message %zu is not the one it is in one "
                     "piece", i + 1);
            return buf;
        }
    }
    if (a->out.len != b->out.len ||
        (a->out.len > 0 && memcmp(a->out.data, b->out.data, a->out.len) != 0)) {
        size_t k = 0;
        while (k < a->out.len && k < b->out.len && a->out.data[k] == b->out.data[k])
            k++;
        snprintf(buf, size, "it sends %zu bytes back, in one piece %zu; they "
                 "differ from byte %zu", b->out.len, a->out.len, k);
        return buf;
    }
    if (a->end != b->end) {
        snprintf(buf, size, "%s, in one piece %s",
                 b->end ? "the connection is closed" : "all of it is served",
                 a->end ? "it is closed" : "all of it is");
        return buf;
    }
    return NULL;
}

int morph_test_wire(morph_test_t *t, const void *in, size_t len,
                    uint32_t flags, const unsigned char **out,
                    size_t *out_len)
{
    t->error[0] = '\0';
    *out = (const unsigned char *)"";
    *out_len = 0;
    if (!t->has_wire) {
        morphd_wire_init(&t->wire, t->chain, &t->codec);
        t->has_wire = true;
    }
    const unsigned char *bytes = in;
    if (serve(t, &t->whole, bytes, len, len, 0) != 0)
        return -1;
    char why[256];
    const char *diff = NULL;
    for (size_t k = 1; !(flags & MORPH_TEST_ONE_PIECE) && k <= len && !diff;
         k++) {
        /* split in two at byte k (k == len: one byte at a time) */
        bool bytewise = k == len;
        if (serve(t, &t->piece, bytes, len, k, bytewise ? 1 : 0) != 0)
            return -1;
        if ((diff = differs(&t->whole, &t->piece, t->codec.chunks, why,
                             sizeof why)) != NULL)
            snprintf(t->error, sizeof t->error, "fed %s: %s", bytewise
                     ? "one byte at a time" : "in two pieces", diff);
        if (diff != NULL && !bytewise) {
            char where[64];
            snprintf(where, sizeof where, " (split at byte %zu of %zu)", k, len);
            size_t l = strlen(t->error);
            snprintf(t->error + l, sizeof t->error - l, "%s", where);
        }
    }
    *out = t->whole.out.data ? t->whole.out.data : (const unsigned char *)"";
    *out_len = t->whole.out.len;
    if (diff != NULL)
        return 2;
    snprintf(t->error, sizeof t->error, "%s", t->whole.why);
    return t->whole.end;
}

size_t morph_test_messages(const morph_test_t *t) { return t->whole.n; }

const unsigned char *morph_test_message(const morph_test_t *t, size_t i,
                                        size_t *len)
{
    if (i >= t->whole.n) {
        *len = 0;
        return NULL;
    }
    size_t from = i ? t->whole.ends[i - 1] : 0;
    *len = t->whole.ends[i] - from;
    return t->whole.msgs.data + from;
}

void morph_test_free(morph_test_t *t)
{
    if (t == NULL)
        return;
    if (t->has_wire)
        morphd_wire_free(&t->wire);
    if (t->chain != NULL)
        morphd_standalone_close(t->chain);
    free(t->chain);
    record_free(&t->whole);
    record_free(&t->piece);
    free_options(t->options, t->n_options);
    free(t->dir);
    free(t->name);
    free(t);
}
