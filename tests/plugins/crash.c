/* Crashes the process on a message containing "crash" -- the risk every
 * in-process plugin carries; answers "pid" with the process it runs in
 * ("pid 1234"), for the tests of worker processes; echoes everything
 * else. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <morph/plugin.h>

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    if (m->len >= 5 && memmem(m->data, m->len, "crash", 5) != NULL)
        raise(SIGSEGV);
    if (m->len == 3 && memcmp(m->data, "pid", 3) == 0) {
        char reply[32];
        int n = snprintf(reply, sizeof reply, "pid %d", (int)getpid());
        return morph_out_append(out, reply, (size_t)n);
    }
    return morph_out_append(out, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "crash",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = t,
};
