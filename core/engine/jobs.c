/*
 * jobs.c -- the messages in flight (jobs.h): their buffers and their
 * morph_out_t, the plugin's done() and fail(), the ready queue the loop
 * finishes them from, abandoning one whose client left, and the thread
 * pool's side for a plugin that blocks.
 */
#include "engine/chain.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/metrics.h"
#include "codec/http.h"

static void job_finish(morphd_job_t *job);

static void run_ready(uv_idle_t *h)
{
    morphd_chain_env_t *env = h->data;
    morphd_job_t *job = env->ready;
    env->ready = env->ready_tail = NULL;
    uv_idle_stop(h);
    while (job != NULL) { /* jobs that end now queue anew for later */
        morphd_job_t *next = job->ready_next;
        job_finish(job);
        job = next;
    }
}


/* --- jobs -------------------------------------------------------------------- */

/* Grows a job's output buffer, which starts in the job itself. */
int morphd_job_buf_reserve(morphd_job_t *job, size_t min_cap)
{
    morphd_buf_t *b = &job->buf;
    if (min_cap <= b->cap)
        return 0;
    if (b->data != job->inline_buf)
        return morphd_buf_reserve(b, min_cap);
    size_t cap = 2 * b->cap;
    while (cap < min_cap)
        cap *= 2;
    unsigned char *p = malloc(cap);
    if (p == NULL)
        return -1;
    memcpy(p, b->data, b->len);
    b->data = p;
    b->cap = cap;
    return 0;
}

static int job_out_reserve(morph_out_t *out, size_t min_cap)
{
    morphd_job_t *job = out->host_private;
    if (min_cap <= out->cap)
        return MORPH_OK;
    if (min_cap > job->chain->out_limit) {
        snprintf(job->reason, sizeof job->reason,
                 "output of %zu bytes exceeds the limit of %zu", min_cap,
                 job->chain->out_limit);
        return MORPH_ERROR;
    }
    job->buf.len = out->len;
    if (morphd_job_buf_reserve(job, min_cap) != 0) {
        snprintf(job->reason, sizeof job->reason, "out of memory");
        return MORPH_ERROR;
    }
    out->data = job->buf.data;
    out->cap = job->buf.cap;
    return MORPH_OK;
}

static int job_out_fail(morph_out_t *out, const char *reason)
{
    morphd_job_t *job = out->host_private;
    if (job->reason[0] == '\0')
        snprintf(job->reason, sizeof job->reason, "%s",
                 reason ? reason : "failed");
    return MORPH_ERROR;
}

static morph_pending_t *job_out_defer(morph_out_t *out, void *user)
{
    (void)out;
    (void)user;
    return NULL; /* a pending message is pending already */
}

/* A deferred job the plugin has ended: finish it from the loop. */
void morphd_job_ready(morphd_job_t *job)
{
    if (job->in_call)
        return; /* morphd_chain_run goes on with it when the call returns */
    morphd_chain_env_t *env = job->chain->env;
    job->ready_next = NULL;
    if (env->ready_tail != NULL)
        env->ready_tail->ready_next = job;
    else
        env->ready = job;
    env->ready_tail = job;
    uv_idle_start(&env->idle, run_ready);
}

static void job_pub_done(morph_pending_t *p)
{
    morphd_job_t *job = p->host_private;
    if (job->state != MORPHD_JOB_DEFERRED)
        return; /* ended already: a plugin bug, not worth a crash */
    job->state = MORPHD_JOB_DONE;
    morphd_job_ready(job);
}

static void job_pub_fail(morph_pending_t *p, const char *reason)
{
    morphd_job_t *job = p->host_private;
    if (job->state != MORPHD_JOB_DEFERRED)
        return;
    job_out_fail(&job->out, reason);
    job->state = MORPHD_JOB_FAILED;
    morphd_job_ready(job);
}

