/*
 * errors.h -- a list of human-readable error messages. Config checking
 * collects every problem in a file so the operator fixes them in one pass.
 *
 * How morphd's functions fail, one way per kind of caller (issue 22;
 * docs/architecture.md, "Errors"):
 *  - a step that can fail for one reason returns 0, or -1 with a phrase a
 *    person can act on in `char *err, size_t err_size` (base, engine, a
 *    listener's open);
 *  - a step that checks many things at once (a configuration, a reload,
 *    a plugin's options) collects every problem in a morphd_errors_t,
 *    each with its file:line, and returns 0 or -1;
 *  - a message's outcome is one of MORPHD_RUN_* (engine/chain.h), from the
 *    chain to the service to the transport;
 *  - what wraps a libuv call returns libuv's own negative error (UV_*);
 *  - the process ends with one of MORPH_EXIT_* (base/exit_codes.h).
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
