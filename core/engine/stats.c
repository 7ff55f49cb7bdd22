/*
 * stats.c -- counters, plugin metrics and connection accounting (stats.h).
 * Per-source counts live in a small hash table of the source address,
 * under a mutex: accepts are rare next to messages, and workers share the
 * table.
 */
#include "engine/stats.h"

#include "base/endpoint.h"
#include "base/log.h"
#include "base/shm.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct source_count {
    unsigned char addr[16]; /* IPv4 as v4-mapped IPv6 */
    uint64_t open;
    struct source_count *next;
    uint32_t by_slot[]; /* of `open`, per worker slot (stats_slots) */
};

unsigned morphd_stats_slot;       /* this process's worker slot */
static unsigned stats_slots = 1;  /* slots in every table */

/* Guards every registry's list and reference counts: services are made
 * on the main thread but may be freed by the worker whose last connection
 * held them. With worker processes it is one in the shared mapping. */
static pthread_mutex_t local_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t *registry_lock = &local_registry_lock;

typedef struct shared_registry {
    pthread_mutex_t lock;
    morphd_stats_t *head;
} shared_registry_t;

morphd_stats_t **morphd_stats_share(unsigned slots)
{
    void **root = morphd_shm_root();
    if (root == NULL)
        return NULL;
    shared_registry_t *r = *root;
    if (r == NULL) {
        if ((r = morphd_shm_calloc(1, sizeof *r)) == NULL)
            return NULL;
        morphd_shm_mutex_init(&r->lock);
        *root = r;
    }
    registry_lock = &r->lock;
    stats_slots = slots ? slots : 1;
    return &r->head;
}

/* `bytes` of zeroes from the shared mapping (or the heap) that start on a
 * cache line of their own; *block is what to free. NULL when out of
 * memory. */
static void *calloc_lines(size_t bytes, void **block)
{
    if ((*block = morphd_shm_calloc(1, bytes + 64)) == NULL)
        return NULL;
    return (void *)(((uintptr_t)*block + 63) & ~(uintptr_t)63);
}

morphd_stats_t *morphd_stats_get(morphd_stats_t **head, const char *name,
                                 unsigned n_lanes)
{
    if (n_lanes == 0)
        n_lanes = 1;
    morphd_shm_lock(registry_lock);
    morphd_stats_t *st;
    for (st = *head; st != NULL; st = st->next)
        if (strcmp(st->name, name) == 0) {
            if (st->n_lanes < n_lanes)
                st = NULL; /* the worker count never grows at run time */
            else
                st->refs++;
            morphd_shm_unlock(registry_lock);
            return st;
        }
    st = morphd_shm_calloc(1, sizeof *st);
    if (st != NULL) {
        st->name = morphd_shm_strdup(name);
        st->slot_open = morphd_shm_calloc(stats_slots, sizeof(uint64_t));
        st->slot_pending = morphd_shm_calloc(stats_slots, sizeof(uint64_t));
        st->lanes = calloc_lines(n_lanes * sizeof *st->lanes, &st->lanes_block);
    }
    if (st == NULL || st->name == NULL || st->slot_open == NULL ||
        st->slot_pending == NULL || st->lanes == NULL) {
        if (st != NULL) {
            morphd_shm_free(st->name);
            morphd_shm_free(st->slot_open);
            morphd_shm_free(st->slot_pending);
            morphd_shm_free(st->lanes_block);
        }
        morphd_shm_free(st);
        morphd_shm_unlock(registry_lock);
        return NULL;
    }
    st->n_lanes = n_lanes;
    morphd_shm_mutex_init(&st->lock);
    st->refs = 1;
    st->next = *head;
    *head = st;
    morphd_shm_unlock(registry_lock);
    return st;
}

