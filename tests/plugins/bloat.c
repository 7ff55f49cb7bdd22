/* Tries to answer every message with 1 MiB per input byte: the host must
 * refuse to grow the output past its limit, fail that message, and keep
 * serving. */
#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    size_t want = (m->len ? m->len : 1) << 20;
    if (morph_out_reserve(out, want) != MORPH_OK)
        return MORPH_ERROR; /* the host recorded why */
    for (size_t k = 0; k < want; k++)
        out->data[k] = 'x';
    out->len = want;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "bloat",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = t,
};
