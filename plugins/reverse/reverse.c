/*
 * reverse -- reverses each message by user-perceived character (grapheme
 * cluster, with ICU's character break iterator), so accented letters,
 * combining marks and emoji sequences such as flags and families survive
 * intact. A trailing "\n" or "\r\n" stays at the end. Not chunk-safe: a
 * message must arrive whole (line framing, or UDP).
 *
 * Options (declared):
 *   reverse.unit = grapheme   (default) user-perceived characters
 *                = codepoint  Unicode code points
 *                = byte       raw bytes
 *
 * Bytes that are not valid UTF-8 are reordered as units of their own and
 * never altered: the output is always a permutation of the input's bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ubrk.h>
#include <unicode/utext.h>
#include <unicode/utf8.h>

#include <morph/plugin.h>

typedef enum unit { UNIT_GRAPHEME, UNIT_CODEPOINT, UNIT_BYTE } unit_t;

typedef struct reverse {
    unit_t unit;
    UBreakIterator *bi; /* for UNIT_GRAPHEME; reused for every message */
} reverse_t;

static const morph_option_decl_t options[] = {
    MORPH_OPTION_ENUM("unit", "grapheme", "grapheme|codepoint|byte",
                      "what to reverse: user-perceived characters, code "
                      "points or bytes"),
    MORPH_OPTIONS_END,
};

static int reverse_create(const morph_host_t *host, const morph_option_t *opts,
                          size_t n_opts, void **instance, char *err,
                          size_t err_size)
{
    (void)host;
    /* declared: morphd has checked the value already */
    const char *v = morph_option_get(opts, n_opts, "unit");
    unit_t unit = strcmp(v, "codepoint") == 0 ? UNIT_CODEPOINT
                  : strcmp(v, "byte") == 0    ? UNIT_BYTE
                                              : UNIT_GRAPHEME;
    reverse_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, err_size, "out of memory");
        return MORPH_ERROR;
    }
    r->unit = unit;
    if (unit == UNIT_GRAPHEME) {
        UErrorCode status = U_ZERO_ERROR;
        r->bi = ubrk_open(UBRK_CHARACTER, "", NULL, 0, &status);
        if (U_FAILURE(status)) {
            snprintf(err, err_size, "ICU break iterator: %s",
                     u_errorName(status));
            free(r);
            return MORPH_ERROR;
        }
    }
    *instance = r;
    return MORPH_OK;
}

static void reverse_destroy(void *instance)
{
    reverse_t *r = instance;
    if (r->bi != NULL)
        ubrk_close(r->bi);
    free(r);
}

/* Copies s[start, end) to the front of what is still free at the end. */
#define EMIT(start, end)                                                       \
    do {                                                                       \
        memcpy(d, s + (start), (size_t)((end) - (start)));                     \
        d += (end) - (start);                                                  \
    } while (0)

static int reverse_graphemes(reverse_t *r, const unsigned char *s, size_t n,
                             unsigned char *d)
{
    UErrorCode status = U_ZERO_ERROR;
    UText ut = UTEXT_INITIALIZER;
    utext_openUTF8(&ut, (const char *)s, (int64_t)n, &status);
    ubrk_setUText(r->bi, &ut, &status);
    if (U_FAILURE(status)) {
        utext_close(&ut);
        return MORPH_ERROR;
    }
    /* Boundaries of a UTF-8 UText are byte offsets into s. */
    int32_t end = ubrk_last(r->bi);
    int32_t start;
    while ((start = ubrk_previous(r->bi)) != UBRK_DONE) {
        EMIT(start, end);
        end = start;
    }
    utext_close(&ut);
    return MORPH_OK;
}

static void reverse_codepoints(const unsigned char *s, size_t n,
                               unsigned char *d)
{
    int32_t i = (int32_t)n;
    while (i > 0) {
        int32_t end = i;
        UChar32 c;
        U8_PREV(s, 0, i, c); /* an ill-formed byte moves back by one */
        (void)c;
        EMIT(i, end);
    }
}

static int reverse_transform(void *instance, void *conn,
                             const morph_msg_t *msg, morph_out_t *out)
{
    reverse_t *r = instance;
    (void)conn;
    const unsigned char *s = msg->data;
    size_t n = msg->len;
    size_t ending = 0;
    if (n > 0 && s[n - 1] == '\n')
        ending = n > 1 && s[n - 2] == '\r' ? 2 : 1;
    size_t body = n - ending;
    unsigned char *d = out->data; /* out->cap >= n is guaranteed */

    switch (r->unit) {
    case UNIT_GRAPHEME:
        if (body > INT32_MAX)
            return morph_out_fail(out, "message too long for ICU");
        if (reverse_graphemes(r, s, body, d) != MORPH_OK)
            return morph_out_fail(out, "ICU could not segment the message");
        break;
    case UNIT_CODEPOINT:
        reverse_codepoints(s, body, d);
        break;
    case UNIT_BYTE:
        for (size_t i = 0; i < body; i++)
            d[i] = s[body - 1 - i];
        break;
    }
    memcpy(d + body, s + body, ending);
    out->len = n;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "reverse",
    .version = MORPH_VERSION,
    .description = "reverses each message by grapheme cluster (ICU)",
    .flags = 0, /* needs whole messages */
    .create = reverse_create,
    .destroy = reverse_destroy,
    .transform = reverse_transform,
    .options = options,
};
