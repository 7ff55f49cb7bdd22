/*
 * fuzz_msgpath.c -- the message path with replies that come later. The
 * input is a script of operations on up to four connections: send a
 * message, complete or fail a waiting message, run the loop, reset a
 * connection. A plugin compiled in here does what each message's first
 * byte says: answer now, defer (completed later by the script), defer and
 * complete inside its own call, defer and complete another connection's
 * message from inside this call, fail, or send nothing; it also makes
 * per-connection state lazily. A second plugin uppercases ASCII, so every
 * completed message continues through the chain.
 *
 * The connections behave as TCP's do: one message in flight each, later
 * ones held until it ends. Properties, checked on every outcome:
 *   - each message ends exactly once (answered, failed, silent, or
 *     dropped with its connection), in the order it was sent on its
 *     connection;
 *   - an answer is exactly the uppercased message;
 *   - at the end nothing is in flight, every state was closed (and ASan
 *     sees no leak or use after free).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chain.h"
#include "fuzz_plugin.h"
#include "base/log.h"

#define CONNS 4
#define QUEUE 64

enum op { OP_NOW, OP_DEFER, OP_INCALL, OP_STEAL, OP_FAIL, OP_SILENT, OP_N };

/* --- the plugins ------------------------------------------------------------ */

static morph_pending_t *waiting[QUEUE]; /* deferred, not yet ended */
static size_t n_waiting;
static long live_states;

static void forget(morph_pending_t *p)
{
    for (size_t i = 0; i < n_waiting; i++)
        if (waiting[i] == p) {
            waiting[i] = waiting[--n_waiting];
            return;
        }
}

static int script_transform(void *instance, void *conn, const morph_msg_t *m,
                            morph_out_t *out)
{
    (void)instance;
    if (m->len == 0)
        return MORPH_OK;
    if (conn == NULL && (m->data[0] & 0x40)) { /* state, made lazily */
        *m->state = malloc(1);
        live_states++;
    }
    enum op op = (enum op)(m->data[0] % OP_N);
    if (morph_out_append(out, m->data, m->len) != MORPH_OK)
        return morph_out_fail(out, "too long");
    switch (op) {
    case OP_NOW:
        return MORPH_OK;
    case OP_FAIL:
        return morph_out_fail(out, "scripted failure");
    case OP_SILENT:
        return morph_out_no_reply(out);
    case OP_DEFER:
    case OP_INCALL:
    case OP_STEAL: {
        if (op == OP_STEAL && n_waiting > 0) { /* re-entrant completion */
            morph_pending_t *w = waiting[0];
            forget(w);
            w->done(w);
        }
        morph_pending_t *p = morph_out_defer(out, NULL);
        if (p == NULL)
            return morph_out_fail(out, "cannot defer");
        if (op == OP_INCALL) {
            p->done(p);
        } else if (n_waiting < QUEUE) {
            waiting[n_waiting++] = p;
        } else {
            p->fail(p, "too many waiting");
        }
        return MORPH_OK;
    }
    case OP_N:
        break;
    }
    return MORPH_OK;
}

static void script_cancel(void *instance, morph_pending_t *p)
{
    (void)instance;
    forget(p);
}

static void script_conn_close(void *instance, void *conn)
{
    (void)instance;
    free(conn);
    live_states--;
}

static const morph_plugin_t script_desc = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "script",
    .conn_close = script_conn_close,
    .transform = script_transform,
    .cancel = script_cancel,
};

static int upper_transform(void *instance, void *conn, const morph_msg_t *m,
                           morph_out_t *out)
{
    (void)instance;
    (void)conn;
    for (size_t i = 0; i < m->len; i++) {
        unsigned char c = m->data[i];
        out->data[i] = c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c;
    }
    out->len = m->len;
    return MORPH_OK;
}

static const morph_plugin_t upper_desc = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "upper",
    .transform = upper_transform,
};

/* --- a connection that keeps order, as TCP does ------------------------------- */

typedef struct msg {
    unsigned char data[16];
    size_t len;
} msg_t;

typedef struct fconn {
    morphd_conn_t mc;
    void *states[2];
    bool has_states;
    morphd_job_t *job;
    msg_t sent[QUEUE]; /* sent and not ended, oldest first */
    size_t n_sent, started; /* the first `started` went through the chain */
} fconn_t;

static fconn_t conns[CONNS];
static morphd_chain_t *chain;
static morphd_chain_env_t env;
static uv_loop_t loop;
static morphd_buf_t dest;

static void ended(fconn_t *c, const morphd_result_t *r)
{
    FUZZ_CHECK(c->n_sent > 0 && c->started > 0, "an outcome nobody waited for");
    msg_t m = c->sent[0];
    memmove(c->sent, c->sent + 1, --c->n_sent * sizeof *c->sent);
    c->started--;
    if (r->status == MORPHD_RUN_DONE && !(r->reply & MORPH_REPLY_NONE)) {
        FUZZ_CHECK(r->len == m.len, "reply of %zu bytes for %zu", r->len,
                   m.len);
        for (size_t i = 0; i < m.len; i++) {
            unsigned char c2 = m.data[i];
            c2 = c2 >= 'a' && c2 <= 'z' ? (unsigned char)(c2 - 32) : c2;
            FUZZ_CHECK(r->data[i] == c2, "wrong reply byte %zu", i);
        }
        return;
    }
    if (r->status == MORPHD_RUN_DONE) { /* silent: only OP_SILENT asks */
        FUZZ_CHECK(m.data[0] % OP_N == OP_SILENT, "silence unasked for");
        return;
    }
    FUZZ_CHECK(r->status == MORPHD_RUN_FAILED, "status %d", r->status);
}

