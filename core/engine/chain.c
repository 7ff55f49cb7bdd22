/*
 * chain.c -- running transform chains (chain.h): the host side of
 * morph_out_t (growing a plugin's output within the service's limit,
 * recording why a plugin failed a message, deferring it) and timing each
 * plugin call. A message that stays in flight is a job (jobs.c).
 */
#include "engine/chain.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http.h"
#include "engine/host.h"
#include "base/log.h"
#include "engine/options.h"

__thread const morphd_stage_t *morphd_running_stage MORPHD_TLS_FAST;


void morphd_scratch_free(morphd_scratch_t *scratch)
{
    morphd_buf_free(&scratch->buf[0]);
    morphd_buf_free(&scratch->buf[1]);
}

void morphd_chain_env_init(morphd_chain_env_t *env, uv_loop_t *loop,
                           unsigned worker, unsigned n_workers)
{
    memset(env, 0, sizeof *env);
    env->loop = loop;
    env->worker = worker;
    env->n_workers = n_workers;
#if defined(MORPH_SANITIZE) || defined(__SANITIZE_ADDRESS__)
    env->guard_output = true;
#endif
    if (loop != NULL) {
        uv_idle_init(loop, &env->idle);
        env->idle.data = env;
        env->idle_open = true;
    }
}

void morphd_chain_env_close(morphd_chain_env_t *env)
{
    if (env->idle_open) {
        env->idle_open = false;
        uv_close((uv_handle_t *)&env->idle, NULL);
    }
}

void morphd_chain_env_free(morphd_chain_env_t *env)
{
    while (env->free_jobs != NULL) {
        morphd_job_t *job = env->free_jobs;
        env->free_jobs = job->ready_next;
        free(job);
    }
    env->n_free_jobs = 0;
    morphd_scratch_free(&env->scratch);
    morphd_buf_free(&env->done_buf);
}

/* --- building -------------------------------------------------------------- */

static void chain_destroy(morphd_chain_t *chain)
{
    if (chain->codec != NULL) {
        if (chain->codec->plugin->desc->destroy != NULL)
            chain->codec->plugin->desc->destroy(chain->codec->instance);
        morphd_host_stage_done(chain->codec);
    }
    for (size_t i = chain->n; i-- > 0;) {
        morphd_stage_t *st = &chain->stages[i];
        if (st->plugin->desc->destroy != NULL)
            st->plugin->desc->destroy(st->instance);
        morphd_host_stage_done(st);
    }
    if (chain->stats != NULL)
        morphd_stats_put(chain->stats_head, chain->stats);
    free(chain->service);
    free(chain);
}

static void chain_unref(morphd_chain_t *chain)
{
    if (__atomic_sub_fetch(&chain->refs, 1, __ATOMIC_ACQ_REL) == 0)
        chain_destroy(chain);
}

void morphd_chain_release(morphd_chain_t *chain)
{
    if (chain != NULL)
        chain_unref(chain);
}

/* Creates stage `st` of `chain`: an instance of plugin `p` with its
 * options. Returns 0, or -1 with the reason in err (nothing to undo but
 * morphd_host_stage_done when the stage got that far: *hosted). */
