/* Properties of detect (core/codec/detect.c), on any first bytes:
 *  - a verdict other than WAIT is final: every longer input that starts
 *    with the same bytes gets it too;
 *  - WAIT only for a prefix of at most MORPHD_DETECT_MAX_WAIT bytes (a
 *    connection never waits on a long one);
 *  - TLS only when asked, and only for 0x16 0x03; HTTP only when asked,
 *    and only with a space in the first nine bytes;
 *  - asking for less never turns PLAIN into something else.
 * The first byte picks tls and http. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/detect.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_detect: " __VA_ARGS__);                      \
            fprintf(stderr, "\n");                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 2)
        return 0;
    bool tls = data[0] & 1, http = data[0] & 2;
    const unsigned char *p = data + 1;
    size_t n = size - 1;
    morphd_detect_t last = MORPHD_DETECT_WAIT;
    for (size_t k = 1; k <= n; k++) {
        morphd_detect_t v = morphd_detect(p, k, tls, http);
        if (last != MORPHD_DETECT_WAIT)
            FUZZ_CHECK(v == last, "a verdict changed at byte %zu", k);
        FUZZ_CHECK(v != MORPHD_DETECT_WAIT || k <= MORPHD_DETECT_MAX_WAIT,
                   "waits on %zu bytes", k);
        FUZZ_CHECK(v != MORPHD_DETECT_TLS || (tls && p[0] == 0x16 && p[1] == 0x03),
                   "TLS for what is none");
        FUZZ_CHECK(v != MORPHD_DETECT_HTTP ||
                       (http && memchr(p, ' ', k < 9 ? k : 9) != NULL),
                   "HTTP without a method's space");
        if (v == MORPHD_DETECT_PLAIN) {
            FUZZ_CHECK(morphd_detect(p, k, false, http) == MORPHD_DETECT_PLAIN &&
                           morphd_detect(p, k, tls, false) == MORPHD_DETECT_PLAIN,
                       "asking for less made PLAIN something else");
        }
        last = v;
    }
    return 0;
}
