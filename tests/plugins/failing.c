#define _GNU_SOURCE
/* Fails every message that contains "fail" and echoes the others: the host
 * must log the failure, not answer that message, and keep serving. */
#include <string.h>

#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    if (m->len >= 4 && memmem(m->data, m->len, "fail", 4) != NULL)
        return morph_out_fail(out, "asked to fail");
    return morph_out_append(out, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "failing",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = t,
};
