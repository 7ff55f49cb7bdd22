/* A codec plugin without conn_open: it has no per-connection state, and
 * must be given NULL for it (test_codecs.c). A frame is a length byte and
 * the payload; so is a reply. */
#include <morph/plugin.h>

static int nostate_decode(void *instance, void *state, const unsigned char *data,
                          size_t len, morph_decoded_t *d)
{
    (void)instance;
    if (state != NULL) {
        d->reason = "nostate: given a state it never made";
        return MORPH_DECODE_ERROR;
    }
    if (len < 1 || len < 1 + (size_t)data[0])
        return MORPH_DECODE_MORE;
    d->msg = data + 1;
    d->len = data[0];
    d->used = 1 + (size_t)data[0];
    return MORPH_DECODE_MESSAGE;
}

static int nostate_encode(void *instance, void *state, const unsigned char *reply,
                          size_t len, uint64_t tag, uint32_t flags,
                          morph_out_t *out)
{
    (void)instance, (void)tag, (void)flags;
    if (state != NULL || len > 255)
        return MORPH_ERROR;
    unsigned char n = (unsigned char)len;
    if (morph_out_append(out, &n, 1) != MORPH_OK)
        return MORPH_ERROR;
    return morph_out_append(out, reply, len);
}

static const morph_codec_t nostate_codec = {
    .struct_size = sizeof(morph_codec_t),
    .decode = nostate_decode,
    .encode = nostate_encode,
};

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "codec_nostate",
    .version = "1",
    .description = "a codec without per-connection state",
    .abi_min = 4,
    .codec = &nostate_codec,
};
