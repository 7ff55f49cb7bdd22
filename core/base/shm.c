/*
 * shm.c -- the shared mapping and its allocator (shm.h).
 */
#include "base/shm.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MIN_SHIFT 5  /* 32-byte blocks, header included */
#define CLASSES 24   /* up to 256 MiB */

typedef struct block {
    uint32_t size_class;
    uint32_t magic;
    uint64_t pad; /* 16-byte alignment of what follows */
} block_t;
#define BLOCK_MAGIC 0x6d6f7270u /* "morp" */

typedef struct arena {
    pthread_mutex_t lock;
    size_t size, used;
    void *root;
    block_t *free_list[CLASSES];
    /* blocks follow, from offset sizeof(arena) rounded up */
} arena_t;

static arena_t *arena; /* set before the first fork, then read only */

int morphd_shm_init(size_t size)
{
    if (arena != NULL)
        return 0;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    arena_t *a = p;
    a->size = size;
    a->used = (sizeof *a + 63) & ~(size_t)63;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&a->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    arena = a;
    return 0;
}

void morphd_shm_lock(pthread_mutex_t *m)
{
    /* a process died holding it: what it guarded is counters and lists
     * that are whole between any two stores, so take it over */
    if (pthread_mutex_lock(m) == EOWNERDEAD)
        pthread_mutex_consistent(m);
}

void morphd_shm_unlock(pthread_mutex_t *m) { pthread_mutex_unlock(m); }

int morphd_shm_mutex_init(pthread_mutex_t *m)
{
    if (arena == NULL)
        return pthread_mutex_init(m, NULL);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc;
}

static unsigned class_of(size_t bytes)
{
    unsigned c = 0;
    while (((size_t)1 << (c + MIN_SHIFT)) < bytes && c < CLASSES)
        c++;
    return c;
}

void *morphd_shm_calloc(size_t n, size_t size)
{
    if (arena == NULL)
        return calloc(n, size);
    if (size != 0 && n > (SIZE_MAX - sizeof(block_t)) / size)
        return NULL;
    size_t bytes = n * size + sizeof(block_t);
    unsigned c = class_of(bytes);
    if (c >= CLASSES)
        return NULL;
    size_t block_size = (size_t)1 << (c + MIN_SHIFT);
    morphd_shm_lock(&arena->lock);
    block_t *b = arena->free_list[c];
    if (b != NULL) {
        arena->free_list[c] = *(block_t **)(b + 1);
    } else if (arena->size - arena->used >= block_size) {
        b = (block_t *)((char *)arena + arena->used);
        arena->used += block_size;
    }
    morphd_shm_unlock(&arena->lock);
    if (b == NULL)
        return NULL;
    b->size_class = c;
    b->magic = BLOCK_MAGIC;
    memset(b + 1, 0, block_size - sizeof *b);
    return b + 1;
}

void morphd_shm_free(void *p)
{
    if (p == NULL)
        return;
    if (arena == NULL) {
        free(p);
        return;
    }
    block_t *b = (block_t *)p - 1;
    if (b->magic != BLOCK_MAGIC)
        abort(); /* not a block of ours: a bug, not a case to go on with */
    b->magic = 0;
    morphd_shm_lock(&arena->lock);
    *(block_t **)(b + 1) = arena->free_list[b->size_class];
    arena->free_list[b->size_class] = b;
    morphd_shm_unlock(&arena->lock);
}

char *morphd_shm_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = morphd_shm_calloc(1, n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

void **morphd_shm_root(void) { return arena ? &arena->root : NULL; }
