/* Reply flags by message: "none" -> no reply; "close" -> "bye", then the
 * connection closes; "empty" -> an empty reply; "emptydg" -> an empty reply
 * sent as a 0-byte datagram; anything else is echoed. */
#include <string.h>

#include <morph/plugin.h>

static int is(const morph_msg_t *m, const char *s)
{
    return m->len == strlen(s) && memcmp(m->data, s, m->len) == 0;
}

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c;
    if (is(m, "none"))
        return morph_out_no_reply(o);
    if (is(m, "close")) {
        morph_out_append(o, "bye", 3);
        return morph_out_close(o);
    }
    if (is(m, "empty"))
        return MORPH_OK;
    if (is(m, "emptydg")) {
        o->reply |= MORPH_REPLY_EMPTY_DATAGRAM;
        return MORPH_OK;
    }
    return morph_out_append(o, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "replyflags",
    .transform = t,
};
