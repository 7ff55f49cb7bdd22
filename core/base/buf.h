/*
 * buf.h -- a growable byte buffer, used for partial lines, write queues and
 * the per-loop scratch space of transform chains.
 */
#ifndef MORPHD_BUF_H
#define MORPHD_BUF_H

#include <stddef.h>

typedef struct morphd_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
} morphd_buf_t;

#define MORPHD_BUF_INIT {NULL, 0, 0}

/* Grows the capacity to at least min_cap. Returns 0 or -1 (out of memory). */
int morphd_buf_reserve(morphd_buf_t *b, size_t min_cap);
/* Appends n bytes. Returns 0 or -1 (out of memory). */
int morphd_buf_append(morphd_buf_t *b, const void *data, size_t n);
/* Appends printf-style text (without the NUL). Returns 0 or -1. */
int morphd_buf_printf(morphd_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Frees the memory; the buffer is empty and reusable afterwards. */
void morphd_buf_free(morphd_buf_t *b);

#endif