morphd_job_t *morphd_job_new(morphd_chain_t *chain, const morphd_conn_t *conn,
                             size_t stage, uint32_t flags,
                             const morphd_frame_t *frame)
{
    morphd_chain_env_t *env = chain->env;
    morphd_job_t *job = env->free_jobs;
    if (job != NULL) {
        env->free_jobs = job->ready_next;
        env->n_free_jobs--;
    } else if ((job = malloc(sizeof *job)) == NULL) {
        return NULL;
    }
    memset(job, 0, offsetof(morphd_job_t, reason));
    job->reason[0] = '\0';
    job->buf.data = job->inline_buf;
    job->buf.cap = sizeof job->inline_buf;
    job->chain = chain;
    __atomic_add_fetch(&chain->refs, 1, __ATOMIC_ACQ_REL);
    job->conn = *conn;
    if (conn->peer != NULL) {
        memcpy(&job->peer, conn->peer, morphd_sockaddr_len(conn->peer));
        job->conn.peer = (struct sockaddr *)&job->peer;
    }
    if (conn->local != NULL) { /* from a job that ran off the loop */
        memcpy(&job->local, conn->local, sizeof job->local);
        job->conn.local = (struct sockaddr *)&job->local;
    }
    if (conn->cred != NULL) {
        job->cred = *conn->cred;
        job->conn.cred = &job->cred;
    }
    if (conn->via != NULL) {
        memcpy(&job->via, conn->via, morphd_sockaddr_len(conn->via));
        job->conn.via = (struct sockaddr *)&job->via;
    }
    job->stage = stage;
    job->flags = flags;
    job->frame = frame != NULL ? *frame : morphd_frame_none;
    if (job->frame.head_len > sizeof job->frame_head) /* codec.h's bound */
        job->frame.head_len = sizeof job->frame_head;
    if (job->frame.head_len > 0)
        memcpy(job->frame_head, job->frame.head, job->frame.head_len);
    job->frame.head = job->frame_head;
    const morphd_http_exchange_t *x = morphd_http_exchange_of(frame);
    if (x != NULL) { /* its request's head leaves with the input: a copy */
        job->frame.state = morphd_http_exchange_copy(x);
        if (job->frame.state == NULL) {
            job->frame = morphd_frame_none;
            morphd_job_free(job);
            return NULL;
        }
    }
    job->out.reserve = job_out_reserve;
    job->out.fail_message = job_out_fail;
    job->out.host_private = job;
    job->out.struct_size = sizeof job->out;
    job->out.defer = job_out_defer;
    job->pub.struct_size = sizeof job->pub;
    job->pub.flags = flags;
    job->pub.out = &job->out;
    job->pub.conn = (const morph_conn_t *)&job->conn;
    job->pub.done = job_pub_done;
    job->pub.fail = job_pub_fail;
    job->pub.host_private = job;
    return job;
}

const morphd_frame_t *morphd_job_out_frame(const morph_out_t *out)
{
    if (out->reserve != job_out_reserve)
        return NULL;
    return &((const morphd_job_t *)out->host_private)->frame;
}

void morphd_job_free(morphd_job_t *job)
{
    morphd_chain_t *chain = job->chain;
    if (job->own_states != NULL) {
        morphd_chain_conn_close(chain, job->own_states);
        free(job->own_states);
    } else if (job->lazy_state != NULL) {
        /* a blocking plugin made a state for a connection that is gone */
        const morph_plugin_t *d = chain->stages[job->stage].plugin->desc;
        if (d->conn_close != NULL)
            d->conn_close(chain->stages[job->stage].instance, job->lazy_state);
    }
    morphd_http_exchange_free(morphd_http_exchange_of(&job->frame));
    if (job->buf.data != job->inline_buf)
        morphd_buf_free(&job->buf);
    morphd_buf_free(&job->in);
    morphd_chain_env_t *env = chain->env;
    if (env->n_free_jobs < MORPHD_SPARE_JOBS) {
        job->ready_next = env->free_jobs;
        env->free_jobs = job;
        env->n_free_jobs++;
    } else {
        free(job);
    }
    morphd_chain_release(chain); /* the job held a reference */
}

/* A job is in flight: its env counts it (the worker's shutdown waits for
 * it), and so does its service's messages_pending. */
void morphd_job_counted(morphd_job_t *job)
{
    job->chain->env->n_jobs++;
    morphd_stats_pending(job->chain->stats, 1);
}

/* A counted job has ended: uncounted and freed -- the env last, since its
 * owner may tear things down when the last job goes. */
static void job_end(morphd_job_t *job)
{
    morphd_chain_env_t *env = job->chain->env;
    morphd_stats_pending(job->chain->stats, -1);
    morphd_job_free(job);
    if (--env->n_jobs == 0 && env->on_jobs_gone != NULL)
        env->on_jobs_gone(env);
}

int morphd_job_own_states(morphd_job_t *job, void **states)
{
    size_t n = job->chain->n;
    void **copy = malloc(n * sizeof *copy);
    if (copy == NULL)
        return -1;
    memcpy(copy, states, n * sizeof *copy);
    job->own_states = copy;
    job->conn.states = copy;
    return 0;
}

/* Sets a state that a plugin created lazily on a job's connection. */
static void job_keep_lazy_state(morphd_job_t *job)
{
    if (job->lazy_state == NULL || job->conn.transport == NULL)
        return;
    void **states = job->conn.states ? job->conn.states
                                     : job->conn.ops->states(&job->conn);
    if (states == NULL)
        return; /* out of memory: morphd_job_free closes it */
    states[job->stage] = job->lazy_state;
    job->conn.states = states;
    job->lazy_state = NULL;
}