static void pump(fconn_t *c);

static void **f_states(morphd_conn_t *mc)
{
    fconn_t *c = mc->transport;
    c->has_states = true;
    return c->states;
}

static int f_admit(morphd_conn_t *mc, size_t bytes)
{
    (void)mc;
    (void)bytes;
    return 0;
}

static int f_start(morphd_conn_t *mc, morphd_job_t *job)
{
    fconn_t *c = mc->transport;
    FUZZ_CHECK(c->job == NULL, "two messages in flight on one connection");
    c->job = job;
    return 0;
}

static void f_done(morphd_conn_t *mc, morphd_job_t *job,
                   const morphd_result_t *r)
{
    fconn_t *c = mc->transport;
    FUZZ_CHECK(c->job == job, "job_done for a job the connection lost");
    c->job = NULL;
    if (r->status == MORPHD_RUN_PENDING) { /* a later plugin deferred */
        c->job = r->job;
        return;
    }
    ended(c, r);
    pump(c);
}

static const morphd_conn_ops_t fops = {
    .transport = "fuzz",
    .states = f_states,
    .job_admit = f_admit,
    .job_start = f_start,
    .job_done = f_done,
};

/* Runs held messages while nothing is in flight. */
static void pump(fconn_t *c)
{
    while (c->job == NULL && c->started < c->n_sent) {
        msg_t *m = &c->sent[c->started++];
        morphd_result_t r;
        dest.len = 0;
        c->mc.states = c->has_states ? c->states : NULL;
        morphd_chain_run(chain, &c->mc, 0, m->data, m->len, 0,
                         &morphd_frame_none, &dest, &r);
        if (r.status == MORPHD_RUN_PENDING) {
            FUZZ_CHECK(c->job == r.job, "a pending run the connection lacks");
            return;
        }
        ended(c, &r);
    }
}

static void reset(fconn_t *c)
{
    if (c->job != NULL)
        morphd_job_abandon(c->job, NULL);
    c->job = NULL;
    if (c->has_states)
        morphd_chain_conn_close(chain, c->states);
    memset(c->states, 0, sizeof c->states);
    c->has_states = false;
    c->n_sent = c->started = 0;
}

/* --- setup and the script ------------------------------------------------------- */

static void setup(void)
{
    static morphd_plugin_t plugins[2];
    static morphd_stats_t *stats;
    plugins[0] = (morphd_plugin_t){.name = "script", .path = "(fuzz)",
                                   .desc = &script_desc, .abi = 2,
                                   .abi_min = 2, .cancel = script_cancel};
    plugins[1] = (morphd_plugin_t){.name = "upper", .path = "(fuzz)",
                                   .desc = &upper_desc, .abi = 2, .abi_min = 2};
    morphd_plugin_t *list[2] = {&plugins[0], &plugins[1]};
    morphd_log_set_level(MORPH_LOG_ERROR);
    uv_loop_init(&loop);
    morphd_chain_env_init(&env, &loop, 0, 1);
    char err[256];
    if (morphd_chain_create(list, 2, NULL, NULL, "fuzz", &stats, &env, 1 << 16,
                            &chain, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }
    for (int i = 0; i < CONNS; i++) {
        conns[i].mc.ops = &fops;
        conns[i].mc.transport = &conns[i];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++];
        fconn_t *c = &conns[op & (CONNS - 1)];
        switch ((op >> 2) % 5) {
        case 0: /* send: a length byte, then the message */
        case 1: {
            if (i >= size)
                break;
            size_t len = 1 + data[i++] % 15;
            if (len > size - i)
                len = size - i;
            if (len == 0 || c->n_sent == QUEUE)
                break;
            msg_t *m = &c->sent[c->n_sent++];
            memcpy(m->data, data + i, len);
            m->len = len;
            i += len;
            pump(c);
            break;
        }
        case 2: /* end a waiting message */
            if (n_waiting > 0) {
                morph_pending_t *p = waiting[op % n_waiting];
                forget(p);
                if (op & 0x80)
                    p->fail(p, "scripted late failure");
                else
                    p->done(p);
            }
            break;
        case 3:
            uv_run(&loop, UV_RUN_NOWAIT);
            break;
        case 4:
            reset(c);
            break;
        }
    }
    /* the end: every connection goes, nothing may be left */
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int k = 0; k < CONNS; k++)
        reset(&conns[k]);
    /* their connections are gone: every waiting message was cancelled */
    FUZZ_CHECK(n_waiting == 0, "%zu messages still waiting after their "
               "connections went", n_waiting);
    uv_run(&loop, UV_RUN_NOWAIT);
    FUZZ_CHECK(env.n_jobs == 0, "%zu jobs left", env.n_jobs);
    FUZZ_CHECK(live_states == 0, "%ld states not closed", live_states);
    return 0;
}
