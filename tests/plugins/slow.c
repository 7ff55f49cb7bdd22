/* Blocks for 300 ms on a message containing "slow" (what a plugin must
 * not do); echoes everything. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>

#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    if (m->len >= 4 && memmem(m->data, m->len, "slow", 4) != NULL) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            continue; /* a signal (morphd's watchdog) cut it short */
    }
    return morph_out_append(out, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "slow",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = t,
};
