/*
 * errors.c -- the error list of errors.h.
 */
#include "base/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void morphd_errors_add(morphd_errors_t *e, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    char **grown = r < 0 ? NULL : realloc(e->msgs, (e->n + 1) * sizeof *grown);
    if (grown == NULL) {
        free(msg);
        fputs("morphd: out of memory while reporting an error\n", stderr);
        return;
    }
    e->msgs = grown;
    e->msgs[e->n++] = msg;
}

void morphd_errors_free(morphd_errors_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    e->msgs = NULL;
    e->n = 0;
}
