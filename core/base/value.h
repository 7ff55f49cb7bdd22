/*
 * value.h -- the one grammar of values an operator writes, for morphd's
 * keys (conf/keys.c) and plugin options (engine/options.c) alike, so
 * that `yes`, `64K` and `5s` mean the same wherever they are written:
 *
 *   booleans   yes no true false on off 1 0, in any case
 *   integers   decimal digits, a leading '-' where the range allows it
 *   sizes      a whole number of bytes, optionally a space, then B, K,
 *              KiB, M, MiB, G or GiB in any case (K = 1024)
 *   durations  a decimal number (digits, optionally a fraction), then
 *              ms, s, m or min, or h; 0 needs no unit. Any other bare
 *              number is refused: it meant seconds for morphd's keys and
 *              milliseconds for plugin options until issue 22, so it
 *              would be read wrong by one reader or the other.
 *
 * No exponents, hex, signs on sizes or durations, or surrounding spaces.
 * Each returns 0, or -1 with a short phrase in err naming the text and
 * what was expected; the caller adds file, line and key.
 */
#ifndef MORPHD_VALUE_H
#define MORPHD_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int morphd_value_bool(const char *text, bool *out, char *err, size_t err_size);
int morphd_value_int(const char *text, int64_t *out, char *err,
                     size_t err_size);
int morphd_value_size(const char *text, uint64_t *out, char *err,
                      size_t err_size);
/* `bare_ms`: a bare number is milliseconds (a plugin's declared default,
 * which plugin.h has always read so); false for what an operator writes. */
int morphd_value_duration_ms(const char *text, bool bare_ms, uint64_t *out,
                             char *err, size_t err_size);

#endif
