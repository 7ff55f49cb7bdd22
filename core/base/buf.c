/*
 * buf.c -- growable byte buffer. Growth doubles, so appending n bytes one
 * piece at a time costs O(n) copies in total.
 */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int morphd_buf_reserve(morphd_buf_t *b, size_t min_cap)
{
    if (min_cap <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < min_cap) {
        if (cap > (size_t)-1 / 2)
            return -1;
        cap *= 2;
    }
    unsigned char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int morphd_buf_append(morphd_buf_t *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (b->len + n < b->len || morphd_buf_reserve(b, b->len + n) != 0)
        return -1;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

int morphd_buf_printf(morphd_buf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return morphd_buf_append(b, small, (size_t)n);
    if (morphd_buf_reserve(b, b->len + (size_t)n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void morphd_buf_free(morphd_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
