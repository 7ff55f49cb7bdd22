/* Completes messages in pairs, across connections: a message waits
 * (deferred) until the next one arrives, which completes the one waiting
 * from inside its own transform() -- the re-entrant case the host must
 * handle -- and then waits itself. "now" completes inside its own call.
 * Replies are the messages themselves, prefixed with "<" (completed by a
 * later message) or "=" (completed in its own call). */
#include <string.h>

#include <morph/plugin.h>

static morph_pending_t *waiting; /* one instance per worker: no lock */

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c;
    if (m->len == 3 && memcmp(m->data, "now", 3) == 0) {
        morph_pending_t *p = morph_out_defer(o, NULL);
        if (p == NULL)
            return morph_out_fail(o, "cannot defer");
        morph_out_append(p->out, "=now", 4);
        p->done(p);
        return MORPH_OK;
    }
    if (waiting != NULL) {
        morph_pending_t *w = waiting;
        waiting = NULL;
        w->done(w);
    }
    morph_out_append(o, "<", 1);
    morph_out_append(o, m->data, m->len);
    morph_pending_t *p = morph_out_defer(o, NULL);
    if (p == NULL)
        return morph_out_fail(o, "cannot defer");
    waiting = p;
    return MORPH_OK;
}

static void cancel(void *i, morph_pending_t *p)
{
    (void)i;
    if (waiting == p)
        waiting = NULL;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "pairup",
    .transform = t,
    .cancel = cancel,
};
