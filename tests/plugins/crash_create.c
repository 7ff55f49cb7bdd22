/* Crashes the process that creates an instance of it: a plugin that
 * cannot even start, for the reload tests of worker processes. */
#include <signal.h>

#include <morph/plugin.h>

static int create(const morph_host_t *host, const morph_option_t *options,
                  size_t n_options, void **instance, char *err,
                  size_t err_size)
{
    (void)host; (void)options; (void)n_options; (void)instance; (void)err;
    (void)err_size;
    raise(SIGSEGV);
    return MORPH_ERROR;
}

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *out)
{
    (void)i; (void)c;
    return morph_out_append(out, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "crash_create",
    .create = create,
    .transform = t,
};
