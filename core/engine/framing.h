/*
 * framing.h -- splits a TCP byte stream into \n-terminated lines for
 * `framing = line`. Complete lines inside one read are handed out in place
 * (no copy); only a line split across reads is gathered in the framer's
 * own buffer, which never grows past max_message.
 */
#ifndef MORPHD_FRAMING_H
#define MORPHD_FRAMING_H

#include <stddef.h>

#include "base/buf.h"

/* One line: `line` without its ending, and the ending itself ("\n",
 * "\r\n", or "" for a last line without newline). Return 0 to go on, or
 * non-zero to stop feeding. */
typedef int (*morphd_line_cb)(void *ctx, const unsigned char *line,
                              size_t len, const char *ending);

typedef struct morphd_framer {
    morphd_buf_t partial; /* bytes of a line not yet terminated */
    size_t max_message;   /* longest line, without its ending */
} morphd_framer_t;

#define MORPHD_FRAMER_TOO_LONG (-2)

void morphd_framer_init(morphd_framer_t *f, size_t max_message);

/* Feeds bytes; calls cb for each complete line in order. Returns 0, the
 * callback's non-zero value, -1 when out of memory, or
 * MORPHD_FRAMER_TOO_LONG when a line exceeds max_message (the lines before
 * it were delivered; the framer must not be fed again). *consumed (when
 * not NULL) is how much of `data` was used: all of it, or up to the end of
 * the line whose callback stopped the feeding. */
int morphd_framer_feed(morphd_framer_t *f, const unsigned char *data,
                       size_t len, morphd_line_cb cb, void *ctx,
                       size_t *consumed);

/* End of stream: delivers a last line that has no newline, if any.
 * Returns as morphd_framer_feed does: MORPHD_FRAMER_TOO_LONG when that
 * line (a '\r' at its end included: it ends no line) exceeds max_message. */
int morphd_framer_finish(morphd_framer_t *f, morphd_line_cb cb, void *ctx);

void morphd_framer_free(morphd_framer_t *f);

#endif
