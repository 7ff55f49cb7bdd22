// A plugin written in C++17 with <morph/plugin.hpp>: it must compile
// cleanly with -Wall -Wextra -Werror -pedantic, and an exception thrown in
// its transform must fail that message, not end morphd.
#include <morph/plugin.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>

static int reverse_bytes(void *, void *, const morph_msg_t *msg,
                         morph_out_t *out)
{
    if (msg->len == 5 && std::memcmp(msg->data, "throw", 5) == 0)
        throw std::runtime_error("asked to throw");
    std::reverse_copy(msg->data, msg->data + msg->len, out->data);
    out->len = msg->len;
    return MORPH_OK;
}

MORPH_CXX_PLUGIN({
    d.name = "cxx_plugin";
    d.version = "1.0";
    d.description = "reverses bytes, written in C++";
    d.transform = morph::safe_transform<reverse_bytes>;
})
