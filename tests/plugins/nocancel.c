/* Tries to defer without a cancel() callback: the host refuses (defer
 * returns NULL) and the plugin fails the message, as a plugin must. */
#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c; (void)m;
    if (morph_out_defer(o, NULL) != NULL)
        return morph_out_fail(o, "deferred without cancel()");
    return morph_out_fail(o, "cannot defer");
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "nocancel",
    .transform = t,
};
