/*
 * morph_framing.c -- the framing options the client and `morph pipe`
 * share (--length-field, --delimiter), read and reported the same way.
 */
#include <stdio.h>

#include "morph_cli.h"

int morph_option_length_field(const char *prog, const char *arg,
                              morphd_length_kind_t *kind)
{
    if (morphd_length_kind_parse(arg, kind) == 0)
        return 0;
    fprintf(stderr, "%s: --length-field: '%s' is not one of %s\n", prog, arg,
            morphd_length_kind_names);
    return -1;
}

int morph_option_delimiter(const char *prog, const char *arg,
                           unsigned char *out, size_t size, size_t *len)
{
    char err[160];
    int n = morphd_delimiter_parse(arg, out, size, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "%s: --delimiter: %s\n", prog, err);
        return -1;
    }
    *len = (size_t)n;
    return 0;
}
