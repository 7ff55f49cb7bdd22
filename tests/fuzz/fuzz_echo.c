/* Property: echo returns exactly its input. */
#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static morphd_standalone_t s;
    static int ready;
    fuzz_chain(&s, &ready, "echo", NULL);
    size_t n;
    unsigned char *out = fuzz_apply(&s, data, size, 0, &n);
    FUZZ_CHECK(n == size && memcmp(out, data, size) == 0, "echo changed bytes");
    free(out);
    return 0;
}
