/* A plugin that sets a flag bit no ABI has: refused, not ignored. */
#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c; (void)m; (void)o;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "unknown_flag",
    .flags = MORPH_PLUGIN_CHUNK_SAFE | (1u << 30),
    .transform = t,
};
