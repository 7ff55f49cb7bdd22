/* load() and unload(): once per process, before and after every instance.
 * create() fails unless load() ran first; both hooks log. */
#include <stdio.h>

#include <morph/plugin.h>

static int loaded;

static int load(const morph_host_t *host, char *err, size_t err_size)
{
    (void)err; (void)err_size;
    loaded++;
    host->log(host, MORPH_LOG_INFO, "load hook ran");
    return MORPH_OK;
}

static void unload(void)
{
    fprintf(stderr, "hooks: unload hook ran (loaded %d)\n", loaded);
}

static int create(const morph_host_t *host, const morph_option_t *o, size_t n,
                  void **instance, char *err, size_t err_size)
{
    (void)host; (void)o; (void)n; (void)instance;
    if (loaded != 1) {
        snprintf(err, err_size, "load() ran %d times", loaded);
        return MORPH_ERROR;
    }
    return MORPH_OK;
}

static int t(void *i, void *c, const morph_msg_t *m, morph_out_t *o)
{
    (void)i; (void)c;
    return morph_out_append(o, m->data, m->len);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "hooks",
    .create = create,
    .transform = t,
    .load = load,
    .unload = unload,
};
