/*
 * The plugin template: swaps the case of ASCII letters ("Hello" -> "hELLO").
 * Copy this folder to start a plugin; the parts to change are marked.
 * <morph/plugin.h> documents every field used here.
 */
#include <morph/plugin.h>

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "myplugin" /* CMakeLists.txt sets it from PLUGIN_NAME */
#endif

/* CHANGE ME: the transform. It gets one message (a line, a datagram, or a
 * chunk of a TCP stream) and writes the reply into `out`. out->cap is at
 * least msg->len; call morph_out_reserve() to write more than that. */
static int transform(void *instance, void *conn, const morph_msg_t *msg,
                     morph_out_t *out)
{
    (void)instance; /* set by .create, when a plugin has options */
    (void)conn;     /* set by .conn_open, when it keeps per-connection state */
    for (size_t i = 0; i < msg->len; i++) {
        unsigned char c = msg->data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            c ^= 0x20;
        out->data[i] = c;
    }
    out->len = msg->len;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = PLUGIN_NAME,
    .version = "0.1.0",
    .description = "swaps the case of ASCII letters", /* CHANGE ME */
    /* byte by byte, so correct on any split of a stream: chunk-safe */
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .transform = transform,
};