static int create_stage(morphd_chain_t *chain, morphd_stage_t *st,
                        const morphd_plugin_t *p,
                        const morphd_plugin_opts_t *opts, bool *hosted,
                        char *err, size_t err_size)
{
    const morph_plugin_t *d = p->desc;
    morphd_chain_env_t *env = chain->env;
    *hosted = false;
    st->plugin = p;
    st->chain = chain;
    st->flags = d->flags;
    st->abi1 = p->abi == 1;
    st->pstats = morphd_stats_plugin(chain->stats, p->name,
                                     env->n_workers ? env->n_workers : 1);
    if (st->pstats == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    st->metrics = &st->pstats->per_worker[env->worker];
    morphd_host_stage_init(st);
    *hosted = true;

    /* the options meant for this plugin, normalised when declared */
    morphd_option_list_t list;
    if (morphd_options_for(p, opts, &list, err, err_size) != 0)
        return -1;
    if (d->create != NULL) {
        char why[256] = "";
        st->creating = true;
        int rc = d->create(&st->host, list.v, list.n, &st->instance, why,
                           sizeof why);
        st->creating = false;
        if (rc != MORPH_OK) {
            snprintf(err, err_size, "plugin '%s' (%s): %s", p->name,
                     p->path, why[0] ? why : "create failed without a reason");
            morphd_option_list_free(&list);
            return -1;
        }
    } else if (list.n > 0 && !p->declares_options) {
        snprintf(err, err_size, "plugin '%s' takes no options, but '%s.%s' "
                 "is set", p->name, p->name, list.v[0].key);
        morphd_option_list_free(&list);
        return -1;
    }
    morphd_option_list_free(&list);
    return 0;
}

int morphd_chain_create(morphd_plugin_t *const *plugins, size_t n,
                        const morphd_plugin_t *codec,
                        const morphd_plugin_opts_t *opts, const char *service,
                        morphd_stats_t **stats_head, morphd_chain_env_t *env,
                        size_t out_limit, morphd_chain_t **chainp, char *err,
                        size_t err_size)
{
    morphd_clock_init();
    morphd_chain_t *chain =
        calloc(1, sizeof *chain + (n + 1) * sizeof chain->stages[0]);
    if (chain == NULL ||
        (chain->service = strdup(service)) == NULL ||
        (chain->stats = morphd_stats_get(stats_head, service, env->n_workers)) == NULL) {
        if (chain != NULL)
            free(chain->service);
        free(chain);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    chain->refs = 1;
    chain->stats_head = stats_head;
    chain->chunk_safe = true;
    chain->out_limit = out_limit;
    chain->env = env;

    bool hosted;
    for (size_t i = 0; i < n; i++) {
        morphd_stage_t *st = &chain->stages[i];
        if (create_stage(chain, st, plugins[i], opts, &hosted, err,
                         err_size) != 0) {
            chain->n = i;
            goto fail_stage;
        }
        chain->n = i + 1; /* destroy() runs only on a created instance */
        const morph_plugin_t *d = st->plugin->desc;
        if (!(st->flags & MORPH_PLUGIN_CHUNK_SAFE))
            chain->chunk_safe = false;
        if (d->conn_open != NULL || st->plugin->conn_open2 != NULL)
            chain->opens_conns = true;
        if (d->conn_open != NULL || st->plugin->conn_open2 != NULL ||
            d->conn_close != NULL)
            chain->keeps_state = true;
        if (st->flags & MORPH_PLUGIN_LINE_END)
            chain->line_end = true;
    }
    /* the codec plugin (framing = NAME): a stage after the chain's, which
     * the transports call (codec.h), not the chain */
    if (codec != NULL) {
        if (create_stage(chain, &chain->stages[n], codec, opts, &hosted, err,
                         err_size) != 0) {
            if (hosted)
                morphd_host_stage_done(&chain->stages[n]);
            chain_destroy(chain);
            return -1;
        }
        chain->codec = &chain->stages[n];
    }
    *chainp = chain;
    return 0;

fail_stage:
    if (hosted)
        morphd_host_stage_done(&chain->stages[chain->n]);
    chain_destroy(chain);
    return -1;
}

/* --- connections ------------------------------------------------------------- */

/* Whether the stage opens its connections (conn_open or conn_open2). */
static bool opens(const morphd_stage_t *st)
{
    return st->plugin->conn_open2 != NULL || st->plugin->desc->conn_open != NULL;
}

int morphd_chain_conn_open(const morphd_chain_t *chain, const morphd_conn_t *conn,
                           void **states, char *err, size_t err_size)
{
    for (size_t i = 0; i < chain->n; i++) {
        const morphd_stage_t *st = &chain->stages[i];
        states[i] = NULL;
        if (!opens(st))
            continue;
        int rc = st->plugin->conn_open2 != NULL
                     ? st->plugin->conn_open2(st->instance,
                                              (const morph_conn_t *)conn,
                                              &states[i])
                     : st->plugin->desc->conn_open(st->instance, &states[i]);
        if (rc != MORPH_OK) {
            snprintf(err, err_size, "plugin %s: refused the connection",
                     st->plugin->name);
            /* close the stages already opened, newest first */
            states[i] = NULL;
            while (i-- > 0)
                if (chain->stages[i].plugin->desc->conn_close != NULL &&
                    (opens(&chain->stages[i]) || states[i] != NULL))
                    chain->stages[i].plugin->desc->conn_close(
                        chain->stages[i].instance, states[i]);
            return -1;
        }
    }
    return 0;
}

int morphd_chain_codec_open(const morphd_chain_t *chain,
                            const morphd_conn_t *conn, void **state, char *err,
                            size_t err_size)
{
    const morphd_stage_t *st = chain->codec;
    *state = NULL;
    if (!opens(st))
        return 0;
    int rc = st->plugin->conn_open2 != NULL
                 ? st->plugin->conn_open2(st->instance,
                                          (const morph_conn_t *)conn, state)
                 : st->plugin->desc->conn_open(st->instance, state);
    if (rc == MORPH_OK)
        return 1;
    *state = NULL;
    snprintf(err, err_size, "plugin %s (the codec): refused the connection",
             st->plugin->name);
    return -1;
}

/* A codec plugin's decode() or encode(), marked for the watchdog and
 * counted in its metrics as a transform's call is (morphd_chain_run). */
static uint64_t codec_call_begin(void *watch)
{
    const morphd_stage_t *st = watch;
    uint64_t t = morphd_ticks();
    morphd_running_stage = st;
    __atomic_store_n(&st->chain->env->calling, st, __ATOMIC_RELAXED);
    __atomic_store_n(&st->chain->env->calling_since, t ? t : 1,
                     __ATOMIC_RELEASE);
    return t;
}

static void codec_call_end(void *watch, uint64_t since, bool failed)
{
    const morphd_stage_t *st = watch;
    __atomic_store_n(&st->chain->env->calling_since, 0, __ATOMIC_RELEASE);
    morphd_running_stage = NULL;
    morphd_metrics_record(st->metrics, morphd_ticks() - since, failed);
}

void morphd_chain_codec_bind(const morphd_chain_t *chain, morphd_codec_t *c,
                             morphd_buf_t *scratch)
{
    const morphd_stage_t *st = chain->codec;
    morphd_codec_bind(c, st->plugin->codec, st->instance, scratch);
    c->call_begin = codec_call_begin;
    c->call_end = codec_call_end;
    c->watch = (void *)st;
}

void morphd_chain_codec_close(const morphd_chain_t *chain, void *state)
{
    const morph_plugin_t *d = chain->codec->plugin->desc;
    if (d->conn_close != NULL)
        d->conn_close(chain->codec->instance, state);
}

void morphd_chain_conn_close(const morphd_chain_t *chain, void **states)
{
    for (size_t i = chain->n; i-- > 0;) {
        const morph_plugin_t *d = chain->stages[i].plugin->desc;
        /* conn_open made a state (even NULL) to close; a lazy plugin's
         * conn_close sees only states it set */
        if (d->conn_close != NULL && (opens(&chain->stages[i]) || states[i] != NULL))
            d->conn_close(chain->stages[i].instance, states[i]);
    }
}

/* --- morph_out_t during a call on the loop ---------------------------------- */

/* What stays the same for every stage of one run. */
typedef struct run_ctx {
    morphd_chain_t *chain;
    morphd_conn_t *conn;
    const morphd_frame_t *frame;
} run_ctx_t;

typedef struct out_ctx {
    const run_ctx_t *run;
    size_t stage;
    morphd_buf_t *buf;   /* where this stage's output goes ... */
    size_t base;         /* ... from this offset */
    uint32_t flags;      /* the message's */
    size_t in_len;       /* the stage's input: a pending out keeps cap >= it */
    const char *failure; /* set by fail() or a refused reserve() */
    morphd_job_t *job;   /* set by defer() */
    char reason[256];
} out_ctx_t;

/* --- the guard after out->cap (morphd_chain_env_t.guard_output) --------- */

#if defined(__SANITIZE_ADDRESS__) || defined(MORPH_SANITIZE)
#include <sanitizer/asan_interface.h>
#define GUARD_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define GUARD_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define GUARD_POISON(p, n) ((void)(p), (void)(n))
#define GUARD_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static const unsigned char canary[MORPHD_OUT_GUARD] = {
    0xde, 0xad, 0xbe, 0xef, 0x6d, 0x6f, 0x72, 0x70,
    0x68, 0x21, 0xca, 0xfe, 0xba, 0xbe, 0x5a, 0xa5};

static void guard_set(unsigned char *end)
{
    memcpy(end, canary, sizeof canary);
    GUARD_POISON(end, sizeof canary);
}

/* Whether the guard at `end` is intact; lifts its poison either way. */
static bool guard_clear(unsigned char *end)
{
    GUARD_UNPOISON(end, sizeof canary);
    return memcmp(end, canary, sizeof canary) == 0;
}

static int out_reserve(morph_out_t *out, size_t min_cap)
{
    out_ctx_t *x = out->host_private;
    if (min_cap <= out->cap)
        return MORPH_OK;
    bool guarded = x->run->chain->env->guard_output;
    if (guarded && !guard_clear(out->data + out->cap)) {
        snprintf(x->reason, sizeof x->reason, "wrote past its output buffer "
                 "(cap %zu) before asking for more", out->cap);
        x->failure = x->reason;
        return MORPH_ERROR;
    }
    if (min_cap > x->run->chain->out_limit) {
        snprintf(x->reason, sizeof x->reason,
                 "output of %zu bytes exceeds the limit of %zu", min_cap,
                 x->run->chain->out_limit);
        x->failure = x->reason;
        return MORPH_ERROR;
    }
    size_t guard = guarded ? MORPHD_OUT_GUARD : 0;
    if (morphd_buf_reserve(x->buf, x->base + min_cap + guard) != 0) {
        snprintf(x->reason, sizeof x->reason, "out of memory");
        x->failure = x->reason;
        if (guarded)
            guard_set(out->data + out->cap);
        return MORPH_ERROR;
    }
    out->data = x->buf->data + x->base;
    out->cap = x->buf->cap - x->base - guard;
    if (guarded)
        guard_set(out->data + out->cap);
    return MORPH_OK;
}

const morphd_frame_t *morphd_chain_out_frame(const morph_out_t *out)
{
    if (out == NULL)
        return NULL;
    if (out->reserve == out_reserve)
        return ((const out_ctx_t *)out->host_private)->run->frame;
    return morphd_job_out_frame(out);
}

static int out_fail(morph_out_t *out, const char *reason)
{
    out_ctx_t *x = out->host_private;
    if (x->failure == NULL) {
        snprintf(x->reason, sizeof x->reason, "%s", reason ? reason : "failed");
        x->failure = x->reason;
    }
    return MORPH_ERROR;
}

/* --- running ----------------------------------------------------------------- */

static morph_pending_t *out_defer(morph_out_t *out, void *user)
{
    out_ctx_t *x = out->host_private;
    morphd_chain_t *chain = x->run->chain;
    morphd_conn_t *conn = x->run->conn;
    morphd_stage_t *st = &chain->stages[x->stage];
    if (x->job != NULL || chain->env->loop == NULL ||
        st->plugin->cancel == NULL || (st->flags & MORPH_PLUGIN_BLOCKING) ||
        conn->ops->job_admit == NULL || conn->ops->job_admit(conn, out->cap) != 0)
        return NULL;
    morphd_job_t *job = morphd_job_new(chain, conn, x->stage, x->flags,
                                x->run->frame);
    if (job == NULL)
        return NULL;
    if (morphd_job_buf_reserve(job, out->len > x->in_len ? out->len : x->in_len) !=
        0) {
        morphd_job_free(job);
        return NULL;
    }
    memcpy(job->buf.data, out->data, out->len);
    job->buf.len = out->len;
    job->out.data = job->buf.data;
    job->out.len = out->len;
    job->out.cap = job->buf.cap;
    job->out.reply = out->reply;
    job->pub.user = user;
    job->state = MORPHD_JOB_DEFERRED;
    job->in_call = true;
    x->job = job;
    return &job->pub;
}

static void fail_result(morphd_result_t *r, const morphd_stage_t *st,
                        const char *why)
{
    r->status = MORPHD_RUN_FAILED;
    /* "plugin NAME wrote past its output buffer (cap N)" reads as one */
    snprintf(r->error, sizeof r->error, "plugin %s%s%s", st->plugin->name,
             strncmp(why, "wrote past", 10) == 0 ? " " : ": ", why);
}

/* Starts stage `i` on the thread pool with input in[0..len). */
static void offload(morphd_chain_t *chain, morphd_conn_t *conn, size_t i,
                    const unsigned char *in, size_t len, uint32_t flags,
                    const morphd_frame_t *frame, uint64_t now,
                    morphd_result_t *r)
{
    morphd_stage_t *st = &chain->stages[i];
    if (conn->ops->job_admit == NULL || conn->ops->job_admit(conn, len) != 0) {
        fail_result(r, st, "too many messages in flight; not answered");
        morphd_metric_add(st->metrics->failures, 1);
        return;
    }
    morphd_job_t *job = morphd_job_new(chain, conn, i, flags, frame);
    if (job == NULL || morphd_buf_append(&job->in, in, len) != 0) {
        if (job != NULL)
            morphd_job_free(job);
        r->status = MORPHD_RUN_NOMEM;
        return;
    }
    job->state = MORPHD_JOB_RUNNING;
    job->t0 = now;
    job->work.data = job;
    /* what conn_info tells the plugin on the pool thread, taken now: the
     * transport's connection is the loop's to change and free */
    memset(&job->local, 0, sizeof job->local);
    if (conn->ops->addresses != NULL) {
        struct sockaddr_storage peer;
        memset(&peer, 0, sizeof peer);
        conn->ops->addresses(conn, &peer, &job->local);
        if (job->conn.peer == NULL && peer.ss_family != AF_UNSPEC) {
            memcpy(&job->peer, &peer, sizeof peer);
            job->conn.peer = (struct sockaddr *)&job->peer;
        }
    }
    job->conn.local = (struct sockaddr *)&job->local;
    if (job->conn.cred == NULL && conn->ops->credentials != NULL &&
        conn->ops->credentials(conn, &job->cred) == 0)
        job->conn.cred = &job->cred;
    job->offloaded = true;
    if (conn->ops->job_start(conn, job) != 0) {
        morphd_job_free(job);
        r->status = MORPHD_RUN_NOMEM;
        return;
    }
    /* morphd_job_work_done runs on this thread later, so the order is safe */
    if (uv_queue_work(chain->env->loop, &job->work, morphd_job_work_run, morphd_job_work_done) != 0) {
        job->offloaded = false; /* it never left the loop */
        job->state = MORPHD_JOB_FAILED;
        snprintf(job->reason, sizeof job->reason, "cannot start a pool thread");
        morphd_job_ready(job); /* the transport hears of it from the loop */
    }
    morphd_job_counted(job);
    r->status = MORPHD_RUN_PENDING;
    r->job = job;
}

/* What the chain does after a stage's call: stop here (the result is
 * set), end with the reply in dest, stop on MORPH_REPLY_NONE, or go on to
 * the next stage with the output held in scratch->buf[i & 1]. */
typedef enum stage_next {
    STAGE_RETURN,
    STAGE_DONE,
    STAGE_STOP,
    STAGE_NEXT,
} stage_next_t;

/* Stage i's call deferred its message (x->job) and returned rc after
 * t2 - *t ticks: the job starts (the message is pending), or it failed or
 * ended inside the call, whose output then goes on at once. A function of
 * its own: the common call, which does not defer, keeps its registers. */
__attribute__((noinline)) static stage_next_t
after_defer(morphd_chain_t *chain, morphd_conn_t *conn, morphd_stage_t *st,
            size_t i, bool last, int rc, out_ctx_t *x, uint64_t *t,
            uint64_t t2, uint64_t t_start, morphd_buf_t *dest, size_t base,
            morphd_result_t *r)
{
    morphd_scratch_t *scratch = &chain->env->scratch;
    morphd_job_t *job = x->job;
    job->in_call = false; /* from now on, done() queues it */
    if (rc != MORPH_OK && job->state == MORPHD_JOB_DEFERRED) {
        /* failed after deferring: the plugin's cancel() cleans up */
        st->plugin->cancel(st->instance, &job->pub);
        job->state = MORPHD_JOB_FAILED;
        if (job->reason[0] == '\0')
            snprintf(job->reason, sizeof job->reason, "%s",
                     x->failure ? x->failure
                                : "failed the message without a reason");
    }
    job->conn.states = conn->states; /* a state made in this call */
    if (job->state == MORPHD_JOB_DEFERRED && conn->ops->job_start(conn, job) != 0) {
        st->plugin->cancel(st->instance, &job->pub);
        job->state = MORPHD_JOB_FAILED;
        snprintf(job->reason, sizeof job->reason, "out of memory");
    }
    if (job->state == MORPHD_JOB_DEFERRED) {
        job->t0 = *t;
        /* the call now; the message when it ends (job_finish) */
        job->call_ticks = t2 > *t ? t2 - *t : 1;
        morphd_metrics_record_defer(st->metrics, job->call_ticks);
        morphd_job_counted(job);
        dest->len = base;
        r->status = MORPHD_RUN_PENDING;
        r->job = job;
        r->ns = morphd_ticks_to_ns(t2 - t_start);
        return STAGE_RETURN;
    }
    /* ended inside the call: go on with its output at once, and with what
     * it set of an HTTP response */
    morphd_http_exchange_take(morphd_http_exchange_of(x->run->frame),
                              morphd_http_exchange_of(&job->frame));
    morphd_metrics_record(st->metrics, t2 - *t, job->state == MORPHD_JOB_FAILED);
    *t = t2;
    if (job->state == MORPHD_JOB_FAILED) {
        fail_result(r, st, job->reason[0] ? job->reason : "failed");
        morphd_job_free(job);
        dest->len = base;
        return STAGE_RETURN;
    }
    r->reply |= job->out.reply;
    morphd_buf_t *hold = &scratch->buf[i & 1];
    hold->len = 0;
    if (morphd_buf_append(hold, job->buf.data, job->out.len) != 0) {
        morphd_job_free(job);
        dest->len = base;
        r->status = MORPHD_RUN_NOMEM;
        return STAGE_RETURN;
    }
    morphd_job_free(job);
    if (r->reply & MORPH_REPLY_NONE)
        return STAGE_STOP;
    if (last) {
        dest->len = base;
        if (morphd_buf_append(dest, hold->data, hold->len) != 0) {
            r->status = MORPHD_RUN_NOMEM;
            return STAGE_RETURN;
        }
        r->abi1_empty = st->abi1;
        return STAGE_DONE;
    }
    return STAGE_NEXT;
}

/* Past 100 lines on purpose: this is the loop every message of every
 * transport runs, one pass per stage, and make test-perf counts its
 * instructions. Its parts -- the call with its timing and guard, the
 * checks after it -- share a dozen locals that a split would pass through
 * memory on each stage; the rare paths are out of it already (offload,
 * after_defer, fail_result). */
void morphd_chain_run(morphd_chain_t *chain, morphd_conn_t *conn, size_t from,
                      const unsigned char *in, size_t len, uint32_t flags,
                      const morphd_frame_t *frame, morphd_buf_t *dest,
                      morphd_result_t *r)
{
    morphd_scratch_t *scratch = &chain->env->scratch;
    const size_t base = dest->len;
    const bool line_end = (flags & (MORPH_MSG_END | MORPH_MSG_CHUNK)) ==
                          MORPH_MSG_END;
    const unsigned char *data = in;
    size_t n = len;
    r->reply = 0;
    r->abi1_empty = false;
    r->frame = frame;
    r->ns = 0;
    r->len = 0;
    r->data = NULL;
    r->job = NULL;
    const run_ctx_t run = {chain, conn, frame};
    uint64_t t_start = morphd_ticks(), t = t_start;
    /* off in morphd: the guard after out->cap (morphd_chain_env_t) */
    const size_t guard = chain->env->guard_output ? MORPHD_OUT_GUARD : 0;

    if (from >= chain->n) { /* nothing left to run: the input is the reply */
        if (morphd_buf_append(dest, in, len) != 0) {
            r->status = MORPHD_RUN_NOMEM;
            return;
        }
        goto done;
    }
    for (size_t i = from; i < chain->n; i++) {
        morphd_stage_t *st = &chain->stages[i];
        bool last = i + 1 == chain->n;
        uint32_t f = flags;
        if (line_end && !(st->flags & MORPH_PLUGIN_LINE_END)) {
            if (n == 0) { /* nothing for this plugin at the end */
                if (last)
                    goto done;
                continue;
            }
            f = 0; /* a trailer from an earlier plugin is a message here */
        }
        if ((st->flags & MORPH_PLUGIN_BLOCKING) && chain->env->loop != NULL) {
            offload(chain, conn, i, data, n, f, frame, t, r);
            dest->len = base;
            return;
        }
        morphd_buf_t *buf = last ? dest : &scratch->buf[i & 1];
        size_t off = last ? base : 0;
        size_t want = n < 64 ? 64 : n;
        if (buf->cap < off + want + guard &&
            morphd_buf_reserve(buf, off + want + guard) != 0) {
            dest->len = base;
            r->status = MORPHD_RUN_NOMEM;
            return;
        }
        out_ctx_t x; /* reason[] is written only on failure */
        x.run = &run;
        x.stage = i;
        x.buf = buf;
        x.base = off;
        x.flags = f;
        x.in_len = n;
        x.failure = NULL;
        x.job = NULL;
        void *lazy = NULL;
        void **slot = conn->states ? &conn->states[i] : &lazy;
        morph_msg_t msg = {data, n, f, (uint32_t)sizeof msg,
                           (const morph_conn_t *)conn, slot};
        morph_out_t o = {buf->data + off, 0, buf->cap - off - guard,
                         out_reserve, out_fail, &x, (uint32_t)sizeof o, 0,
                         out_defer};
        if (guard)
            guard_set(o.data + o.cap);
        morphd_running_stage = st;
        __atomic_store_n(&chain->env->calling, st, __ATOMIC_RELAXED);
        /* (never 0, which says "no call": t | 1 moves it by a tick) */
        __atomic_store_n(&chain->env->calling_since, t | 1, __ATOMIC_RELEASE);
        int rc = st->plugin->desc->transform(st->instance, *slot, &msg, &o);
        __atomic_store_n(&chain->env->calling_since, 0, __ATOMIC_RELEASE);
        morphd_running_stage = NULL;
        if (guard && !guard_clear(o.data + o.cap) && x.failure == NULL) {
            snprintf(x.reason, sizeof x.reason, "wrote past its output "
                     "buffer (cap %zu)", o.cap);
            x.failure = x.reason;
            rc = MORPH_ERROR;
        }
        uint64_t t2 = morphd_ticks();
        if (lazy != NULL) { /* the plugin made its state now */
            void **states = conn->ops->states(conn);
            if (states != NULL) {
                states[i] = lazy;
                conn->states = states;
            } else if (st->plugin->desc->conn_close != NULL) {
                st->plugin->desc->conn_close(st->instance, lazy);
            }
        }
        if (x.job != NULL) { /* deferred: off the common path */
            stage_next_t next = after_defer(chain, conn, st, i, last, rc, &x,
                                            &t, t2, t_start, dest, base, r);
            if (next == STAGE_RETURN)
                return;
            if (next == STAGE_DONE)
                goto done;
            if (next == STAGE_STOP)
                break;
            data = scratch->buf[i & 1].data;
            n = scratch->buf[i & 1].len;
            continue;
        }
        bool failed = rc != MORPH_OK || x.failure != NULL || o.len > o.cap;
        morphd_metrics_record(st->metrics, t2 - t, failed);
        t = t2;
        if (failed) {
            fail_result(r, st,
                        x.failure ? x.failure
                        : o.len > o.cap ? "wrote past its output buffer"
                                        : "failed the message without a reason");
            r->ns = morphd_ticks_to_ns(t - t_start);
            dest->len = base;
            return;
        }
        r->reply |= o.reply;
        buf->len = off + o.len;
        if (o.reply & MORPH_REPLY_NONE)
            break;
        if (last) {
            r->abi1_empty = st->abi1;
            goto done;
        }
        data = buf->data;
        n = o.len;
    }
    if (r->reply & MORPH_REPLY_NONE) {
        dest->len = base;
        r->status = MORPHD_RUN_DONE;
        r->len = 0;
        r->data = dest->data + base;
        r->ns = morphd_ticks_to_ns(t - t_start);
        return;
    }
done:
    r->status = MORPHD_RUN_DONE;
    r->len = dest->len - base;
    r->data = dest->data + base;
    r->ns = morphd_ticks_to_ns(t - t_start);
}
