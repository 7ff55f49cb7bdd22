/* Crashes the process on a message containing "crash" -- the risk every
 * in-process plugin carries; echoes everything else. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    if (m->len >= 5 && memmem(m->data, m->len, "crash", 5) != NULL)
        raise(SIGSEGV);
    return morph_out_append(out, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "crash",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = t,
};
