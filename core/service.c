/*
 * service.c -- what every front end does with a message: run the chain and
 * queue the reply, counting and logging failures the same way for TCP and
 * UDP.
 */
#include "service.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

void morphd_service_ref(morphd_service_t *svc) { svc->refs++; }

void morphd_service_unref(morphd_service_t *svc)
{
    if (--svc->refs == 0 && svc->retired)
        morphd_service_destroy(svc);
}

void morphd_service_destroy(morphd_service_t *svc)
{
    morphd_generation_t *gen = svc->gen;
    if (svc->all != NULL) {
        if (svc->prev)
            svc->prev->next = svc->next;
        else
            *svc->all = svc->next;
        if (svc->next)
            svc->next->prev = svc->prev;
    }
    morphd_chain_destroy(svc->chain);
    free(svc->listeners);
    if (svc->stats != NULL)
        morphd_stats_put(svc->stats_head, svc->stats);
    free(svc);
    /* services of one generation die on different worker threads */
    if (gen != NULL && __atomic_sub_fetch(&gen->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        morphd_config_free(&gen->cfg);
        free(gen);
    }
}

/* A cheap clock for spotting slow transforms: a few ms of resolution is
 * plenty against the 100 ms threshold, and it costs far less per message
 * than a precise one. */
static uint64_t coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int morphd_service_handle(morphd_service_t *svc, void **states,
                          const unsigned char *msg, size_t len,
                          uint32_t flags, const char *ending)
{
    morphd_loop_ctx_t *ctx = svc->ctx;
    const unsigned char *out;
    size_t out_len;
    char err[320];

    if (len > 0 || !(flags & MORPH_MSG_END))
        MORPHD_STAT_ADD(svc->stats, messages_in, 1);
    MORPHD_STAT_ADD(svc->stats, bytes_in, len);
    uint64_t t0 = coarse_ms();
    int rc = morphd_chain_apply(svc->chain,
                                svc->chain->has_conn_hooks ? states : NULL, msg,
                                len, flags, &ctx->scratch, &out, &out_len, err,
                                sizeof err);
    uint64_t ms = coarse_ms() - t0;
    if (ms >= MORPHD_SLOW_MESSAGE_MS)
        morphd_log(MORPH_LOG_WARN, "service %s: the transform took %llu ms "
                   "for a message of %zu bytes; a plugin that blocks stalls "
                   "every client of its worker", svc->conf->name,
                   (unsigned long long)ms, len);
    if (rc != 0) {
        MORPHD_STAT_ADD(svc->stats, errors, 1);
        morphd_log(MORPH_LOG_WARN, "service %s: %s; message of %zu bytes "
                   "not answered", svc->conf->name, err, len);
        return MORPHD_MSG_FAILED;
    }
    if (morphd_buf_append(&ctx->reply, out, out_len) != 0)
        return -1;
    size_t ending_len = strlen(ending);
    if (morphd_buf_append(&ctx->reply, ending, ending_len) != 0)
        return -1;
    if (out_len + ending_len > 0 || !(flags & MORPH_MSG_CHUNK))
        MORPHD_STAT_ADD(svc->stats, messages_out, 1);
    MORPHD_STAT_ADD(svc->stats, bytes_out, out_len + ending_len);
    return 0;
}
