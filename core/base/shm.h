/*
 * shm.h -- memory the worker processes of `isolation = process` share with
 * the main process: one anonymous shared mapping made before the first
 * fork, so that it sits at the same address in every process and pointers
 * into it are valid everywhere. The counters (stats.c) live there, so the
 * main process sums every worker's without asking them.
 *
 * A small allocator hands out blocks (size classes of powers of two, freed
 * blocks reused per class) under a process-shared lock. Locks in shared
 * memory are robust: a worker that dies holding one (a plugin crash cannot
 * happen inside, but a SIGKILL can) does not leave it locked for good.
 *
 * Without morphd_shm_init (thread mode, the tools, the tests), the
 * allocator is malloc's and the locks are ordinary mutexes.
 */
#ifndef MORPHD_SHM_H
#define MORPHD_SHM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* Maps `size` bytes (reserved, not committed: pages come as they are
 * touched) shared by the processes forked afterwards. Returns 0 or -1. */
int morphd_shm_init(size_t size);

/* calloc/free/strdup in the shared mapping (or malloc's when inactive).
 * Blocks are 16-byte aligned. */
void *morphd_shm_calloc(size_t n, size_t size);
void morphd_shm_free(void *p);
char *morphd_shm_strdup(const char *s);

/* A mutex that works across the processes when the mapping is active:
 * process-shared and robust. */
int morphd_shm_mutex_init(pthread_mutex_t *m);
void morphd_shm_lock(pthread_mutex_t *m);
void morphd_shm_unlock(pthread_mutex_t *m);

/* A word in the shared mapping for the caller's own use (the registry's
 * head), NULL when inactive. */
void **morphd_shm_root(void);

#endif
