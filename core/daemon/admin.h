/*
 * admin.h -- the local admin endpoint: a UNIX socket (`admin_socket` in
 * [morphd]) that answers "stats" with the counters as a table and
 * "stats json" as JSON, then closes. `morph stats` is its client.
 */
#ifndef MORPHD_ADMIN_H
#define MORPHD_ADMIN_H

#include <stddef.h>
#include <uv.h>

#include "engine/stats.h"

typedef struct morphd_admin morphd_admin_t;

/* Listens on `path` (a stale socket file there is replaced). Returns NULL
 * with a reason in err. */
morphd_admin_t *morphd_admin_open(uv_loop_t *loop, const char *path,
                                  morphd_stats_t **stats, char *err,
                                  size_t err_size);

/* Stops listening and removes the socket file; frees once closed. */
void morphd_admin_close(morphd_admin_t *a);

#endif
