/* A plugin built for a future ABI: morphd must refuse it by version. */
#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c; (void)m; (void)o;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    .abi_version = 999,
    .struct_size = sizeof(morph_plugin_t),
    .name = "bad_abi",
    .transform = t,
};
