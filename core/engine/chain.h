/*
 * chain.h -- a service's transform chain on one worker: one instance of
 * each plugin, run left to right, each stage's output feeding the next;
 * and the messages that stay in flight (jobs) when a plugin answers later
 * or blocks. The chain owns no per-message buffers: callers pass a
 * per-thread scratch pair and the buffer the reply is appended to, so
 * steady-state serving allocates nothing per message, and the last stage
 * writes straight into that buffer.
 *
 * Errors in this layer (engine/): 0, or -1 with the reason in `err`
 * naming the plugin (loading, instances, options; checking a chain's
 * options adds each problem to a morphd_errors_t, as conf/ does). A
 * message's outcome is not an error of the call but its result: one of
 * MORPHD_RUN_* in morphd_result_t, which the transport acts on.
 */
#ifndef MORPHD_CHAIN_H
#define MORPHD_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "codec/codec.h"
#include "engine/conn.h"
#include "base/metrics.h"
#include "engine/plugin_loader.h"
#include "base/spec.h"
#include "engine/stats.h"

/* Two buffers the stages write into alternately; one pair per thread. */
typedef struct morphd_scratch {
    morphd_buf_t buf[2];
} morphd_scratch_t;

void morphd_scratch_free(morphd_scratch_t *scratch);

/* What chains need of the thread they run on: one per worker (and one for
 * standalone use). */
typedef struct morphd_chain_env {
    uv_loop_t *loop; /* timers, the thread pool; NULL: nothing is deferred */
    unsigned worker;
    unsigned n_workers; /* for the plugins' metrics slots */
    morphd_scratch_t scratch;
    morphd_buf_t done_buf; /* the replies of jobs, built when they end */
    size_t n_jobs;         /* in flight */
    /* Jobs a plugin completed, ended from the loop (an idle handle) and
     * never from inside another call: a plugin may complete one message
     * while transforming another, and the transports and the scratch
     * buffers must not be re-entered. */
    uv_idle_t idle;
    bool idle_open;
    struct morphd_job *ready, *ready_tail;
    /* ended jobs kept for reuse: messages deferred at a steady rate cost
     * no allocation (glibc keeps only 7 of a size per thread) */
    struct morphd_job *free_jobs;
    unsigned n_free_jobs;
    /* set by the owner: the last job in flight has ended */
    void (*on_jobs_gone)(struct morphd_chain_env *env);
    void *owner;
    /* the plugin call on the loop now, and since when (ticks; 0: none),
     * for the watchdog (watchdog.h), which reads them from a signal
     * handler on any thread; atomics */
    const struct morphd_stage *calling;
    uint64_t calling_since;
    /* Checks that a plugin writes nothing past out->cap: a guard of
     * MORPHD_OUT_GUARD bytes after it, a canary checked after each call
     * (and poisoned for AddressSanitizer where it is on). Off in morphd
     * (a cost per message), on for morph pipe, <morph/testing.h> and every
     * sanitizer build. */
    bool guard_output;
    /* Timers follow `clock_ms`, which only morphd_host_advance moves (the
     * test helper's clock, morph_test_use_clock); else the loop's time. */
    bool manual_clock;
    uint64_t clock_ms;
} morphd_chain_env_t;

#define MORPHD_OUT_GUARD 16

/* Prepares an env for `loop` (NULL: standalone without deferring). */
void morphd_chain_env_init(morphd_chain_env_t *env, uv_loop_t *loop,
                           unsigned worker, unsigned n_workers);
/* Closes the env's handle (on its loop's thread, once no job is left). */
void morphd_chain_env_close(morphd_chain_env_t *env);
/* Frees the env's buffers (nothing may run on it any more). */
void morphd_chain_env_free(morphd_chain_env_t *env);

typedef struct morphd_timer_list morphd_timer_list_t;

typedef struct morphd_stage {
    const morphd_plugin_t *plugin;
    void *instance;
    uint32_t flags;                    /* the descriptor's MORPH_PLUGIN_* */
    bool abi1;                         /* built against ABI 1 */
    morphd_plugin_metrics_t *metrics;  /* this worker's slot */
    morphd_plugin_stats_t *pstats;     /* for the plugin's own counters */
    struct morphd_chain *chain;
    struct morph_timer *timers;        /* started and not yet ended */
    struct morph_timer *spare_timers;  /* ended, kept for reuse */
    unsigned n_spare_timers;
    bool creating;                     /* inside create(): counters allowed */
    morph_host_t host;
} morphd_stage_t;

