/*
 * standalone.h -- a transform chain outside the daemon: plugins loaded by
 * name from one folder, options given as "plugin.key=value" strings, one
 * connection's worth of state. `morph pipe` and the plugin authors' test
 * helper (<morph/testing.h>) are built on it.
 */
#ifndef MORPHD_STANDALONE_H
#define MORPHD_STANDALONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "config.h"
#include "plugin_loader.h"

typedef struct morphd_standalone {
    morphd_plugin_t *plugins; /* n of them, in chain order */
    size_t n;
    morphd_service_conf_t conf; /* carries the options and limits */
    morphd_chain_t *chain;
    void **states;
    bool open;
    morphd_scratch_t scratch;
} morphd_standalone_t;

/* Loads `names` (in order) from `dir` and creates each with the options
 * meant for it ("PLUGIN.KEY=VALUE"). `max_message` bounds outputs as in a
 * service. Returns 0, or -1 with a message naming the plugin in err (and
 * nothing left to close). */
int morphd_standalone_open(morphd_standalone_t *s, const char *dir,
                           const char *const *names, size_t n,
                           const char *const *options, size_t n_options,
                           size_t max_message, char *err, size_t err_size);

/* Runs one message; *out is valid until the next call. */
int morphd_standalone_apply(morphd_standalone_t *s, const void *in,
                            size_t len, uint32_t flags,
                            const unsigned char **out, size_t *out_len,
                            char *err, size_t err_size);

/* Ends the current connection's state and starts a fresh one. */
int morphd_standalone_reconnect(morphd_standalone_t *s, char *err,
                                size_t err_size);

void morphd_standalone_close(morphd_standalone_t *s);

#endif
