/*
 * rot -- rotates ASCII letters by `rot.shift` places (default 13, ROT13):
 * "Hello" -> "Uryyb".
 *
 * Demonstrates declared options: the plugin lists its options (name, type,
 * default, bounds, help) and morphd does the rest -- parsing, range checks,
 * "did you mean", an error at the option's own line of the INI file,
 * `morph plugin info rot` and `morphd --help-config`. create() receives
 * every option, defaults filled in. Also a counter of its own, shown by
 * `morph stats`. Chunk-safe: each byte is mapped on its own.
 *
 * Build: cc -std=c11 $(pkg-config --cflags morph-plugin) -shared -fPIC \
 *            rot.c -o rot.so
 */
#include <stdlib.h>

#include <morph/plugin.h>

typedef struct rot {
    int shift;
    const morph_host_t *host;
    morph_counter_t *letters;
} rot_t;

static const morph_option_decl_t options[] = {
    MORPH_OPTION_INT("shift", "13", 1, 25, "places to rotate each letter by"),
    MORPH_OPTIONS_END,
};

static int rot_create(const morph_host_t *host, const morph_option_t *opts,
                      size_t n_opts, void **instance, char *err,
                      size_t err_size)
{
    (void)err;
    (void)err_size; /* the options were checked by morphd */
    rot_t *r = malloc(sizeof *r);
    if (r == NULL)
        return MORPH_ERROR;
    r->shift = (int)morph_option_int(opts, n_opts, "shift", 13);
    r->host = host;
    r->letters = host->counter(host, "letters", "letters rotated");
    *instance = r;
    return MORPH_OK;
}

static void rot_destroy(void *instance) { free(instance); }

static int rot_transform(void *instance, void *conn, const morph_msg_t *msg,
                         morph_out_t *out)
{
    const rot_t *r = instance;
    (void)conn;
    uint64_t letters = 0;
    for (size_t i = 0; i < msg->len; i++) {
        unsigned char c = msg->data[i];
        if (c >= 'a' && c <= 'z') {
            c = (unsigned char)('a' + (c - 'a' + r->shift) % 26);
            letters++;
        } else if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)('A' + (c - 'A' + r->shift) % 26);
            letters++;
        }
        out->data[i] = c;
    }
    out->len = msg->len;
    r->host->counter_add(r->letters, letters);
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "rot",
    .version = "2.0.0",
    .description = "rotates ASCII letters by rot.shift places (ROT13)",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .create = rot_create,
    .destroy = rot_destroy,
    .transform = rot_transform,
    .options = options,
};
