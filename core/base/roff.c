/*
 * roff.c -- text for man pages (roff.h).
 */
#include "base/roff.h"

void morphd_roff_puts(FILE *out, const char *text)
{
    if (*text == '.' || *text == '\'')
        fputs("\\&", out);
    for (const char *t = text; *t; t++) {
        if (*t == '\\')
            fputs("\\e", out);
        else if (*t == '-')
            fputs("\\-", out);
        else
            fputc(*t, out);
    }
}
