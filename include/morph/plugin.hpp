/*
 * morph/plugin.hpp -- writing a morph plugin in C++ (C++17 and later).
 *
 * <morph/plugin.h> compiles as C++ on its own; this adds what C++ needs on
 * top of it:
 *
 *  1. The descriptor without designated initializers (C++17 has none, and
 *     C++20's make g++ -Wextra warn about every member left out, which is
 *     every member a later ABI adds):
 *
 *         MORPH_CXX_PLUGIN({
 *             d.name = "shout";
 *             d.version = "1.0";
 *             d.transform = morph::safe_transform<shout>;
 *         })
 *
 *     defines the exported `morph_plugin` with C linkage (`extern "C"`:
 *     without it, a C++ const variable has internal linkage and morphd
 *     cannot find the symbol) and the header members set.
 *
 *  2. Exceptions must not escape into morphd, which is C: an exception
 *     thrown through it ends the process (std::terminate). Wrap every
 *     callback that may throw: morph::safe_transform<f> fails the message
 *     with e.what(); safe_create<f> fails create() with it; the others
 *     swallow it (and conn_open refuses the connection).
 */
#ifndef MORPH_PLUGIN_HPP
#define MORPH_PLUGIN_HPP

#include <cstdio>
#include <exception>

#include <morph/plugin.h>

namespace morph {

/* A descriptor with the header members set and nothing else. */
inline morph_plugin_t descriptor() noexcept
{
    morph_plugin_t d{};
    d.abi_version = MORPH_PLUGIN_ABI_VERSION;
    d.struct_size = static_cast<uint32_t>(sizeof(morph_plugin_t));
    d.abi_min = MORPH_PLUGIN_ABI_MIN_DEFAULT;
    return d;
}

using transform_fn = int (*)(void *, void *, const morph_msg_t *, morph_out_t *);
using create_fn = int (*)(const morph_host_t *, const morph_option_t *, size_t,
                          void **, char *, size_t);

template <transform_fn F>
int safe_transform(void *instance, void *state, const morph_msg_t *msg,
                   morph_out_t *out) noexcept
{
    try {
        return F(instance, state, msg, out);
    } catch (const std::exception &e) {
        return morph_out_fail(out, e.what());
    } catch (...) {
        return morph_out_fail(out, "a C++ exception");
    }
}

template <create_fn F>
int safe_create(const morph_host_t *host, const morph_option_t *options,
                size_t n, void **instance, char *err, size_t err_size) noexcept
{
    try {
        return F(host, options, n, instance, err, err_size);
    } catch (const std::exception &e) {
        std::snprintf(err, err_size, "%s", e.what());
    } catch (...) {
        std::snprintf(err, err_size, "a C++ exception");
    }
    return MORPH_ERROR;
}

template <void (*F)(void *)>
void safe_destroy(void *instance) noexcept
{
    try {
        F(instance);
    } catch (...) {
    }
}

template <int (*F)(void *, void **)>
int safe_conn_open(void *instance, void **state) noexcept
{
    try {
        return F(instance, state);
    } catch (...) {
        return MORPH_ERROR;
    }
}

template <void (*F)(void *, void *)>
void safe_conn_close(void *instance, void *state) noexcept
{
    try {
        F(instance, state);
    } catch (...) {
    }
}

template <void (*F)(void *, morph_pending_t *)>
void safe_cancel(void *instance, morph_pending_t *pending) noexcept
{
    try {
        F(instance, pending);
    } catch (...) {
    }
}

} // namespace morph

/* Defines the exported descriptor: the block sets members of `d`. */
#define MORPH_CXX_PLUGIN(...)                                                  \
    extern "C" MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin;         \
    static morph_plugin_t morph_cxx_descriptor_()                              \
    {                                                                          \
        morph_plugin_t d = morph::descriptor();                                \
        __VA_ARGS__                                                            \
        return d;                                                              \
    }                                                                          \
    const morph_plugin_t morph_plugin = morph_cxx_descriptor_();

#endif /* MORPH_PLUGIN_HPP */
