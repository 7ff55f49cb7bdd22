/* A plugin built against a newer header (ABI + 1) whose descriptor has a
 * member this host does not know, but that needs no more than this host
 * (abi_min): it must load and serve, the unknown member unread (rule 3 of
 * plugin.h). */
#include <string.h>

#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c;
    memcpy(o->data, m->data, m->len);
    o->len = m->len;
    for (size_t k = 0; k < m->len; k++)
        if (o->data[k] >= 'a' && o->data[k] <= 'z')
            o->data[k] = (unsigned char)(o->data[k] - 32);
    return MORPH_OK;
}

/* the descriptor as a newer header would have it: one more member */
struct newer_descriptor {
    morph_plugin_t base;
    void (*something_new)(void);
};

static void something_new(void) {}

MORPH_PLUGIN_EXPORT const struct newer_descriptor morph_plugin = {
    .base = {
        .abi_version = MORPH_PLUGIN_ABI_VERSION + 1,
        .struct_size = sizeof(struct newer_descriptor),
        .abi_min = MORPH_PLUGIN_ABI_VERSION,
        .name = "newer_ok",
        .flags = MORPH_PLUGIN_CHUNK_SAFE,
        .transform = t,
    },
    .something_new = something_new,
};
