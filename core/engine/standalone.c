/*
 * standalone.c -- chains outside the daemon (standalone.h). Reuses the
 * daemon's loader, option checks and chain code, so a plugin behaves in
 * `morph pipe` and in its unit tests exactly as it does in morphd.
 */
#include "engine/standalone.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/host.h"
#include "engine/options.h"

/* --- the connection --------------------------------------------------------- */

static void **sa_states(morphd_conn_t *c)
{
    morphd_standalone_t *s = c->transport;
    return s->states;
}

static int sa_job_admit(morphd_conn_t *c, size_t bytes)
{
    (void)c;
    (void)bytes;
    return 0;
}

static int sa_job_start(morphd_conn_t *c, morphd_job_t *job)
{
    morphd_standalone_t *s = c->transport;
    s->job = job;
    return 0;
}

static void sa_job_done(morphd_conn_t *c, morphd_job_t *job,
                        const morphd_result_t *r)
{
    morphd_standalone_t *s = c->transport;
    (void)job;
    if (r->status == MORPHD_RUN_PENDING) {
        s->job = r->job;
        return;
    }
    s->job = NULL;
    s->ended = true;
    s->result = *r;
    s->out.len = 0;
    if (r->status == MORPHD_RUN_DONE &&
        morphd_buf_append(&s->out, r->data, r->len) != 0)
        s->result.status = MORPHD_RUN_NOMEM;
}

static const morphd_conn_ops_t standalone_ops = {
    .transport = "pipe",
    .states = sa_states,
    .job_admit = sa_job_admit,
    .job_start = sa_job_start,
    .job_done = sa_job_done,
};

/* --- opening ------------------------------------------------------------------ */

static int add_options(morphd_standalone_t *s, const char *const *options,
                       size_t n_options, char *err, size_t err_size)
{
    for (size_t i = 0; i < n_options; i++) {
        if (morphd_plugin_opts_add_assign(&s->opts, options[i], true, err,
                                          err_size) != 0)
            return -1;
        const morphd_plugin_opt_t *o = &s->opts.v[s->opts.n - 1];
        bool used = s->has_codec && strcmp(s->codec.name, o->plugin) == 0;
        for (size_t j = 0; j < s->n; j++)
            used |= strcmp(s->plugins[j].name, o->plugin) == 0;
        if (!used) {
            snprintf(err, err_size, "option '%s' is for plugin '%s', which is "
                     "not in the chain", options[i], o->plugin);
            return -1;
        }
    }
    morphd_errors_t errs = MORPHD_ERRORS_INIT;
    for (size_t j = 0; j < s->n; j++)
        morphd_options_check(&s->plugins[j], &s->opts, NULL, "option",
                             &errs);
    if (s->has_codec)
        morphd_options_check(&s->codec, &s->opts, NULL, "option", &errs);
    if (errs.n > 0) {
        snprintf(err, err_size, "%s", errs.msgs[0]);
        morphd_errors_free(&errs);
        return -1;
    }
    return 0;
}

int morphd_standalone_open(morphd_standalone_t *s, const char *dir,
                           const char *const *names, size_t n,
                           const char *const *options, size_t n_options,
                           size_t max_message, char *err, size_t err_size)
{
    return morphd_standalone_open_framed(s, dir, names, n, NULL, options,
                                         n_options, max_message, err,
                                         err_size);
}

void morphd_standalone_codec(morphd_standalone_t *s, morphd_codec_t *c)
{
    morphd_chain_codec_bind(s->chain, c, &s->codec_scratch);
}

/* The codec plugin's state for the connection. */
static int open_codec(morphd_standalone_t *s, char *err, size_t err_size)
{
    int rc = morphd_chain_codec_open(s->chain, &s->conn, &s->codec_state, err,
                                     err_size);
    s->codec_open = rc == 1;
    return rc < 0 ? -1 : 0;
}

