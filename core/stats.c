/*
 * stats.c -- counters and connection accounting (stats.h). Per-source
 * counts live in a small hash table of the source address, under a mutex:
 * accepts are rare next to messages, and workers share the table.
 */
#include "stats.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct source_count {
    unsigned char addr[16]; /* IPv4 as v4-mapped IPv6 */
    uint64_t open;
    struct source_count *next;
};

/* Guards every registry's list and reference counts: services are made
 * on the main thread but may be freed by the worker whose last connection
 * held them. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

morphd_stats_t *morphd_stats_get(morphd_stats_t **head, const char *name)
{
    pthread_mutex_lock(&registry_lock);
    morphd_stats_t *st;
    for (st = *head; st != NULL; st = st->next)
        if (strcmp(st->name, name) == 0) {
            st->refs++;
            pthread_mutex_unlock(&registry_lock);
            return st;
        }
    st = calloc(1, sizeof *st);
    if (st == NULL || (st->name = strdup(name)) == NULL) {
        free(st);
        pthread_mutex_unlock(&registry_lock);
        return NULL;
    }
    uv_mutex_init(&st->lock);
    st->refs = 1;
    st->next = *head;
    *head = st;
    pthread_mutex_unlock(&registry_lock);
    return st;
}

void morphd_stats_put(morphd_stats_t **head, morphd_stats_t *st)
{
    if (st == NULL)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--st->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (morphd_stats_t **p = head; *p != NULL; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    for (size_t i = 0; i < sizeof st->sources / sizeof *st->sources; i++)
        for (struct source_count *c = st->sources[i], *n; c; c = n) {
            n = c->next;
            free(c);
        }
    uv_mutex_destroy(&st->lock);
    free(st->name);
    free(st);
}

static void source_key(const struct sockaddr *sa, unsigned char key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
}

static struct source_count **bucket(morphd_stats_t *st,
                                    const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return &st->sources[h % (sizeof st->sources / sizeof *st->sources)];
}

bool morphd_stats_admit(morphd_stats_t *st, const struct sockaddr *peer,
                        uint64_t max_connections, uint64_t max_per_source)
{
    bool ok = true;
    uv_mutex_lock(&st->lock);
    if (max_connections && MORPHD_STAT_GET(st, connections_open) >= max_connections)
        ok = false;
    struct source_count *c = NULL;
    if (ok && max_per_source && peer != NULL) {
        unsigned char key[16];
        source_key(peer, key);
        struct source_count **b = bucket(st, key);
        for (c = *b; c != NULL && memcmp(c->addr, key, 16) != 0; c = c->next)
            ;
        if (c == NULL && (c = calloc(1, sizeof *c)) != NULL) {
            memcpy(c->addr, key, 16);
            c->next = *b;
            *b = c;
        }
        if (c == NULL || c->open >= max_per_source)
            ok = false;
        else
            c->open++;
    }
    if (ok)
        MORPHD_STAT_ADD(st, connections_open, 1);
    uv_mutex_unlock(&st->lock);
    MORPHD_STAT_ADD(st, connections_accepted, 1);
    if (!ok)
        MORPHD_STAT_ADD(st, connections_rejected, 1);
    return ok;
}

void morphd_stats_release(morphd_stats_t *st, const struct sockaddr *peer)
{
    uv_mutex_lock(&st->lock);
    MORPHD_STAT_SUB(st, connections_open, 1);
    if (peer != NULL) {
        unsigned char key[16];
        source_key(peer, key);
        for (struct source_count **p = bucket(st, key); *p; p = &(*p)->next)
            if (memcmp((*p)->addr, key, 16) == 0) {
                if (--(*p)->open == 0) { /* keep the table small */
                    struct source_count *dead = *p;
                    *p = dead->next;
                    free(dead);
                }
                break;
            }
    }
    uv_mutex_unlock(&st->lock);
}

void morphd_stats_format(morphd_stats_t *head, bool json, char *buf,
                         size_t size)
{
    size_t n = 0;
    pthread_mutex_lock(&registry_lock);
#define PUT(...)                                                               \
    do {                                                                       \
        int w_ = snprintf(buf + n, n < size ? size - n : 0, __VA_ARGS__);      \
        if (w_ > 0)                                                            \
            n += (size_t)w_;                                                   \
    } while (0)
    if (json) {
        PUT("{\"services\":{");
        for (morphd_stats_t *st = head; st != NULL; st = st->next) {
            PUT("%s\"%s\":{", st == head ? "" : ",", st->name);
            const char *sep = "";
#define MORPHD_STATS_JSON(f, help)                                             \
    PUT("%s\"" #f "\":%llu", sep,                                              \
        (unsigned long long)MORPHD_STAT_GET(st, f));                           \
    sep = ",";
            MORPHD_STATS_COUNTERS(MORPHD_STATS_JSON)
#undef MORPHD_STATS_JSON
            PUT("}");
        }
        PUT("}}\n");
    } else {
        PUT("%-24s", "counter");
        for (morphd_stats_t *st = head; st != NULL; st = st->next)
            PUT(" %14s", st->name);
        PUT("\n");
#define MORPHD_STATS_ROW(f, help)                                              \
    PUT("%-24s", #f);                                                          \
    for (morphd_stats_t *st = head; st != NULL; st = st->next)                 \
        PUT(" %14llu", (unsigned long long)MORPHD_STAT_GET(st, f));            \
    PUT("\n");
        MORPHD_STATS_COUNTERS(MORPHD_STATS_ROW)
#undef MORPHD_STATS_ROW
    }
#undef PUT
    pthread_mutex_unlock(&registry_lock);
    if (size > 0 && n >= size)
        buf[size - 1] = '\0';
}
