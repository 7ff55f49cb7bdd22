/* A plugin built against a future header that needs a future host
 * (abi_min): morphd must refuse it, naming both versions. */
#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c; (void)m; (void)o;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    .abi_version = MORPH_PLUGIN_ABI_VERSION + 997,
    .struct_size = sizeof(morph_plugin_t),
    .abi_min = MORPH_PLUGIN_ABI_VERSION + 997,
    .name = "bad_abi",
    .transform = t,
};
