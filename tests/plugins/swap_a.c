/* Version A of the plugin "swap": prefixes "A:". With swap_b.c, tests that
 * a reload picks up a plugin file replaced on disk. */
#include <morph/plugin.h>

#ifndef SWAP_TAG
#define SWAP_TAG 'A'
#endif

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    const unsigned char tag[2] = {SWAP_TAG, ':'};
    if (morph_out_append(out, tag, 2) != MORPH_OK ||
        morph_out_append(out, m->data, m->len) != MORPH_OK)
        return morph_out_fail(out, "too large");
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "swap",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = t,
};
