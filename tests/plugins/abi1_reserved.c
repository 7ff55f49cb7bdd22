/* An ABI 1 plugin (frozen ABI 1 header) that broke ABI 1's rule and put
 * something in reserved[]: refused, where ABI 1 loaded it silently. */
#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c; (void)m; (void)o;
    return MORPH_OK;
}

static int junk;

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "abi1_reserved",
    .transform = t,
    .reserved = {&junk},
};