void morphd_stats_put(morphd_stats_t **head, morphd_stats_t *st)
{
    if (st == NULL)
        return;
    morphd_shm_lock(registry_lock);
    if (--st->refs > 0) {
        morphd_shm_unlock(registry_lock);
        return;
    }
    for (morphd_stats_t **p = head; *p != NULL; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    morphd_shm_unlock(registry_lock);
    for (morphd_plugin_stats_t *p = st->plugins, *pn; p != NULL; p = pn) {
        pn = p->next;
        for (morphd_plugin_counter_t *c = p->counters, *cn; c; c = cn) {
            cn = c->next;
            morphd_shm_free(c->help);
            morphd_shm_free(c);
        }
        morphd_shm_free(p->per_worker_block);
        morphd_shm_free(p->name);
        morphd_shm_free(p);
    }
    for (size_t i = 0; i < sizeof st->sources / sizeof *st->sources; i++)
        for (struct source_count *c = st->sources[i], *n; c; c = n) {
            n = c->next;
            morphd_shm_free(c);
        }
    morphd_rate_free(st->rate);
    pthread_mutex_destroy(&st->lock);
    morphd_shm_free(st->slot_open);
    morphd_shm_free(st->slot_pending);
    morphd_shm_free(st->lanes_block);
    morphd_shm_free(st->name);
    morphd_shm_free(st);
}

morphd_stats_counts_t *morphd_stats_lane(morphd_stats_t *st, unsigned worker)
{
    return worker < st->n_lanes ? &st->lanes[worker].c : NULL;
}

uint64_t morphd_stats_read(const morphd_stats_t *st, size_t offset)
{
    const uint64_t *any = (const uint64_t *)((const char *)&st->any + offset);
    uint64_t sum = __atomic_load_n(any, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < st->n_lanes; i++) {
        const uint64_t *v =
            (const uint64_t *)((const char *)&st->lanes[i].c + offset);
        sum += __atomic_load_n(v, __ATOMIC_RELAXED);
    }
    return sum;
}

void morphd_stats_source_key(const struct sockaddr *sa, unsigned char key[16])
{
    morphd_sockaddr_key(sa, key);
}

void morphd_stats_source_key_uid(uid_t uid, unsigned char key[16])
{
    /* apart from every client address: ff75:: is IPv6 multicast, which no
     * TCP client connects from */
    memset(key, 0, 16);
    key[0] = 0xff;
    key[1] = 'u';
    memcpy(key + 12, &uid, sizeof uid < 4 ? sizeof uid : 4);
}

static struct source_count **bucket(morphd_stats_t *st,
                                    const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return &st->sources[h % (sizeof st->sources / sizeof *st->sources)];
}

/* One more open connection from `key`, unless it has max already;
 * called with the lock held. */
static bool count_source(morphd_stats_t *st, const unsigned char *key,
                         uint64_t max_per_source)
{
    struct source_count **b = bucket(st, key), *c;
    for (c = *b; c != NULL && memcmp(c->addr, key, 16) != 0; c = c->next)
        ;
    if (c == NULL && (c = morphd_shm_calloc(
                          1, sizeof *c + stats_slots * sizeof(uint32_t))) !=
                         NULL) {
        memcpy(c->addr, key, 16);
        c->next = *b;
        *b = c;
    }
    if (c == NULL || c->open >= max_per_source)
        return false; /* (a new entry starts at 0 < max: never left empty) */
    c->open++;
    c->by_slot[morphd_stats_slot]++;
    return true;
}

bool morphd_stats_admit(morphd_stats_t *st, const unsigned char *key,
                        uint64_t max_connections, uint64_t max_per_source)
{
    bool ok = true;
    morphd_shm_lock(&st->lock);
    if (max_connections &&
        __atomic_load_n(&st->any.connections_open, __ATOMIC_RELAXED) >= max_connections)
        ok = false;
    if (ok && max_per_source && key != NULL)
        ok = count_source(st, key, max_per_source);
    if (ok) {
        MORPHD_STAT_ADD(st, connections_open, 1);
        st->slot_open[morphd_stats_slot]++; /* under the lock */
    }
    morphd_shm_unlock(&st->lock);
    if (!ok)
        MORPHD_STAT_ADD(st, connections_rejected, 1);
    return ok;
}

bool morphd_stats_admit_source(morphd_stats_t *st, const unsigned char *key,
                               uint64_t max_per_source)
{
    morphd_shm_lock(&st->lock);
    bool ok = count_source(st, key, max_per_source);
    morphd_shm_unlock(&st->lock);
    if (!ok)
        MORPHD_STAT_ADD(st, connections_rejected, 1);
    return ok;
}

bool morphd_stats_rate_admit(morphd_stats_t *st, const unsigned char key[16],
                             double per_second, size_t burst)
{
    morphd_rate_t *r = __atomic_load_n(&st->rate, __ATOMIC_ACQUIRE);
    if (r == NULL) {
        morphd_shm_lock(&st->lock);
        if ((r = st->rate) == NULL && (r = morphd_rate_new()) != NULL)
            __atomic_store_n(&st->rate, r, __ATOMIC_RELEASE);
        morphd_shm_unlock(&st->lock);
        if (r == NULL)
            return true; /* out of memory: serving beats refusing everyone */
    }
    if (burst == 0)
        burst = per_second < 1 ? 1 : (size_t)(per_second + 0.999999);
    if (burst > UINT32_MAX)
        burst = UINT32_MAX;
    if (morphd_rate_admit(r, key, per_second, (unsigned)burst, uv_hrtime()))
        return true;
    MORPHD_STAT_ADD(st, rate_limited, 1);
    return false;
}

void morphd_stats_release(morphd_stats_t *st, const unsigned char *key)
{
    morphd_shm_lock(&st->lock);
    MORPHD_STAT_SUB(st, connections_open, 1);
    if (st->slot_open[morphd_stats_slot] > 0)
        st->slot_open[morphd_stats_slot]--;
    if (key != NULL) {
        for (struct source_count **p = bucket(st, key); *p; p = &(*p)->next)
            if (memcmp((*p)->addr, key, 16) == 0) {
                if ((*p)->by_slot[morphd_stats_slot] > 0)
                    (*p)->by_slot[morphd_stats_slot]--;
                if (--(*p)->open == 0) { /* keep the table small */
                    struct source_count *dead = *p;
                    *p = dead->next;
                    morphd_shm_free(dead);
                }
                break;
            }
    }
    morphd_shm_unlock(&st->lock);
}

void morphd_stats_pending(morphd_stats_t *st, int delta)
{
    morphd_shm_lock(&st->lock);
    if (delta > 0) {
        MORPHD_STAT_ADD(st, messages_pending, delta);
        st->slot_pending[morphd_stats_slot] += (uint64_t)delta;
    } else {
        MORPHD_STAT_SUB(st, messages_pending, -delta);
        st->slot_pending[morphd_stats_slot] -= (uint64_t)-delta;
    }
    morphd_shm_unlock(&st->lock);
}

void morphd_stats_forget_slot(morphd_stats_t *const *head, unsigned slot)
{
    if (slot >= stats_slots)
        return;
    morphd_shm_lock(registry_lock);
    for (morphd_stats_t *st = *head; st != NULL; st = st->next) {
        morphd_shm_lock(&st->lock);
        MORPHD_STAT_SUB(st, connections_open, st->slot_open[slot]);
        MORPHD_STAT_SUB(st, messages_pending, st->slot_pending[slot]);
        st->slot_open[slot] = st->slot_pending[slot] = 0;
        for (size_t i = 0; i < sizeof st->sources / sizeof *st->sources; i++)
            for (struct source_count **p = &st->sources[i]; *p;) {
                struct source_count *c = *p;
                c->open -= c->by_slot[slot];
                c->by_slot[slot] = 0;
                if (c->open == 0) {
                    *p = c->next;
                    morphd_shm_free(c);
                } else {
                    p = &c->next;
                }
            }
        morphd_shm_unlock(&st->lock);
    }
    morphd_shm_unlock(registry_lock);
}

morphd_plugin_stats_t *morphd_stats_plugin(morphd_stats_t *st,
                                           const char *name,
                                           unsigned n_workers)
{
    morphd_shm_lock(registry_lock);
    morphd_plugin_stats_t **tail = &st->plugins, *p;
    for (p = st->plugins; p != NULL; tail = &p->next, p = p->next)
        if (strcmp(p->name, name) == 0)
            break;
    if (p == NULL && (p = morphd_shm_calloc(1, sizeof *p)) != NULL) {
        p->name = morphd_shm_strdup(name);
        p->n_workers = n_workers;
        /* a cache line of its own per worker: no false sharing */
        p->per_worker = calloc_lines(n_workers * sizeof *p->per_worker,
                                     &p->per_worker_block);
        if (p->name == NULL || p->per_worker == NULL) {
            morphd_shm_free(p->name);
            morphd_shm_free(p->per_worker_block);
            morphd_shm_free(p);
            p = NULL;
        } else {
            *tail = p;
        }
    }
    if (p != NULL && p->n_workers < n_workers)
        p = NULL; /* the worker count never grows at run time */
    morphd_shm_unlock(registry_lock);
    return p;
}

morphd_plugin_counter_t *morphd_stats_counter(morphd_plugin_stats_t *ps,
                                              const char *name,
                                              const char *help)
{
    morphd_shm_lock(registry_lock);
    morphd_plugin_counter_t *c;
    for (c = ps->counters; c != NULL; c = c->next)
        if (strcmp(c->name, name) == 0)
            break;
    if (c == NULL && ps->n_counters < MORPHD_PLUGIN_COUNTERS_MAX &&
        strlen(name) < sizeof c->name &&
        (c = morphd_shm_calloc(1, sizeof *c)) != NULL) {
        strcpy(c->name, name);
        c->help = help ? morphd_shm_strdup(help) : NULL;
        c->next = ps->counters;
        ps->counters = c;
        ps->n_counters++;
    }
    morphd_shm_unlock(registry_lock);
    return c;
}

/* One plugin's metrics summed over its workers. */
typedef struct plugin_sum {
    uint64_t calls, failures, time_ns;
    uint64_t hist[MORPHD_HIST_BUCKETS];     /* the calls */
    uint64_t msg_hist[MORPHD_HIST_BUCKETS]; /* the ended messages */
    uint64_t msgs, msg_ns;
} plugin_sum_t;

static void sum_plugin(const morphd_plugin_stats_t *p, plugin_sum_t *s)
{
    memset(s, 0, sizeof *s);
    for (unsigned w = 0; w < p->n_workers; w++) {
        morphd_plugin_metrics_t *m = &p->per_worker[w];
        /* the deferred calls first (acquire): the totals they are part of
         * are then at least as new, so the differences hold */
        uint64_t dcall[MORPHD_HIST_BUCKETS];
        for (unsigned k = 0; k < MORPHD_HIST_BUCKETS; k++)
            dcall[k] = __atomic_load_n(&m->deferred_call[k], __ATOMIC_ACQUIRE);
        uint64_t dcall_ns = __atomic_load_n(&m->deferred_call_ns, __ATOMIC_ACQUIRE);
        uint64_t t = morphd_metric_get(m->time_ns);
        s->failures += morphd_metric_get(m->failures);
        s->time_ns += t;
        s->msg_ns += t - dcall_ns + morphd_metric_get(m->deferred_msg_ns);
        for (unsigned k = 0; k < MORPHD_HIST_BUCKETS; k++) {
            uint64_t h = morphd_metric_get(m->hist[k]);
            s->hist[k] += h;
            s->calls += h;
            /* a message's bucket: its call's, unless it was deferred */
            uint64_t mh = h - dcall[k] + morphd_metric_get(m->deferred_msg[k]);
            s->msg_hist[k] += mh;
            s->msgs += mh;
        }
    }
}

/* The upper bound, in microseconds, of the bucket holding quantile q
 * (a bound within a factor of two; 0 when there were no calls). */
static double quantile_le_us(const plugin_sum_t *s, double q)
{
    uint64_t total = 0, seen = 0;
    for (unsigned k = 0; k < MORPHD_HIST_BUCKETS; k++)
        total += s->hist[k];
    if (total == 0)
        return 0;
    for (unsigned k = 0; k < MORPHD_HIST_BUCKETS; k++) {
        seen += s->hist[k];
        if ((double)seen >= q * (double)total) {
            uint64_t b = morphd_hist_bound_ns(k);
            return b ? (double)b / 1000.0
                     : (double)(MORPHD_HIST_FIRST_NS << (k - 1)) / 1000.0;
        }
    }
    return 0;
}

/* The same sums as the messages see them (a deferred one's wait in): what
 * `morph stats` shows of latency, as it always has; Prometheus has both. */
static plugin_sum_t message_view(const plugin_sum_t *s)
{
    plugin_sum_t m = *s;
    memcpy(m.hist, s->msg_hist, sizeof m.hist);
    m.time_ns = s->msg_ns;
    m.calls = s->msgs;
    return m;
}

#define PUT(...)                                                               \
    do {                                                                       \
        if (morphd_buf_printf(out, __VA_ARGS__) != 0)                          \
            rc = -1;                                                           \
    } while (0)

static int plugins_json(const morphd_stats_t *st, morphd_buf_t *out)
{
    int rc = 0;
    PUT(",\"plugins\":[");
    for (const morphd_plugin_stats_t *p = st->plugins; p; p = p->next) {
        plugin_sum_t call;
        sum_plugin(p, &call);
        /* latency per message (a deferred one's wait in), then per call */
        plugin_sum_t s = message_view(&call);
        PUT("%s{\"name\":\"%s\",\"calls\":%llu,\"failures\":%llu,"
            "\"time_us\":%llu,\"mean_us\":%.3f,\"p50_us_le\":%.3f,"
            "\"p99_us_le\":%.3f,\"call_time_us\":%llu,\"call_p99_us_le\":%.3f,"
            "\"histogram\":[",
            p == st->plugins ? "" : ",", p->name,
            (unsigned long long)call.calls, (unsigned long long)call.failures,
            (unsigned long long)(s.time_ns / 1000),
            s.calls ? (double)s.time_ns / 1000.0 / (double)s.calls : 0.0,
            quantile_le_us(&s, 0.5), quantile_le_us(&s, 0.99),
            (unsigned long long)(call.time_ns / 1000),
            quantile_le_us(&call, 0.99));
        /* cumulative, as Prometheus has it, up to the last non-empty one */
        unsigned last = 0;
        for (unsigned k = 0; k < MORPHD_HIST_BUCKETS; k++)
            if (s.hist[k])
                last = k + 1;
        uint64_t cum = 0;
        for (unsigned k = 0; k < last; k++) {
            cum += s.hist[k];
            uint64_t b = morphd_hist_bound_ns(k);
            if (b)
                PUT("%s{\"le_us\":%.3f,\"count\":%llu}", k ? "," : "",
                    (double)b / 1000.0, (unsigned long long)cum);
            else
                PUT("%s{\"le_us\":\"+Inf\",\"count\":%llu}", k ? "," : "",
                    (unsigned long long)cum);
        }
        PUT("],\"counters\":{");
        /* registration order: the list is newest first */
        size_t n = 0;
        for (const morphd_plugin_counter_t *c = p->counters; c; c = c->next)
            n++;
        for (size_t i = n; i-- > 0;) {
            const morphd_plugin_counter_t *c = p->counters;
            for (size_t j = 0; j < i; j++)
                c = c->next;
            PUT("%s\"%s\":%llu", i + 1 == n ? "" : ",", c->name,
                (unsigned long long)__atomic_load_n(&c->value,
                                                    __ATOMIC_RELAXED));
        }
        PUT("}}");
    }
    PUT("]");
    return rc;
}

static int plugins_table(morphd_stats_t *head, morphd_buf_t *out)
{
    int rc = 0;
    bool any = false;
    for (morphd_stats_t *st = head; st != NULL; st = st->next)
        any |= st->plugins != NULL;
    if (!any)
        return 0;
    PUT("\n%-32s %12s %9s %12s %9s %10s\n", "service/plugin", "calls",
        "failures", "time_us", "mean_us", "p99_us<=");
    for (morphd_stats_t *st = head; st != NULL; st = st->next)
        for (morphd_plugin_stats_t *p = st->plugins; p; p = p->next) {
            plugin_sum_t call;
            sum_plugin(p, &call);
            plugin_sum_t s = message_view(&call); /* per message */
            char who[160];
            snprintf(who, sizeof who, "%s/%s", st->name, p->name);
            PUT("%-32s %12llu %9llu %12llu %9.2f %10.3f\n", who,
                (unsigned long long)call.calls, (unsigned long long)call.failures,
                (unsigned long long)(s.time_ns / 1000),
                s.calls ? (double)s.time_ns / 1000.0 / (double)s.calls : 0.0,
                quantile_le_us(&s, 0.99));
            for (morphd_plugin_counter_t *c = p->counters; c; c = c->next)
                PUT("  %-30s %12llu  (counter%s%s)\n", c->name,
                    (unsigned long long)__atomic_load_n(&c->value,
                                                        __ATOMIC_RELAXED),
                    c->help ? ": " : "", c->help ? c->help : "");
        }
    return rc;
}

int morphd_stats_format(morphd_stats_t *head, bool json, morphd_buf_t *out)
{
    int rc = 0;
    morphd_shm_lock(registry_lock);
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
            if (plugins_json(st, out) != 0)
                rc = -1;
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
        if (plugins_table(head, out) != 0)
            rc = -1;
    }
    morphd_shm_unlock(registry_lock);
    return rc;
}
/* A label value with \\, \" and \n escaped (names here are plain; a
 * plugin's counter name is the plugin's to choose). */
