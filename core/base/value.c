/*
 * value.c -- the one grammar of values (value.h).
 */
#include "base/value.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int morphd_value_bool(const char *text, bool *out, char *err, size_t err_size)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    snprintf(err, err_size, "'%s' is not yes or no", text);
    return -1;
}

/* Whole decimal digits only: strtoull alone would take spaces, signs and
 * (for strtod) exponents, hex, nan and inf. */
static size_t digits(const char *s) { return strspn(s, "0123456789"); }

int morphd_value_int(const char *text, int64_t *out, char *err,
                     size_t err_size)
{
    const char *p = text + (text[0] == '-');
    size_t n = digits(p);
    if (n == 0 || p[n] != '\0')
        goto bad;
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno != 0) {
        snprintf(err, err_size, "%s is too large", text);
        return -1;
    }
    *out = v;
    return 0;
bad:
    snprintf(err, err_size, "'%s' is not an integer", text);
    return -1;
}

int morphd_value_size(const char *text, uint64_t *out, char *err,
                      size_t err_size)
{
    size_t n = digits(text);
    if (n == 0)
        goto bad;
    const char *unit = text + n;
    if (*unit == ' ')
        unit++;
    uint64_t mult;
    if (*unit == '\0' && unit == text + n)
        mult = 1;
    else if (!strcasecmp(unit, "b"))
        mult = 1;
    else if (!strcasecmp(unit, "k") || !strcasecmp(unit, "kib"))
        mult = 1ull << 10;
    else if (!strcasecmp(unit, "m") || !strcasecmp(unit, "mib"))
        mult = 1ull << 20;
    else if (!strcasecmp(unit, "g") || !strcasecmp(unit, "gib"))
        mult = 1ull << 30;
    else
        goto bad;
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno != 0 || v > (uint64_t)INT64_MAX / mult) {
        snprintf(err, err_size, "%s is too large", text);
        return -1;
    }
    *out = v * mult;
    return 0;
bad:
    snprintf(err, err_size, "'%s' is not a size (bytes, optionally with K, M "
             "or G)", text);
    return -1;
}

int morphd_value_duration_ms(const char *text, bool bare_ms, uint64_t *out,
                             char *err, size_t err_size)
{
    size_t n = digits(text);
    if (n == 0)
        goto bad;
    if (text[n] == '.') {
        size_t f = digits(text + n + 1);
        if (f == 0)
            goto bad;
        n += 1 + f;
    }
    const char *unit = text + n;
    double v = strtod(text, NULL); /* digits and one point: nothing else */
    double scale;
    if (*unit == '\0') {
        if (v != 0 && !bare_ms) {
            snprintf(err, err_size, "'%s' needs a unit: %ss or %sms (a bare "
                     "number is refused)", text, text, text);
            return -1;
        }
        scale = 1;
    } else if (!strcmp(unit, "ms"))
        scale = 1;
    else if (!strcmp(unit, "s"))
        scale = 1e3;
    else if (!strcmp(unit, "m") || !strcmp(unit, "min"))
        scale = 60e3;
    else if (!strcmp(unit, "h"))
        scale = 3600e3;
    else
        goto bad;
    double ms = v * scale;
    if (ms > 9.2e18) {
        snprintf(err, err_size, "%s is too long", text);
        return -1;
    }
    *out = (uint64_t)(ms + 0.5);
    return 0;
bad:
    snprintf(err, err_size, "'%s' is not a duration (e.g. 250ms, 5s, 2m, 1h)",
             text);
    return -1;
}
