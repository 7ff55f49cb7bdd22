/* A descriptor claiming to be smaller than ABI 1's: refused by size. */
#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c; (void)m; (void)o;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    .abi_version = MORPH_PLUGIN_ABI_VERSION,
    .struct_size = 16,
    .name = "small_desc",
    .transform = t,
};
