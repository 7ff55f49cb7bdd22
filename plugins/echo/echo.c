/*
 * echo -- returns every message unchanged. The smallest useful plugin, and
 * the identity element of a chain (a chain `echo | X` behaves as `X`).
 */
#include <string.h>

#include <morph/plugin.h>

static int echo_transform(void *instance, void *conn, const morph_msg_t *msg,
                          morph_out_t *out)
{
    (void)instance;
    (void)conn;
    /* out->cap >= msg->len is guaranteed: no reserve needed */
    if (msg->len > 0)
        memcpy(out->data, msg->data, msg->len);
    out->len = msg->len;
    /* an empty datagram echoes as an empty datagram (not as silence) */
    if (msg->len == 0 && !(msg->flags & MORPH_MSG_END))
        out->reply |= MORPH_REPLY_EMPTY_DATAGRAM;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "echo",
    .version = MORPH_VERSION,
    .description = "returns its input unchanged",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = echo_transform,
    .options = (const morph_option_decl_t[]){MORPH_OPTIONS_END},
};