static int put_label(morphd_buf_t *out, const char *v)
{
    int rc = 0;
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            PUT("\\%c", *v);
        else if (*v == '\n')
            PUT("\\n");
        else
            PUT("%c", *v);
    }
    return rc;
}

static bool is_gauge(const char *counter)
{
    return strcmp(counter, "connections_open") == 0 ||
           strcmp(counter, "messages_pending") == 0;
}

/* A plugin's or counter's name as part of a metric name: [a-z0-9_] as
 * they are, anything else as '_'. */
static int put_name_part(morphd_buf_t *out, const char *v)
{
    int rc = 0;
    for (; *v; v++)
        PUT("%c", (*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') ||
                          (*v >= 'A' && *v <= 'Z') || *v == '_'
                      ? *v
                      : '_');
    return rc;
}

/* "morph_plugin_PLUGIN_COUNTER_total": the family of plugin `p`'s own
 * counter `c`. */
static int put_counter_family(morphd_buf_t *out, const morphd_plugin_stats_t *p,
                              const morphd_plugin_counter_t *c)
{
    int rc = 0;
    PUT("morph_plugin_");
    rc |= put_name_part(out, p->name);
    PUT("_");
    rc |= put_name_part(out, c->name);
    PUT("_total");
    return rc;
}

/* Whether plugin `p`'s counter `c` is the first of its (plugin, counter)
 * family in the registry: families are written once, with every
 * service's sample, at their first sight. */
static bool first_of_family(morphd_stats_t *head, const morphd_plugin_stats_t *p,
                            const morphd_plugin_counter_t *c)
{
    for (morphd_stats_t *st = head; st != NULL; st = st->next)
        for (morphd_plugin_stats_t *q = st->plugins; q; q = q->next)
            for (const morphd_plugin_counter_t *d = q->counters; d; d = d->next) {
                if (q == p && d == c)
                    return true;
                if (strcmp(q->name, p->name) == 0 && strcmp(d->name, c->name) == 0)
                    return false;
            }
    return true;
}

/* A plugin's own counters (morph_host_t.counter): one family each,
 * morph_plugin_PLUGIN_COUNTER_total{service=...}, with the help text the
 * plugin gave it. (One family for all, labelled by counter, could carry no
 * help of the plugin's, and its name said 'counter', which Prometheus'
 * lint refuses.) */
static int prometheus_own_counters(morphd_stats_t *head, morphd_buf_t *out)
{
    int rc = 0;
    for (morphd_stats_t *st = head; st != NULL; st = st->next)
        for (morphd_plugin_stats_t *p = st->plugins; p; p = p->next)
            for (const morphd_plugin_counter_t *c = p->counters; c; c = c->next) {
                if (!first_of_family(head, p, c))
                    continue;
                PUT("# HELP ");
                rc |= put_counter_family(out, p, c);
                /* help is one line: a newline or backslash escaped */
                const char *h = c->help && c->help[0] ? c->help : NULL;
                if (h == NULL)
                    PUT(" counter %s of plugin %s", c->name, p->name);
                else
                    PUT(" ");
                for (; h && *h; h++)
                    if (*h == '\\')
                        PUT("\\\\");
                    else if (*h == '\n')
                        PUT("\\n");
                    else
                        PUT("%c", *h);
                PUT("\n# TYPE ");
                rc |= put_counter_family(out, p, c);
                PUT(" counter\n");
                for (morphd_stats_t *st2 = head; st2 != NULL; st2 = st2->next)
                    for (morphd_plugin_stats_t *q = st2->plugins; q; q = q->next)
                        for (const morphd_plugin_counter_t *d = q->counters; d;
                             d = d->next) {
                            if (strcmp(q->name, p->name) != 0 ||
                                strcmp(d->name, c->name) != 0)
                                continue;
                            rc |= put_counter_family(out, p, c);
                            PUT("{service=\"");
                            rc |= put_label(out, st2->name);
                            PUT("\"} %llu\n", (unsigned long long)__atomic_load_n(
                                                  &d->value, __ATOMIC_RELAXED));
                        }
            }
    return rc;
}

static int prometheus_plugins(morphd_stats_t *head, morphd_buf_t *out)
{
    int rc = 0;
    static const struct {
        const char *name, *type, *help;
    } families[] = {
        {"morph_plugin_calls_total", "counter",
         "messages a plugin was called for"},
        {"morph_plugin_failures_total", "counter",
         "messages a plugin failed"},
        {"morph_plugin_duration_seconds", "histogram",
         "time in a plugin's transform call (for a message it defers, until "
         "the call returns)"},
        {"morph_plugin_message_duration_seconds", "histogram",
         "from a plugin's call to the end of its message: a deferred "
         "message's wait included"},
    };
    for (size_t f = 0; f < sizeof families / sizeof *families; f++) {
        PUT("# HELP %s %s\n# TYPE %s %s\n", families[f].name,
            families[f].help, families[f].name, families[f].type);
        for (morphd_stats_t *st = head; st != NULL; st = st->next)
            for (morphd_plugin_stats_t *p = st->plugins; p; p = p->next) {
                plugin_sum_t s;
                sum_plugin(p, &s);
                char labels[256];
                snprintf(labels, sizeof labels, "service=\"%s\",plugin=\"%s\"",
                         st->name, p->name);
                if (f == 0)
                    PUT("%s{%s} %llu\n", families[f].name, labels,
                        (unsigned long long)s.calls);
                else if (f == 1)
                    PUT("%s{%s} %llu\n", families[f].name, labels,
                        (unsigned long long)s.failures);
                else if (f == 2 || f == 3) {
                    const char *fam = families[f].name;
                    const uint64_t *h = f == 2 ? s.hist : s.msg_hist;
                    uint64_t cum = 0;
                    for (unsigned k = 0; k + 1 < MORPHD_HIST_BUCKETS; k++) {
                        cum += h[k];
                        PUT("%s_bucket{%s,le=\"%g\"} %llu\n", fam, labels,
                            (double)morphd_hist_bound_ns(k) / 1e9,
                            (unsigned long long)cum);
                    }
                    uint64_t n = f == 2 ? s.calls : s.msgs;
                    PUT("%s_bucket{%s,le=\"+Inf\"} %llu\n", fam, labels,
                        (unsigned long long)n);
                    PUT("%s_sum{%s} %.9f\n", fam, labels,
                        (double)(f == 2 ? s.time_ns : s.msg_ns) / 1e9);
                    PUT("%s_count{%s} %llu\n", fam, labels,
                        (unsigned long long)n);
                }
            }
    }
    if (prometheus_own_counters(head, out) != 0)
        rc = -1;
    return rc;
}

int morphd_stats_prometheus(morphd_stats_t *const *registry, morphd_buf_t *out)
{
    int rc = 0;
    morphd_shm_lock(registry_lock);
    morphd_stats_t *head = *registry;
#define MORPHD_STATS_PROM(f, help)                                             \
    PUT("# HELP morph_%s%s %s\n# TYPE morph_%s%s %s\n", #f,                   \
        is_gauge(#f) ? "" : "_total", help, #f, is_gauge(#f) ? "" : "_total",  \
        is_gauge(#f) ? "gauge" : "counter");                                   \
    for (morphd_stats_t *st = head; st != NULL; st = st->next)                 \
        PUT("morph_%s%s{service=\"%s\"} %llu\n", #f,                          \
            is_gauge(#f) ? "" : "_total", st->name,                            \
            (unsigned long long)MORPHD_STAT_GET(st, f));
    MORPHD_STATS_COUNTERS(MORPHD_STATS_PROM)
#undef MORPHD_STATS_PROM
    if (prometheus_plugins(head, out) != 0)
        rc = -1;
    morphd_shm_unlock(registry_lock);
    return rc;
}
#undef PUT

void morphd_stats_log(morphd_stats_t *head)
{
    morphd_buf_t table = MORPHD_BUF_INIT;
    if (morphd_stats_format(head, false, &table) != 0 ||
        morphd_buf_append(&table, "", 1) != 0) {
        morphd_log(MORPH_LOG_WARN, "stats (SIGUSR1): out of memory");
        morphd_buf_free(&table);
        return;
    }
    morphd_log(MORPH_LOG_INFO, "stats (SIGUSR1):");
    char *save = NULL;
    for (char *line = strtok_r((char *)table.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        morphd_log(MORPH_LOG_INFO, "  %s", line);
    morphd_buf_free(&table);
}
