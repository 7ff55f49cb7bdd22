/*
 * rate.c -- per-source rates (rate.h). Each source has a theoretical
 * arrival time `tat`: when its bucket will be full again. An event at t
 * is within the rate when tat - t <= (burst - 1) * interval, and then
 * moves tat on by one interval. A source whose tat has passed has a full
 * bucket, the same as an unknown one, so its entry is the first to go.
 */
#include "base/rate.h"

#include "base/shm.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct rate_entry {
    unsigned char key[16];
    uint64_t tat; /* 0: an empty entry */
} rate_entry_t;

struct morphd_rate {
    pthread_mutex_t lock; /* shared by the worker processes (shm.h) */
    rate_entry_t entries[MORPHD_RATE_SOURCES];
};

morphd_rate_t *morphd_rate_new(void)
{
    /* pages come as they are used */
    morphd_rate_t *r = morphd_shm_calloc(1, sizeof *r);
    if (r != NULL && morphd_shm_mutex_init(&r->lock) != 0) {
        morphd_shm_free(r);
        r = NULL;
    }
    return r;
}

void morphd_rate_free(morphd_rate_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->lock);
    morphd_shm_free(r);
}

static uint32_t set_of(const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % MORPHD_RATE_SETS;
}

bool morphd_rate_admit(morphd_rate_t *r, const unsigned char key[16],
                       double per_second, unsigned burst, uint64_t now_ns)
{
    uint64_t interval = (uint64_t)(1e9 / per_second);
    uint64_t tolerance = (uint64_t)(burst > 0 ? burst - 1 : 0) * interval;
    if (now_ns == 0)
        now_ns = 1; /* 0 marks an empty entry */
    rate_entry_t *set = &r->entries[(size_t)set_of(key) * MORPHD_RATE_WAYS];
    morphd_shm_lock(&r->lock);
    rate_entry_t *e = NULL, *victim = &set[0];
    for (int i = 0; i < MORPHD_RATE_WAYS; i++) {
        if (set[i].tat != 0 && memcmp(set[i].key, key, 16) == 0) {
            e = &set[i];
            break;
        }
        if (set[i].tat < victim->tat) /* the emptiest bucket goes first */
            victim = &set[i];
    }
    bool ok = true;
    if (e == NULL) { /* new, or forgotten: a full bucket */
        memcpy(victim->key, key, 16);
        victim->tat = now_ns + interval;
    } else {
        uint64_t tat = e->tat > now_ns ? e->tat : now_ns;
        if (tat - now_ns > tolerance)
            ok = false;
        else
            e->tat = tat + interval;
    }
    morphd_shm_unlock(&r->lock);
    return ok;
}