typedef struct morphd_chain {
    size_t n;
    size_t refs;        /* the owner's, and one per job in flight */
    bool chunk_safe;    /* every plugin is MORPH_PLUGIN_CHUNK_SAFE */
    bool opens_conns;   /* a plugin has conn_open: states from the start */
    bool keeps_state;   /* a plugin has conn_open or conn_close */
    bool line_end;      /* a plugin wants MORPH_MSG_END in line framing */
    size_t out_limit;   /* the largest output a stage may produce */
    char *service;
    morphd_chain_env_t *env;
    morphd_stats_t *stats;        /* a reference */
    morphd_stats_t **stats_head;  /* its registry */
    /* framing = NAME: the codec plugin's instance (stages[n]: not a stage
     * of the chain, which the transports call through codec.h), or NULL */
    morphd_stage_t *codec;
    morphd_stage_t stages[];
} morphd_chain_t;

/* The stage whose plugin this thread is running now (NULL between calls),
 * so that the crash logger can name the plugin and service that were
 * running when a fatal signal came. */
/* initial-exec: the engine is built position-independent (for
 * libmorph-testing) and would otherwise reach it through __tls_get_addr,
 * twice a message; it is only ever linked into executables. */
#define MORPHD_TLS_FAST __attribute__((tls_model("initial-exec")))
extern __thread const morphd_stage_t *morphd_running_stage MORPHD_TLS_FAST;

/* Creates one instance of each plugin, with the options of `opts` meant
 * for it, running on `env`; and of `codec`, a codec plugin (or NULL). Options of plugins that declare them must have
 * been checked (options.h); they reach create() normalised, defaults
 * filled. `out_limit` bounds any stage's output; metrics go to the stats of
 * `service` in the registry *stats_head. Returns 0, or -1 with a message
 * naming the plugin in err. */
int morphd_chain_create(morphd_plugin_t *const *plugins, size_t n,
                        const morphd_plugin_t *codec,
                        const morphd_plugin_opts_t *opts, const char *service,
                        morphd_stats_t **stats_head, morphd_chain_env_t *env,
                        size_t out_limit, morphd_chain_t **chain, char *err,
                        size_t err_size);
/* Drops the owner's reference; the instances are destroyed once no job
 * holds the chain either. */
void morphd_chain_release(morphd_chain_t *chain);

/* Per-connection state: `states` has room for chain->n pointers. */
int morphd_chain_conn_open(const morphd_chain_t *chain,
                           const morphd_conn_t *conn, void **states,
                           char *err, size_t err_size);
/* Closes the states that are set (conn_close for each). */
void morphd_chain_conn_close(const morphd_chain_t *chain, void **states);

/* The codec plugin's state for a connection (chain->codec set): its
 * conn_open2 or conn_open. Returns 1 when opened (morphd_chain_codec_close
 * is then due), 0 when it has none to open, or -1 with the reason in err
 * (it refused the connection). */
int morphd_chain_codec_open(const morphd_chain_t *chain,
                            const morphd_conn_t *conn, void **state, char *err,
                            size_t err_size);
void morphd_chain_codec_close(const morphd_chain_t *chain, void *state);
/* Sets up `c` (morphd_codec_init'ed for morphd_codec_plugin) for the
 * chain's codec plugin on this worker: its instance, `scratch` for its
 * answers, and its calls watched as a transform's are (plugin_timeout,
 * the plugin's calls, failures and time in morph stats and /metrics). */
void morphd_chain_codec_bind(const morphd_chain_t *chain, morphd_codec_t *c,
                             morphd_buf_t *scratch);

/* How a message's run ended: the one set of outcomes of the message path,
 * for a chain's run (morphd_result_t) and for what the transports get back
 * from the service (morphd_reply_t, net/service.h). */
#define MORPHD_RUN_DONE 0    /* answered: the reply is in `dest` (maybe empty) */
#define MORPHD_RUN_FAILED 1  /* a plugin failed it; `error` says why (logged,
                                counted, no reply) */
#define MORPHD_RUN_PENDING 2 /* a job carries on; its end is job_done */
#define MORPHD_RUN_NOMEM (-1)

struct morphd_result {
    int status;               /* MORPHD_RUN_* */
    uint32_t reply;           /* MORPH_REPLY_* the plugins set */
    bool abi1_empty;          /* an ABI 1 plugin made the (empty) reply */
    size_t len;               /* DONE: bytes appended to dest */
    const unsigned char *data;/* DONE: where they are */
    uint64_t ns;              /* time the run took (without waiting) */
    morphd_job_t *job;        /* PENDING */
    const morphd_frame_t *frame; /* how the reply is framed (the run's) */
    char error[320];          /* FAILED: "plugin NAME: reason" */
};

/* Runs one message (flags MORPH_MSG_*) through stages [from, n) for the
 * connection `conn`. The last stage appends its output to `dest`; nothing
 * is appended for a failed message or MORPH_REPLY_NONE. `frame` (how the
 * transport frames the reply) is kept with a job, copied. An END
 * message in line framing (MORPH_MSG_END without MORPH_MSG_CHUNK) calls
 * only the plugins that asked for it (MORPH_PLUGIN_LINE_END), and those
 * after one that produced a trailer. */
