/*
 * crash_note.c -- the worker process's note for the main process
 * (crash_note.h).
 */
#include "daemon/crash_note.h"

#include <stddef.h>

static morphd_crash_note_t *attached;

void morphd_crash_note_attach(morphd_crash_note_t *note) { attached = note; }

void morphd_crash_note(const char *plugin, const char *service)
{
    morphd_crash_note_t *n = attached;
    if (n == NULL)
        return;
    size_t i = 0;
    for (; plugin && plugin[i] && i + 1 < sizeof n->plugin; i++)
        n->plugin[i] = plugin[i];
    n->plugin[i] = '\0';
    for (i = 0; service && service[i] && i + 1 < sizeof n->service; i++)
        n->service[i] = service[i];
    n->service[i] = '\0';
}
