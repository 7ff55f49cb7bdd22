/*
 * rate.h -- rate_per_source: a token bucket per client address, kept as
 * one timestamp per source (GCRA, the "generic cell rate algorithm", which
 * is a token bucket that needs no refill arithmetic). The sources live in
 * a table of fixed size, shared by every worker of a service: memory is
 * bounded whatever the number of clients, and a source forgotten to make
 * room comes back with a full bucket, which is what it would have after
 * a pause anyway.
 */
#ifndef MORPHD_RATE_H
#define MORPHD_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sources tracked at once: 8-way sets of 24-byte entries, 1.5 MiB in all,
 * allocated when a service with rate_per_source first sees a client. */
#define MORPHD_RATE_SETS 8192
#define MORPHD_RATE_WAYS 8
#define MORPHD_RATE_SOURCES (MORPHD_RATE_SETS * MORPHD_RATE_WAYS)

typedef struct morphd_rate morphd_rate_t;

/* A table, or NULL when out of memory. */
morphd_rate_t *morphd_rate_new(void);
void morphd_rate_free(morphd_rate_t *r);

/* One event (a connection, a datagram) from source `key` (the 16-byte key
 * of stats.h) at `now_ns` (monotonic), under `per_second` events a second
 * with bursts of `burst`. Returns whether it is within the rate; an event
 * over it is not counted against the source. Thread-safe. */
bool morphd_rate_admit(morphd_rate_t *r, const unsigned char key[16],
                       double per_second, unsigned burst, uint64_t now_ns);

#endif