int morphd_standalone_open_framed(morphd_standalone_t *s, const char *dir,
                                  const char *const *names, size_t n,
                                  const char *codec,
                                  const char *const *options, size_t n_options,
                                  size_t max_message, char *err,
                                  size_t err_size)
{
    memset(s, 0, sizeof *s);
    s->timeout_ms = 30000;
    /* n may be 0: no transform, each message answered with itself */
    s->plugins = calloc(n + 1, sizeof *s->plugins);
    morphd_plugin_t **ptrs = calloc(n + 1, sizeof *ptrs);
    s->states = calloc(n + 1, sizeof *s->states);
    int rc = -1;
    if (!s->plugins || !ptrs || !s->states) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    if (uv_loop_init(&s->loop) != 0) {
        snprintf(err, err_size, "cannot create an event loop");
        goto out;
    }
    s->loop_open = true;
    morphd_chain_env_init(&s->env, &s->loop, 0, 1);
    s->env.guard_output = true; /* an author's tool: catch writes past cap */
    morphd_plugin_copy_files(false); /* plugin_loader.h says why */
    for (size_t i = 0; i < n; i++) {
        /* a plugin named twice is loaded once: dlopen shares it anyway */
        if (morphd_plugin_load(dir, names[i], &s->plugins[i], err, err_size) != 0)
            goto out;
        s->n = i + 1;
        ptrs[i] = &s->plugins[i];
    }
    if (codec != NULL) {
        if (morphd_plugin_load(dir, codec, &s->codec, err, err_size) != 0)
            goto out;
        s->has_codec = true;
        if (s->codec.codec == NULL) {
            snprintf(err, err_size, "plugin '%s' is not a codec (its "
                     "descriptor has no `codec`)", codec);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (s->plugins[i].desc->transform == NULL) {
            snprintf(err, err_size, "plugin '%s' is a codec, not a transform",
                     s->plugins[i].name);
            goto out;
        }
    if (add_options(s, options, n_options, err, err_size) != 0)
        goto out;
    size_t limit = (max_message > 65536 ? max_message : 65536) * 4;
    if (morphd_chain_create(ptrs, n, s->has_codec ? &s->codec : NULL, &s->opts,
                            "standalone", &s->stats, &s->env, limit, &s->chain,
                            err, err_size) != 0)
        goto out;
    s->ops = standalone_ops;
    s->conn.ops = &s->ops;
    s->conn.transport = s;
    rc = morphd_standalone_reconnect(s, err, err_size);
out:
    free(ptrs);
    if (rc != 0)
        morphd_standalone_close(s); /* nothing half-made stays behind */
    return rc;
}

int morphd_standalone_reconnect(morphd_standalone_t *s, char *err,
                                size_t err_size)
{
    if (s->open || s->chain->keeps_state)
        morphd_chain_conn_close(s->chain, s->states);
    memset(s->states, 0, s->chain->n * sizeof *s->states);
    s->open = false;
    s->conn.states = s->chain->keeps_state ? s->states : NULL;
    if (s->chain->opens_conns) {
        if (morphd_chain_conn_open(s->chain, &s->conn, s->states, err,
                                   err_size) != 0)
            return -1;
        s->open = true;
    }
    if (!s->has_codec)
        return 0;
    if (s->codec_open) /* the codec's state is the connection's too */
        morphd_chain_codec_close(s->chain, s->codec_state);
    s->codec_open = false;
    s->codec_state = NULL;
    return open_codec(s, err, err_size);
}

int morphd_standalone_peer(morphd_standalone_t *s, const char *transport,
                           const char *address, uint16_t port, char *err,
                           size_t err_size)
{
    static const char *const known[] = {"tcp", "udp", "tls", "unix"};
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        ok |= strcmp(transport, known[i]) == 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (!ok) {
        snprintf(err, err_size, "transport '%s': one of tcp, udp, tls, unix",
                 transport);
        return -1;
    }
    if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
    } else {
        snprintf(err, err_size, "'%s' is not a numeric IPv4 or IPv6 address",
                 address);
        return -1;
    }
    snprintf(s->transport, sizeof s->transport, "%s", transport);
    s->peer = ss;
    s->ops.transport = s->transport;
    s->conn.peer = (const struct sockaddr *)&s->peer;
    return morphd_standalone_reconnect(s, err, err_size);
}

int morphd_standalone_leave_during(morphd_standalone_t *s, const void *in,
                                   size_t len, char *err, size_t err_size)
{
    morphd_result_t r;
    s->out.len = 0;
    s->ended = false;
    s->conn.states = s->chain->keeps_state ? s->states : NULL;
    morphd_chain_run(s->chain, &s->conn, 0, in, len, 0, &morphd_frame_none,
                     &s->out, &r);
    if (r.status != MORPHD_RUN_PENDING)
        return 1;
    /* the client leaves: the job takes the states, to close them once it
     * no longer runs, as a closing connection hands them over in morphd */
    morphd_job_t *job = s->job;
    s->job = NULL;
    void **states = s->chain->keeps_state ? s->states : NULL;
    size_t n = s->chain->n;
    void **copy = NULL;
    if (states != NULL) {
        copy = malloc(n * sizeof *copy);
        if (copy == NULL) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
        memcpy(copy, states, n * sizeof *copy);
    }
    morphd_job_abandon(job, copy);
    while (s->env.n_jobs > 0) /* a blocking one finishes first */
        uv_run(&s->loop, UV_RUN_ONCE);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    /* those states are the job's now: the next connection starts clean */
    memset(s->states, 0, n * sizeof *s->states);
    s->open = false;
    s->conn.states = s->chain->keeps_state ? s->states : NULL;
    if (s->chain->opens_conns &&
        morphd_chain_conn_open(s->chain, &s->conn, s->states, err, err_size) != 0)
        return -1;
    s->open = s->chain->opens_conns;
    return 0;
}

int morphd_standalone_counter(const morphd_standalone_t *s, const char *name,
                              uint64_t *value)
{
    for (const morphd_stats_t *st = s->stats; st != NULL; st = st->next)
        for (const morphd_plugin_stats_t *p = st->plugins; p; p = p->next)
            for (const morphd_plugin_counter_t *c = p->counters; c; c = c->next)
                if (strcmp(c->name, name) == 0) {
                    *value = __atomic_load_n(&c->value, __ATOMIC_RELAXED);
                    return 0;
                }
    return -1;
}

/* --- running ------------------------------------------------------------------ */

static void on_timeout(uv_timer_t *t) { *(bool *)t->data = true; }

/* A message's outcome as apply() returns it. */
static int outcome(const morphd_result_t *r, const unsigned char **out,
                   size_t *out_len, uint32_t *reply, char *err, size_t err_size)
{
    switch (r->status) {
    case MORPHD_RUN_FAILED:
        snprintf(err, err_size, "%s", r->error);
        return -1;
    case MORPHD_RUN_NOMEM:
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    if (reply != NULL)
        *reply = r->reply;
    *out = r->data ? r->data : (const unsigned char *)"";
    *out_len = r->len;
    return (r->reply & MORPH_REPLY_NONE) ? 1 : 0;
}

/* The pending message's outcome once it ended (its output in s->out). */
static morphd_result_t ended_result(morphd_standalone_t *s)
{
    morphd_result_t r = s->result;
    if (r.status == MORPHD_RUN_DONE) {
        r.data = s->out.data;
        r.len = s->out.len;
    }
    return r;
}

int morphd_standalone_apply(morphd_standalone_t *s, const void *in,
                            size_t len, uint32_t flags,
                            const unsigned char **out, size_t *out_len,
                            uint32_t *reply, char *err, size_t err_size)
{
    morphd_result_t r;
    s->out.len = 0;
    s->ended = false;
    s->conn.states = s->chain->keeps_state ? s->states : NULL;
    morphd_chain_run(s->chain, &s->conn, 0, in, len, flags, &morphd_frame_none,
                     &s->out, &r);
    if (r.status == MORPHD_RUN_PENDING && s->env.manual_clock) {
        uv_run(&s->loop, UV_RUN_NOWAIT); /* a done() from inside the call */
        if (!s->ended) {
            *out = (const unsigned char *)"";
            *out_len = 0;
            return 2; /* morphd_standalone_advance ends it */
        }
        r = ended_result(s);
    } else if (r.status == MORPHD_RUN_PENDING) { /* run the loop until it ends */
        bool late = false;
        uv_timer_t timer;
        uv_timer_init(&s->loop, &timer);
        timer.data = &late;
        uv_timer_start(&timer, on_timeout, s->timeout_ms, 0);
        while (!s->ended && !late)
            uv_run(&s->loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&timer, NULL);
        uv_run(&s->loop, UV_RUN_NOWAIT);
        if (!s->ended) {
            morphd_standalone_abandon(s);
            snprintf(err, err_size, "no answer within %u ms", s->timeout_ms);
            return -1;
        }
        r = ended_result(s);
    }
    return outcome(&r, out, out_len, reply, err, err_size);
}

void morphd_standalone_use_clock(morphd_standalone_t *s)
{
    s->env.manual_clock = true;
    s->env.clock_ms = 0;
}

int morphd_standalone_advance(morphd_standalone_t *s, uint64_t ms,
                              const unsigned char **out, size_t *out_len,
                              uint32_t *reply, char *err, size_t err_size)
{
    morphd_host_advance(s->chain, ms);
    /* what the timers completed ends from the loop (the env's idle) */
    for (int i = 0; i < 100 && s->env.ready != NULL; i++)
        uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    *out = (const unsigned char *)"";
    *out_len = 0;
    if (!s->ended || s->job != NULL)
        return 2;
    s->ended = false; /* reported once */
    morphd_result_t r = ended_result(s);
    return outcome(&r, out, out_len, reply, err, err_size);
}

void morphd_standalone_abandon(morphd_standalone_t *s)
{
    morphd_job_t *job = s->job;
    if (job == NULL)
        return;
    s->job = NULL;
    /* the states stay with the connection: the job must not close them */
    morphd_job_abandon(job, NULL);
    while (s->env.n_jobs > 0) /* a blocking one finishes first */
        uv_run(&s->loop, UV_RUN_ONCE);
}

void morphd_standalone_close(morphd_standalone_t *s)
{
    if (s->loop_open)
        morphd_standalone_abandon(s); /* pending on a clock nothing moves */
    if (s->codec_open)
        morphd_chain_codec_close(s->chain, s->codec_state);
    if (s->chain != NULL && (s->open || s->chain->keeps_state))
        morphd_chain_conn_close(s->chain, s->states);
    morphd_chain_release(s->chain);
    s->chain = NULL;
    if (s->loop_open) {
        morphd_chain_env_close(&s->env);
        uv_run(&s->loop, UV_RUN_DEFAULT); /* closes, and plugins' handles */
        uv_loop_close(&s->loop);
    }
    morphd_chain_env_free(&s->env);
    for (size_t i = 0; i < s->n; i++)
        morphd_plugin_unload(&s->plugins[i]);
    if (s->has_codec)
        morphd_plugin_unload(&s->codec);
    morphd_buf_free(&s->codec_scratch);
    morphd_plugin_opts_free(&s->opts);
    free(s->plugins);
    free(s->states);
    morphd_buf_free(&s->out);
    memset(s, 0, sizeof *s);
}
