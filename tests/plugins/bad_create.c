/* A plugin whose create() always fails with a reason. */
#include <stdio.h>

#include <morph/plugin.h>

static int c(const morph_host_t *h, const morph_option_t *o, size_t n,
             void **inst, char *err, size_t err_size)
{
    (void)h; (void)o; (void)n; (void)inst;
    snprintf(err, err_size, "the flux capacitor is missing");
    return MORPH_ERROR;
}

static int t(void *i, void *conn, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)conn; (void)m; (void)out;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "bad_create",
    .create = c,
    .transform = t,
};
