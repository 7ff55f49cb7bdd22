/* An ABI 1 plugin setting a flag bit ABI 1 did not have (it happens to be
 * MORPH_PLUGIN_BLOCKING in ABI 2): refused, since its author could not
 * have meant ABI 2's meaning. */
#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c; (void)m; (void)o;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "abi1_flag",
    .flags = 1u << 1,
    .transform = t,
};
