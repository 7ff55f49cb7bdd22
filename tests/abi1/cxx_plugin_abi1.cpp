// A C++20 plugin as written for ABI 1 (with `.reserved = {}` spelled out,
// as g++ -Wextra asked for): kept verbatim; its source must still compile
// against the current header (tests/sdk/sdk_test.sh).
#include <morph/plugin.h>

#include <algorithm>

static int reverse_bytes(void *, void *, const morph_msg_t *msg,
                         morph_out_t *out)
{
    std::reverse_copy(msg->data, msg->data + msg->len, out->data);
    out->len = msg->len;
    return MORPH_OK;
}

extern "C" MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "cxx_plugin",
    .version = "1.0",
    .description = "reverses bytes, written in C++",
    .flags = 0,
    .create = nullptr,
    .destroy = nullptr,
    .conn_open = nullptr,
    .conn_close = nullptr,
    .transform = reverse_bytes,
    .reserved = {},
};
