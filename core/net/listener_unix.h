/*
 * listener_unix.h -- the socket file of a unix:// endpoint: made at start
 * (a stale one replaced, one in use refused), given its mode and group, and
 * removed when its listener closes -- only if it is still the file made.
 */
#ifndef MORPHD_LISTENER_UNIX_H
#define MORPHD_LISTENER_UNIX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/endpoint.h"

typedef struct morphd_unix_file {
    bool made; /* this listener created the file: it removes it */
    dev_t dev;
    ino_t ino;
    char path[108];
} morphd_unix_file_t;

/* Makes a listening socket at `ep`'s path. Whatever is at the path first:
 * a socket nobody listens on (left by a process that died) is replaced; a
 * socket another process listens on is refused ("in use"); anything else
 * is refused and left alone. The file gets `mode` and, when `group` is not
 * NULL, that group (a name or number), before it starts listening, so no
 * client connects under looser permissions. Returns the descriptor
 * (non-blocking, close-on-exec), or -1 with a reason in err. */
int morphd_unix_listen(const morphd_endpoint_t *ep, unsigned mode,
                       const char *group, int backlog,
                       morphd_unix_file_t *file, char *err, size_t err_size);

/* Removes the socket file when it is still the one made (a file put there
 * since by someone else is left alone). Logs why it could not. */
void morphd_unix_remove(morphd_unix_file_t *file);

#endif
