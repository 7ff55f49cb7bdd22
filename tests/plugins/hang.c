/* Never returns from a message containing "hang" (an endless loop, what
 * the watchdog is for); echoes everything else. */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    if (m->len >= 4 && memmem(m->data, m->len, "hang", 4) != NULL) {
        volatile unsigned long spin = 0;
        for (;;) /* a busy loop: no system call to interrupt */
            spin++;
    }
    return morph_out_append(out, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "hang",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = t,
};
