/* Properties of uppercase:
 *  1. bytes that are not valid UTF-8 come out unchanged, in order;
 *  2. on valid UTF-8 it is idempotent: upper(upper(x)) == upper(x);
 *  3. fed as a stream cut at any point, it gives the same bytes as when fed
 *     whole (a character split across chunks is still mapped);
 *  4. on ASCII it is C's toupper, byte for byte (the vector fast path
 *     against a model of one byte at a time). */
#include <unicode/utf8.h>

#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Whether every ill-formed subsequence of `in` appears in `out`, in order. */
static int invalid_bytes_kept(const unsigned char *in, size_t n,
                              const unsigned char *out, size_t m)
{
    size_t j = 0;
    for (int32_t i = 0; i < (int32_t)n;) {
        int32_t start = i;
        UChar32 c;
        U8_NEXT(in, i, (int32_t)n, c);
        if (c >= 0)
            continue;
        size_t len = (size_t)(i - start);
        while (j + len <= m && memcmp(out + j, in + start, len) != 0)
            j++;
        if (j + len > m)
            return 0;
        j += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static morphd_standalone_t s;
    static int ready;
    fuzz_chain(&s, &ready, "uppercase", NULL);
    if (size == 0)
        return 0;
    size_t cut = data[0] % size; /* where the stream is cut */
    const unsigned char *in = data + 1;
    size_t n = size - 1;
    if (cut > n)
        cut = n;

    size_t m;
    unsigned char *whole = fuzz_apply(&s, in, n, 0, &m);
    FUZZ_CHECK(invalid_bytes_kept(in, n, whole, m),
               "an invalid byte sequence was changed or lost");
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = in[i] < 0x80;
    if (ascii) {
        int same = m == n;
        for (size_t i = 0; i < n && same; i++)
            same = whole[i] == ((in[i] >= 'a' && in[i] <= 'z') ? in[i] - 32 : in[i]);
        FUZZ_CHECK(same, "ASCII input is not toupper's, byte for byte");
    }
    if (fuzz_valid_utf8(in, n)) {
        size_t m2;
        unsigned char *again = fuzz_apply(&s, whole, m, 0, &m2);
        FUZZ_CHECK(m2 == m && memcmp(again, whole, m) == 0,
                   "uppercase is not idempotent");
        free(again);
    }

    /* the same bytes as a stream in two chunks, then the end */
    morphd_standalone_reconnect(&s, NULL, 0);
    size_t a, b, c;
    unsigned char *p1 = fuzz_apply(&s, in, cut, MORPH_MSG_CHUNK, &a);
    unsigned char *p2 = fuzz_apply(&s, in + cut, n - cut, MORPH_MSG_CHUNK, &b);
    unsigned char *p3 = fuzz_apply(&s, NULL, 0, MORPH_MSG_CHUNK | MORPH_MSG_END, &c);
    FUZZ_CHECK(a + b + c == m && memcmp(p1, whole, a) == 0 &&
                   memcmp(p2, whole + a, b) == 0 &&
                   memcmp(p3, whole + a + b, c) == 0,
               "stream cut at %zu differs from the whole message", cut);
    morphd_standalone_reconnect(&s, NULL, 0);
    free(p1);
    free(p2);
    free(p3);
    free(whole);
    return 0;
}