void morphd_chain_run(morphd_chain_t *chain, morphd_conn_t *conn, size_t from,
                      const unsigned char *in, size_t len, uint32_t flags,
                      const morphd_frame_t *frame, morphd_buf_t *dest,
                      morphd_result_t *r);

/* The frame of the message whose output `out` is: a transform call's, or
 * a pending message's; NULL for any other pointer. (The host services
 * that read the request or shape the response through `out`: http.) */
const morphd_frame_t *morphd_chain_out_frame(const morph_out_t *out);

/* --- jobs (jobs.c) ---------------------------------------------------------- */

/* What a job is waiting for, or how it ended (morphd_job_t.state). */
enum morphd_job_state {
    MORPHD_JOB_DEFERRED, /* waiting for the plugin's done() or fail() */
    MORPHD_JOB_RUNNING,  /* on the thread pool */
    MORPHD_JOB_DONE,
    MORPHD_JOB_FAILED,
};

/* A message in flight. The transport keeps a pointer to it between
 * job_start and job_done (or until it cancels it). */
struct morphd_job {
    morph_pending_t pub;   /* what the plugin sees */
    morph_out_t out;       /* the pending stage's output ... */
    morphd_buf_t buf;      /* ... and its storage */
    morphd_buf_t in;       /* a blocking stage's input, copied */
    morphd_conn_t conn;    /* the message's connection, copied */
    void **own_states;     /* states the job owns (UDP, or a gone TCP conn) */
    void *lazy_state;      /* a state set while running off the loop */
    morphd_chain_t *chain; /* a reference */
    size_t stage;
    uint32_t flags;        /* the message's */
    uint32_t reply;        /* MORPH_REPLY_* so far */
    int state;             /* enum morphd_job_state */
    bool in_call;          /* deferred inside transform(), not returned */
    /* on the thread pool: the loop touches nothing the pool thread reads,
     * and marks a job whose connection went `abandoned` instead */
    bool offloaded;
    bool abandoned;
    morphd_job_t *ready_next;
    uint64_t t0;           /* ticks when the stage was called */
    uint64_t call_ticks;   /* how long that call took (deferred: its own) */
    /* how its reply is framed: the run's frame, its header bytes copied
     * into frame_head */
    morphd_frame_t frame;
    /* for the transport's own list */
    morphd_job_t *tprev, *tnext;
    void *tdata;
    /* not zeroed when a job is made: written before they are read */
    char reason[192];
    uv_work_t work;               /* set up by uv_queue_work */
    struct sockaddr_storage peer; /* conn.peer points here when it is set */
    struct sockaddr_storage local; /* conn.local: for a job off the loop */
    struct sockaddr_storage via;   /* conn.via: a UDP reply's balancer */
    morphd_cred_t cred;            /* conn.cred: likewise */
    unsigned char inline_buf[128]; /* buf's storage while it fits */
    unsigned char frame_head[MORPHD_FRAME_KEEP_MAX];
};
/* Jobs are kept for reuse by their env, up to this many per worker. */
#define MORPHD_SPARE_JOBS 128

/* The connection of a job is gone (transport NULL from now on). A deferred
 * job is cancelled at once (the plugin's cancel()); one running on the
 * thread pool ends there and is then freed. `states` (may be NULL) are
 * the connection's plugin states, handed to the job to close when it no
 * longer runs. */
void morphd_job_abandon(morphd_job_t *job, void **states);

/* Hands a job states to close when it ends (UDP: the datagram's, which
 * lived on the stack). Returns 0 or -1 (out of memory). */
int morphd_job_own_states(morphd_job_t *job, void **states);

/* For chain.c, which makes the jobs (a plugin defers, or a stage blocks),
 * and jobs.c, which carries them on: */
/* A job for stage `stage` of `chain` on `conn` (NULL when the worker has
 * as many in flight as it takes, or out of memory). */
morphd_job_t *morphd_job_new(morphd_chain_t *chain, const morphd_conn_t *conn,
                             size_t stage, uint32_t flags,
                             const morphd_frame_t *frame);
void morphd_job_free(morphd_job_t *job);
/* The frame of the job whose output `out` is, or NULL when it is none. */
const morphd_frame_t *morphd_job_out_frame(const morph_out_t *out);
/* Counts it in flight (messages_pending, the plugin's). */
void morphd_job_counted(morphd_job_t *job);
/* The job has ended (done, failed, back from the pool): it is finished
 * from the loop, in order, on the next turn. */
void morphd_job_ready(morphd_job_t *job);
/* Grows the job's output buffer to min_cap; -1 when out of memory. */
int morphd_job_buf_reserve(morphd_job_t *job, size_t min_cap);
/* uv_queue_work's two halves for a MORPH_PLUGIN_BLOCKING stage. */
void morphd_job_work_run(uv_work_t *w);
void morphd_job_work_done(uv_work_t *w, int status);

#endif