/* A job has ended (on the loop's thread): count it, run the rest of the
 * chain, and hand the outcome to the transport. */
static void job_finish(morphd_job_t *job)
{
    morphd_chain_t *chain = job->chain;
    morphd_stage_t *st = &chain->stages[job->stage];
    bool failed = job->state == MORPHD_JOB_FAILED;
    if (job->call_ticks != 0) /* deferred: its call is counted already */
        morphd_metrics_record_deferred(st->metrics, morphd_ticks() - job->t0,
                                       failed);
    else /* on the thread pool: the call is the job */
        morphd_metrics_record(st->metrics, morphd_ticks() - job->t0, failed);
    if (job->abandoned || job->conn.transport == NULL) { /* it went first */
        job_end(job);
        return;
    }
    job_keep_lazy_state(job);

    morphd_result_t r;
    r.frame = &job->frame;
    r.abi1_empty = false;
    r.reply = job->out.reply;
    r.ns = 0;
    if (failed) {
        r.status = MORPHD_RUN_FAILED;
        snprintf(r.error, sizeof r.error, "plugin %s: %s", st->plugin->name,
                 job->reason[0] ? job->reason : "failed without a reason");
    } else if (job->out.reply & MORPH_REPLY_NONE) {
        r.status = MORPHD_RUN_DONE;
        r.len = 0;
        r.data = NULL;
    } else {
        morphd_buf_t *dest = &chain->env->done_buf;
        dest->len = 0;
        morphd_chain_run(chain, &job->conn, job->stage + 1, job->buf.data,
                         job->out.len, job->flags, &job->frame, dest, &r);
        r.reply |= job->out.reply;
        if (r.status == MORPHD_RUN_PENDING && job->own_states != NULL) {
            /* the next job goes on with the same states: it owns them now
             * (a copy its transport made holds the same pointers) */
            free(r.job->own_states);
            r.job->own_states = job->own_states;
            r.job->conn.states = job->own_states;
            job->own_states = NULL;
        }
    }
    job->conn.ops->job_done(&job->conn, job, &r);
    job_end(job);
}

void morphd_job_abandon(morphd_job_t *job, void **states)
{
    job->own_states = states;
    if (job->offloaded) { /* on the pool: job_finish frees it when back */
        job->abandoned = true;
        return;
    }
    job->conn.transport = NULL;
    job->conn.states = NULL;
    if (job->state != MORPHD_JOB_DEFERRED)
        return; /* ended, waiting in the ready queue: freed from there */
    morphd_chain_t *chain = job->chain;
    morphd_stage_t *st = &chain->stages[job->stage];
    st->plugin->cancel(st->instance, &job->pub);
    morphd_metrics_record_deferred(st->metrics, morphd_ticks() - job->t0,
                                   false);
    job_end(job);
}

/* --- the thread pool ------------------------------------------------------------ */

void morphd_job_work_run(uv_work_t *w)
{
    morphd_job_t *job = w->data;
    morphd_stage_t *st = &job->chain->stages[job->stage];
    void **slot = job->conn.states ? &job->conn.states[job->stage]
                                   : &job->lazy_state;
    morph_msg_t msg = {job->in.data, job->in.len, job->flags,
                       (uint32_t)sizeof msg, (const morph_conn_t *)&job->conn,
                       slot};
    if (morphd_job_buf_reserve(job, job->in.len < 64 ? 64 : job->in.len) != 0) {
        snprintf(job->reason, sizeof job->reason, "out of memory");
        job->state = MORPHD_JOB_FAILED;
        return;
    }
    job->out.data = job->buf.data;
    job->out.cap = job->buf.cap;
    job->out.len = 0;
    morphd_running_stage = st;
    int rc = st->plugin->desc->transform(st->instance, *slot, &msg, &job->out);
    morphd_running_stage = NULL;
    if (rc != MORPH_OK || job->reason[0] != '\0' || job->out.len > job->out.cap) {
        if (job->reason[0] == '\0')
            snprintf(job->reason, sizeof job->reason, "%s",
                     job->out.len > job->out.cap
                         ? "wrote past its output buffer"
                         : "failed the message without a reason");
        job->state = MORPHD_JOB_FAILED;
    } else {
        job->state = MORPHD_JOB_DONE;
    }
}

void morphd_job_work_done(uv_work_t *w, int status)
{
    (void)status; /* jobs are never cancelled from the pool */
    morphd_job_t *job = w->data;
    job->offloaded = false;
    job_finish(job);
}

