/*
 * crash_note.h -- what a dying worker process leaves for the main process
 * to log: the plugin and service that were running, and the heartbeat of
 * its loop. The note lives in memory shared with the main process
 * (supervisor.c allocates one per worker slot); a worker process attaches
 * its own. Below the server, the watchdog and the supervisor, which all
 * write or read it, so that none of them needs another.
 */
#ifndef MORPHD_CRASH_NOTE_H
#define MORPHD_CRASH_NOTE_H

#include <stdint.h>

typedef struct morphd_crash_note {
    char plugin[64];
    char service[64];
    uint64_t heartbeat_ms; /* atomic: the worker's loop turned then (0: not
                              serving yet) */
} morphd_crash_note_t;

/* In a worker process: `note` is its slot's (NULL: none, thread mode). */
void morphd_crash_note_attach(morphd_crash_note_t *note);

/* From a fatal-signal handler or the watchdog just before it aborts:
 * notes the plugin and service that were running. Async-signal-safe;
 * nothing without an attached note. */
void morphd_crash_note(const char *plugin, const char *service);

#endif
