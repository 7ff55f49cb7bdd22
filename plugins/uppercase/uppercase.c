/*
 * uppercase -- full Unicode uppercasing of UTF-8 with ICU (ß -> SS,
 * ﬁ -> FI, é -> É). ASCII takes a fast path that never calls ICU. Bytes that
 * are not valid UTF-8 pass through unchanged. Chunk-safe: in stream framing
 * a character split across two reads is held back (at most 3 bytes, in the
 * connection's state) until the rest of it arrives.
 *
 * Options (declared):
 *   uppercase.locale = tr   ICU locale for language-specific rules
 *                           (Turkish/Azeri dotted i, Lithuanian, Greek);
 *                           default: root, the language-neutral mapping.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucasemap.h>
#include <unicode/utf8.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <morph/plugin.h>

/* Bytes of an incomplete UTF-8 character held between stream chunks. */
typedef struct upper_conn {
    unsigned char carry[4];
    size_t n;
} upper_conn_t;

typedef struct upper {
    UCaseMap *csm;
    bool ascii_fast; /* false for locales that map ASCII letters specially */
} upper_t;

static const morph_option_decl_t options[] = {
    MORPH_OPTION_STRING("locale", NULL,
                        "ICU locale for language-specific rules, e.g. tr, "
                        "az, lt, el; default: the language-neutral mapping"),
    MORPH_OPTIONS_END,
};

static int upper_create(const morph_host_t *host, const morph_option_t *opts,
                        size_t n_opts, void **instance, char *err,
                        size_t err_size)
{
    (void)host;
    const char *locale = morph_option_get(opts, n_opts, "locale");
    if (locale == NULL)
        locale = "";
    upper_t *u = calloc(1, sizeof *u);
    if (u == NULL) {
        snprintf(err, err_size, "out of memory");
        return MORPH_ERROR;
    }
    UErrorCode status = U_ZERO_ERROR;
    u->csm = ucasemap_open(locale, 0, &status);
    if (U_FAILURE(status)) {
        snprintf(err, err_size, "ICU cannot open locale '%s': %s", locale,
                 u_errorName(status));
        free(u);
        return MORPH_ERROR;
    }
    /* Only these languages change how ASCII letters are uppercased. */
    u->ascii_fast = strncmp(locale, "tr", 2) != 0 &&
                    strncmp(locale, "az", 2) != 0 &&
                    strncmp(locale, "lt", 2) != 0;
    *instance = u;
    return MORPH_OK;
}

static void upper_destroy(void *instance)
{
    upper_t *u = instance;
    ucasemap_close(u->csm);
    free(u);
}

static void upper_conn_close(void *instance, void *conn)
{
    (void)instance;
    free(conn);
}

/* Uppercases a valid UTF-8 run with ICU, appending to out. */
static int icu_upper(upper_t *u, const unsigned char *s, size_t n,
                     morph_out_t *out)
{
    for (;;) {
        UErrorCode status = U_ZERO_ERROR;
        int32_t room = (int32_t)(out->cap - out->len);
        int32_t got = ucasemap_utf8ToUpper(u->csm, (char *)out->data + out->len,
                                           room, (const char *)s, (int32_t)n,
                                           &status);
        if (status == U_BUFFER_OVERFLOW_ERROR) {
            if (morph_out_reserve(out, out->len + (size_t)got) != MORPH_OK)
                return morph_out_fail(out, "output too large");
            continue;
        }
        if (U_FAILURE(status))
            return morph_out_fail(out, u_errorName(status));
        out->len += (size_t)got;
        return MORPH_OK;
    }
}

/* ASCII a-z to A-Z, sixteen bytes at a time with SSE2 (every x86-64 has
 * it) while no byte has its high bit set, then eight at a time (SWAR: the
 * comparisons are done on all bytes of a word at once). Returns how many
 * bytes it did; the rest is not plain ASCII. */
static size_t ascii_upper8(const unsigned char *s, size_t n, unsigned char *d)
{
    const uint64_t high = 0x8080808080808080ull;
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i below_a = _mm_set1_epi8('a' - 1);
    const __m128i above_z = _mm_set1_epi8('z' + 1);
    const __m128i bit = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        if (_mm_movemask_epi8(v) != 0)
            break; /* a byte >= 0x80: signed compares would misread it */
        __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(v, below_a),
                                      _mm_cmplt_epi8(v, above_z));
        _mm_storeu_si128((__m128i *)(void *)(d + i),
                         _mm_xor_si128(v, _mm_and_si128(lower, bit)));
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & high)
            break;
        uint64_t ge_a = w + 0x1f1f1f1f1f1f1f1full; /* bit 7 set: >= 'a' */
        uint64_t gt_z = w + 0x0505050505050505ull; /* bit 7 set: >  'z' */
        w ^= ((ge_a & ~gt_z) & high) >> 2;         /* flip 0x20: to upper */
        memcpy(d + i, &w, 8);
    }
    return i;
}

/* The whole of s when it is all ASCII, into d: returns n, or less when a
 * byte is not ASCII (d then holds a part; the caller starts over). From 16
 * bytes on, sixteen at a time and the last sixteen overlapping the rest:
 * a request of any length is a few vector steps and no byte loop. */
static inline size_t ascii_upper_all(const unsigned char *s, size_t n,
                                     unsigned char *d)
{
#if defined(__SSE2__)
    if (n >= 16) {
        const __m128i below_a = _mm_set1_epi8('a' - 1);
        const __m128i above_z = _mm_set1_epi8('z' + 1);
        const __m128i bit = _mm_set1_epi8(0x20);
        const size_t last = n - 16;
        for (size_t i = 0;;) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            if (_mm_movemask_epi8(v) != 0)
                return 0;
            __m128i lower = _mm_and_si128(_mm_cmpgt_epi8(v, below_a),
                                          _mm_cmplt_epi8(v, above_z));
            _mm_storeu_si128((__m128i *)(void *)(d + i),
                             _mm_xor_si128(v, _mm_and_si128(lower, bit)));
            if (i == last)
                return n;
            i = i + 16 < last ? i + 16 : last; /* the tail overlaps */
        }
    }
