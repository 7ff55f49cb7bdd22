/* The Lua bridge. Properties: any bytes through an identity script come
 * back exactly (NUL, invalid UTF-8, every length), as one message and as
 * stream chunks; and a script's string.upper equals ASCII uppercase done
 * here, byte for byte. */
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_plugin.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Writes the scripts into a folder of their own, once. */
static const char *script_dir(void)
{
    static char dir[] = "/tmp/morph-fuzz-lua-XXXXXX";
    static int made;
    if (made)
        return dir;
    if (mkdtemp(dir) == NULL || chmod(dir, 0755) != 0)
        abort();
    static const char *const scripts[][2] = {
        {"same", "return { chunk_safe = true,\n"
                 "  transform = function(m, conn, o, last) return m end }\n"},
        {"upper", "return { transform = function(m) return m:upper() end }\n"},
    };
    for (size_t i = 0; i < 2; i++) {
        char path[96];
        snprintf(path, sizeof path, "%s/%s.lua", dir, scripts[i][0]);
        FILE *f = fopen(path, "w");
        if (f == NULL || fputs(scripts[i][1], f) < 0 || fclose(f) != 0)
            abort();
    }
    made = 1;
    return dir;
}

static morphd_standalone_t *open_script(morphd_standalone_t *s, int *ready,
                                        const char *name)
{
    if (!*ready) {
        char err[1024];
        morphd_log_set_level(MORPH_LOG_ERROR);
        if (morphd_standalone_open(s, script_dir(), &name, 1, NULL, 0, 1 << 20,
                                   err, sizeof err) != 0) {
            fprintf(stderr, "fuzz: %s\n", err);
            abort();
        }
        *ready = 1;
    }
    return s;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static morphd_standalone_t same, upper;
    static int same_ready, upper_ready;
    open_script(&same, &same_ready, "same");
    open_script(&upper, &upper_ready, "upper");

    size_t n;
    unsigned char *out = fuzz_apply(&same, data, size, 0, &n);
    FUZZ_CHECK(n == size && memcmp(out, data, size) == 0,
               "the identity script changed the bytes");
    free(out);

    /* the same bytes as chunks of a stream, split where the first byte says */
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    size_t n1, n2, n3;
    unsigned char *a = fuzz_apply(&same, data, cut, MORPH_MSG_CHUNK, &n1);
    unsigned char *b = fuzz_apply(&same, data + cut, size - cut,
                                  MORPH_MSG_CHUNK, &n2);
    unsigned char *c = fuzz_apply(&same, NULL, 0,
                                  MORPH_MSG_CHUNK | MORPH_MSG_END, &n3);
    FUZZ_CHECK(n1 == cut && n2 == size - cut && n3 == 0 &&
                   memcmp(a, data, cut) == 0 &&
                   memcmp(b, data + cut, size - cut) == 0,
               "the identity script changed a chunk");
    free(a);
    free(b);
    free(c);
    char err[256];
    if (morphd_standalone_reconnect(&same, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }

    out = fuzz_apply(&upper, data, size, 0, &n);
    FUZZ_CHECK(n == size, "string.upper changed the length");
    for (size_t i = 0; i < size; i++) {
        unsigned char want = data[i] >= 'a' && data[i] <= 'z'
                                 ? (unsigned char)(data[i] - 32) : data[i];
        FUZZ_CHECK(out[i] == want, "string.upper is not ASCII uppercase");
    }
    free(out);
    return 0;
}
