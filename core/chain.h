/*
 * chain.h -- a service's transform chain: one instance of each plugin, run
 * left to right, each stage's output feeding the next. The chain owns no
 * buffers: callers pass a per-thread scratch pair, so steady-state serving
 * allocates nothing per message.
 */
#ifndef MORPHD_CHAIN_H
#define MORPHD_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "plugin_loader.h"

typedef struct morphd_stage {
    const morphd_plugin_t *plugin;
    void *instance;
    morph_host_t host;
} morphd_stage_t;

typedef struct morphd_chain {
    size_t n;
    bool chunk_safe;     /* every plugin is MORPH_PLUGIN_CHUNK_SAFE */
    bool has_conn_hooks; /* some plugin keeps per-connection state */
    size_t out_limit;    /* the largest output a stage may produce */
    morphd_stage_t stages[];
} morphd_chain_t;

/* Two buffers the stages write into alternately; one pair per thread. */
typedef struct morphd_scratch {
    morphd_buf_t buf[2];
} morphd_scratch_t;

/* Creates one instance of each plugin with the options that `svc` gives it.
 * `out_limit` bounds any stage's output. Returns 0, or -1 with a message
 * naming the plugin in err. */
int morphd_chain_create(morphd_plugin_t *const *plugins, size_t n,
                        const morphd_service_conf_t *svc, size_t out_limit,
                        morphd_chain_t **chain, char *err, size_t err_size);
void morphd_chain_destroy(morphd_chain_t *chain);

/* Per-connection state: `states` has room for chain->n pointers. */
int morphd_chain_conn_open(const morphd_chain_t *chain, void **states,
                           char *err, size_t err_size);
void morphd_chain_conn_close(const morphd_chain_t *chain, void **states);

/* Runs one message through the chain. On success *out points into
 * `scratch` (valid until the next call with it) and returns 0; on failure
 * returns -1 with "plugin NAME: reason" in err. `states` may be NULL when
 * !chain->has_conn_hooks. */
int morphd_chain_apply(const morphd_chain_t *chain, void **states,
                       const unsigned char *in, size_t len, uint32_t flags,
                       morphd_scratch_t *scratch, const unsigned char **out,
                       size_t *out_len, char *err, size_t err_size);

void morphd_scratch_free(morphd_scratch_t *scratch);

#endif