#endif
    size_t i = ascii_upper8(s, n, d);
    for (; i < n && s[i] < 0x80; i++) {
        unsigned char c = s[i];
        d[i] = (c >= 'a' && c <= 'z') ? (unsigned char)(c - 32) : c;
    }
    return i;
}

/* Uppercases bytes that may hold invalid UTF-8, which passes unchanged. */
static int upper_bytes(upper_t *u, const unsigned char *s, size_t n,
                       morph_out_t *out)
{
    size_t i = 0;
    while (i < n) {
        if (u->ascii_fast) {
            /* ASCII: the common case, without ICU. out has room: cap >= n
             * was reserved by the caller for everything not yet written. */
            if (morph_out_reserve(out, out->len + (n - i)) != MORPH_OK)
                return morph_out_fail(out, "output too large");
            unsigned char *d = out->data + out->len;
            size_t start = i;
            i += ascii_upper8(s + i, n - i, d);
            while (i < n && s[i] < 0x80) {
                unsigned char c = s[i];
                d[i - start] = (c >= 'a' && c <= 'z') ? (unsigned char)(c - 32)
                                                      : c;
                i++;
            }
            out->len += i - start;
            if (i == n)
                break;
        }
        /* the longest valid run of (non-ASCII, on the fast path) characters */
        size_t j = i;
        while (j < n && !(u->ascii_fast && s[j] < 0x80)) {
            int32_t k = (int32_t)j;
            UChar32 c;
            U8_NEXT(s, k, (int32_t)n, c);
            if (c < 0)
                break;
            j = (size_t)k;
        }
        if (j > i) {
            if (icu_upper(u, s + i, j - i, out) != MORPH_OK)
                return MORPH_ERROR;
            i = j;
            continue;
        }
        /* an ill-formed sequence at i: copy it as it is */
        int32_t k = (int32_t)i;
        UChar32 c;
        U8_NEXT(s, k, (int32_t)n, c);
        (void)c;
        if (morph_out_append(out, s + i, (size_t)k - i) != MORPH_OK)
            return morph_out_fail(out, "output too large");
        i = (size_t)k;
    }
    return MORPH_OK;
}

/* The length of an incomplete but possibly valid UTF-8 character at the
 * end of s (0 when s ends on a character boundary or on invalid bytes). */
static size_t incomplete_tail(const unsigned char *s, size_t n)
{
    if (n == 0 || s[n - 1] < 0x80)
        return 0; /* ends in ASCII: the common case */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = s[n - back];
        if (c >= 0x80 && c < 0xC0)
            continue; /* a continuation byte: keep looking for the lead */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4
                      : c >= 0xE0 && c < 0xF0 ? 3
                      : c >= 0xC2 && c < 0xE0 ? 2
                                              : 0;
        return need > back ? back : 0;
    }
    return 0;
}

/* Anything but plain ASCII with room for it: characters held between
 * chunks, non-ASCII text, a locale of its own. Apart from the fast path,
 * so that the fast path's call saves no registers for it. */
__attribute__((noinline)) static int upper_general(upper_t *u,
                                                   upper_conn_t *st,
                                                   const morph_msg_t *msg,
                                                   morph_out_t *out)
{
    const unsigned char *s = msg->data;
    size_t n = msg->len;
    bool chunk = (msg->flags & MORPH_MSG_CHUNK) != 0;

    if (chunk && st != NULL && st->n > 0) {
        /* finish the character held from the previous chunk */
        unsigned char lead = st->carry[0];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        while (st->n < need && n > 0 && s[0] >= 0x80 && s[0] < 0xC0) {
            st->carry[st->n++] = *s++;
            n--;
        }
        if (st->n < need && n == 0 && !(msg->flags & MORPH_MSG_END))
            return MORPH_OK; /* still incomplete: wait for more */
        int rc = upper_bytes(u, st->carry, st->n, out);
        st->n = 0;
        if (rc != MORPH_OK)
            return rc;
    }
    if (chunk && !(msg->flags & MORPH_MSG_END)) {
        size_t hold = incomplete_tail(s, n);
        if (hold > 0 && st == NULL) { /* the first split character */
            st = calloc(1, sizeof *st);
            if (st == NULL)
                return morph_out_fail(out, "out of memory");
            *msg->state = st;
        }
        if (hold > 0) {
            memcpy(st->carry, s + n - hold, hold);
            st->n = hold;
            n -= hold;
        }
    }
    return upper_bytes(u, s, n, out);
}

static int upper_transform(void *instance, void *conn, const morph_msg_t *msg,
                           morph_out_t *out)
{
    upper_t *u = instance;
    upper_conn_t *st = conn;
    /* the common case: plain ASCII, nothing held from the chunk before, and
     * room for it (no incomplete character can end ASCII input) */
    if (u->ascii_fast && (st == NULL || st->n == 0) &&
        msg->len <= out->cap - out->len &&
        ascii_upper_all(msg->data, msg->len, out->data + out->len) == msg->len) {
        out->len += msg->len;
        return MORPH_OK;
    }
    return upper_general(u, st, msg, out);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "uppercase",
    .version = MORPH_VERSION,
    .description = "full Unicode uppercase of UTF-8 (ICU); other bytes "
                   "unchanged",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .create = upper_create,
    .destroy = upper_destroy,
    .conn_close = upper_conn_close,
    .transform = upper_transform,
    .options = options,
};
