/*
 * errors.h -- a list of human-readable error messages. Config checking
 * collects every problem in a file so the operator fixes them in one pass.
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
