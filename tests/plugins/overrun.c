/* Writes past out->cap for the message "over" (8 bytes after the end of
 * the room it was given, as a plugin that forgets morph_out_reserve
 * does); echoes anything else. The guard of morph pipe and
 * <morph/testing.h> must catch it. */
#include <string.h>

#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    if (m->len == 4 && memcmp(m->data, "over", 4) == 0) {
        for (size_t k = 0; k < out->cap + 8; k++)
            out->data[k] = 'o';
        out->len = out->cap;
        return MORPH_OK;
    }
    return morph_out_append(out, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "overrun",
    .transform = t,
};
