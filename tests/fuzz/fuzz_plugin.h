/*
 * fuzz_plugin.h -- what the plugin fuzz targets share: one chain, loaded
 * once per process from the build tree with morphd's own loader.
 */
#ifndef MORPH_FUZZ_PLUGIN_H
#define MORPH_FUZZ_PLUGIN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/utf8.h>

#include "base/log.h"
#include "engine/standalone.h"

/* Loads `name` with `options` (may be NULL) on first use; aborts on error,
 * which is a bug in the build, not a finding. */
static inline morphd_standalone_t *fuzz_chain(morphd_standalone_t *s, int *ready,
                                       const char *name, const char *option)
{
    if (!*ready) {
        char err[1024];
        const char *opts[1] = {option};
        morphd_log_set_level(MORPH_LOG_ERROR);
        if (morphd_standalone_open(s, PLUGIN_DIR, &name, 1, opts,
                                   option ? 1 : 0, 1 << 20, err,
                                   sizeof err) != 0) {
            fprintf(stderr, "fuzz: %s\n", err);
            abort();
        }
        *ready = 1;
    }
    return s;
}

/* Runs one message (or chunk, with flags) and copies the output into a new
 * buffer; aborts when the plugin fails, which none of ours may. */
static inline unsigned char *fuzz_apply(morphd_standalone_t *s, const void *in,
                                 size_t n, uint32_t flags, size_t *out_len)
{
    const unsigned char *out;
    char err[512];
    if (morphd_standalone_apply(s, in, n, flags, &out, out_len, NULL, err,
                                sizeof err) < 0) {
        fprintf(stderr, "fuzz: the plugin failed a message: %s\n", err);
        abort();
    }
    unsigned char *copy = malloc(*out_len + 1);
    memcpy(copy, out, *out_len);
    return copy;
}

/* Whether s[0..n) is valid UTF-8 (needs <unicode/utf8.h>). */
static inline int fuzz_valid_utf8(const unsigned char *s, size_t n)
{
    for (int32_t i = 0; i < (int32_t)n;) {
        UChar32 c;
        U8_NEXT(s, i, (int32_t)n, c);
        if (c < 0)
            return 0;
    }
    return 1;
}

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz: property violated: " __VA_ARGS__);          \
            fprintf(stderr, "\n");                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif
