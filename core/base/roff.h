/*
 * roff.h -- text for man pages: morphd's keys (conf/keys.c) and a plugin's
 * options (plugin_loader.c) are written into morphd.ini(5) and --help
 * output in roff.
 */
#ifndef MORPHD_ROFF_H
#define MORPHD_ROFF_H

#include <stdio.h>

/* The forms of a reference (morphd's keys, a plugin's options): `--help-config` text, the Markdown table
 * of docs/configuration.md, the roff of morphd.ini(5). */
typedef enum morphd_ref_format {
    MORPHD_REF_TEXT,
    MORPHD_REF_MARKDOWN,
    MORPHD_REF_MAN,
} morphd_ref_format_t;

/* Writes `text` for roff: backslashes and hyphens escaped, a leading dot
 * or quote made literal. */
void morphd_roff_puts(FILE *out, const char *text);

#endif
