/* Properties of reverse (grapheme clusters):
 *  1. the output has exactly the input's length and bytes (a reordering);
 *  2. applied twice it returns the input, for valid UTF-8 -- except where
 *     reversing joins or splits clusters; see the exceptions below. */
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Whether the round trip is expected to hold. Reversing grapheme clusters
 * twice gives the input back unless a cluster boundary moves when the
 * clusters are reordered: this happens when the text does not start with
 * a cluster base (a combining mark, ZWJ, a variation selector or another
 * Grapheme_Extend/SpacingMark character first), or has characters whose
 * clustering depends on their neighbours (regional indicators, Hangul
 * jamo, prepend characters, ZWJ sequences, CR LF). The fuzzer checks the
 * plain majority: valid UTF-8 without any of those. */
static int round_trip_expected(const unsigned char *s, size_t n)
{
    for (int32_t i = 0; i < (int32_t)n;) {
        UChar32 c;
        U8_NEXT(s, i, (int32_t)n, c);
        if (c < 0)
            return 0;
        int gcb = u_getIntPropertyValue(c, UCHAR_GRAPHEME_CLUSTER_BREAK);
        if (gcb != U_GCB_OTHER)
            return 0;
        if (u_hasBinaryProperty(c, UCHAR_EXTENDED_PICTOGRAPHIC) ||
            u_getIntPropertyValue(c, UCHAR_INDIC_POSITIONAL_CATEGORY) != 0)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static morphd_standalone_t s;
    static int ready;
    fuzz_chain(&s, &ready, "reverse", NULL);
    size_t m;
    unsigned char *once = fuzz_apply(&s, data, size, 0, &m);
    FUZZ_CHECK(m == size, "length changed: %zu -> %zu", size, m);
    size_t count_in[256] = {0}, count_out[256] = {0};
    for (size_t i = 0; i < size; i++) {
        count_in[data[i]]++;
        count_out[once[i]]++;
    }
    FUZZ_CHECK(memcmp(count_in, count_out, sizeof count_in) == 0,
               "bytes changed, not just reordered");
    if (round_trip_expected(data, size)) {
        size_t m2;
        unsigned char *twice = fuzz_apply(&s, once, m, 0, &m2);
        FUZZ_CHECK(m2 == size && memcmp(twice, data, size) == 0,
                   "reverse twice is not the input");
        free(twice);
    }
    free(once);
    return 0;
}
