/*
 * errors.h -- a list of human-readable error messages. Config checking
 * collects every problem in a file so the operator fixes them in one pass.
 *
 * How morphd's functions fail is one convention per layer, said at the top
 * of each layer's main header (base/errors.h, engine/chain.h,
 * conf/config.h, net/listener.h, daemon/server.h; the layers test checks
 * that each says it; docs/architecture.md, "Errors").
 *
 * Errors in this layer: 0, or -1 with a phrase a person can act on in
 * `char *err, size_t err_size` (a buffer that can only run out of memory
 * takes no err). morphd_errors_t, here, is the list the layers above
 * collect a check's many problems in.
 */
#ifndef MORPHD_ERRORS_H
#define MORPHD_ERRORS_H

#include <stddef.h>

typedef struct morphd_errors {
    char **msgs;
    size_t n;
} morphd_errors_t;

#define MORPHD_ERRORS_INIT {NULL, 0}

/* Adds one formatted message. Out of memory is reported on stderr. */
void morphd_errors_add(morphd_errors_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void morphd_errors_free(morphd_errors_t *e);

#endif
