/*
 * keys.h -- morphd's keys as data: one row per key, with its section, name,
 * type (how its value is parsed and described), field, default and help.
 * keys.c holds the table and the setters; reader.c reads a file (and
 * --set overrides) into morphd_config_t by looking keys up here.
 */
#ifndef MORPHD_KEYS_H
#define MORPHD_KEYS_H

#include <stddef.h>
#include <stdio.h>

#include "conf/config.h"

typedef enum section_kind {
    SEC_NONE,    /* before any section header */
    SEC_MORPHD,  /* [morphd] */
    SEC_SERVICE, /* [service NAME] */
    SEC_UNKNOWN, /* an unknown header: its keys are not reported again */
} section_kind_t;

typedef struct key_row key_row_t;
/* Parses `value` into the field of `obj` the row names. Returns 0, or -1
 * with a short phrase in err (the caller adds file, line and key). */
typedef int (*setter_fn)(const key_row_t *row, void *obj, const char *value,
                         char *err, size_t err_size);

/* What kind of value a key takes: how it is parsed (in the grammar of
 * base/value.h, which plugin options share) and how its accepted values
 * are described in --help-config and morphd.ini(5). */
typedef enum range_kind {
    RANGE_TEXT,     /* `values` says what is accepted */
    RANGE_SIZE,     /* min..max bytes */
    RANGE_COUNT,    /* min..max */
    RANGE_DURATION, /* min..max ms */
    RANGE_SIGNED,   /* -max..max */
    RANGE_WORKERS,  /* auto, min..max */
} range_kind_t;

typedef struct key_type {
    setter_fn set;
    range_kind_t range;
    const char *values; /* RANGE_TEXT */
} key_type_t;

struct key_row {
    section_kind_t section;
    const char *name;
    const key_type_t *type;
    size_t offset;      /* of the field in its section struct */
    long line_offset;   /* of an `int` that records the line, or -1 */
    size_t min, max;    /* bounds for numbers */
    const char *def;    /* default as INI text; NULL when required/none */
    const char *help;
    const char *example;
};

/* Every key, in the order of --help-config and the documents. */
extern const key_row_t morphd_key_table[];
extern const size_t morphd_n_keys;

#endif
