/* load() refuses: the plugin is not used, and the reason is reported. */
#include <stdio.h>

#include <morph/plugin.h>

static int load(const morph_host_t *host, char *err, size_t err_size)
{
    (void)host;
    snprintf(err, err_size, "the license server is unreachable");
    return MORPH_ERROR;
}

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c; (void)m; (void)o;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "load_fail",
    .transform = t,
    .load = load,
};
