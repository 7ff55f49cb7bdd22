/*
 * service.c -- the service object and the message path (service.h): run
 * the chain, frame the reply as the codec said, count, and log what a
 * plugin failed, the same way for every transport.
 */
#include "net/service.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

void morphd_service_ref(morphd_service_t *svc) { svc->refs++; }

void morphd_service_unref(morphd_service_t *svc)
{
    if (--svc->refs == 0 && svc->retired)
        morphd_service_destroy(svc);
}

void morphd_service_destroy(morphd_service_t *svc)
{
    if (svc->all != NULL) {
        if (svc->prev)
            svc->prev->next = svc->next;
        else
            *svc->all = svc->next;
        if (svc->next)
            svc->next->prev = svc->prev;
    }
    morphd_chain_release(svc->chain);
    morphd_buf_free(&svc->codec_scratch);
    morphd_buf_free(&svc->http_scratch);
    morphd_buf_free(&svc->http_exchange.extra);
    if (svc->stats != NULL)
        morphd_stats_put(svc->stats_head, svc->stats);
    void (*on_destroy)(void *) = svc->on_destroy;
    void *arg = svc->on_destroy_arg;
    free(svc);
    if (on_destroy != NULL)
        on_destroy(arg);
}

void morphd_service_conn_opened(morphd_service_t *svc) { svc->n_conns++; }

void morphd_service_conn_closed(morphd_service_t *svc)
{
    if (--svc->n_conns == 0 && svc->on_conns_gone != NULL)
        svc->on_conns_gone(svc);
}

/* A reply its frame cannot hold (codec.h: morphd_frame_end): counted and
 * logged, out of conclude's way. */
static __attribute__((noinline, cold)) void
unframable(morphd_service_t *svc, const morphd_frame_t *frame, size_t len)
{
    char why[160];
    morphd_frame_explain(frame, len, why, sizeof why);
    MORPHD_LANE_ADD(svc->counts, errors, 1);
    morphd_log(MORPH_LOG_WARN, "service %s: %s; not answered", svc->conf->name,
               why);
}

/* The outcomes other than a reply: no bytes (what the frame began is
 * taken out again), counted and logged. */
static void conclude_other(morphd_service_t *svc, const morphd_result_t *r,
                           size_t in_len, morphd_buf_t *out, size_t mark,
                           morphd_reply_t *rep)
{
    rep->datagram = false;
    rep->len = 0;
    morphd_frame_cancel(out, mark);
    switch (r->status) {
    case MORPHD_RUN_PENDING:
        rep->status = MORPHD_RUN_PENDING;
        return;
    case MORPHD_RUN_NOMEM:
        rep->status = MORPHD_RUN_NOMEM;
        return;
    case MORPHD_RUN_FAILED: {
        MORPHD_LANE_ADD(svc->counts, errors, 1);
        /* a codec may say so in its protocol (resp: -ERR; http: 500) */
        int said = morphd_frame_failed(r->frame, out);
        if (said < 0)
            morphd_frame_cancel(out, mark);
        else if (said == MORPHD_FRAME_CLOSE)
            rep->flags |= MORPH_REPLY_CLOSE;
        if (in_len == (size_t)-1)
            morphd_log(MORPH_LOG_WARN, "service %s: %s; message not "
                       "answered", svc->conf->name, r->error);
        else
            morphd_log(MORPH_LOG_WARN, "service %s: %s; message of %zu bytes "
                       "not answered", svc->conf->name, r->error, in_len);
        rep->status = MORPHD_RUN_FAILED;
        return;
    }
    }
    /* MORPH_REPLY_NONE: nothing at all, but where the protocol answers
     * every request (http: 204) */
    rep->status = MORPHD_RUN_DONE;
    int said = morphd_frame_unanswered(r->frame, out, r->reply);
    if (said < 0)
        rep->status = MORPHD_RUN_NOMEM;
    else if (said == MORPHD_FRAME_CLOSE)
        rep->flags |= MORPH_REPLY_CLOSE;
}

/* Turns a chain's outcome into reply bytes in `out`: framed as r->frame
 * says, from `mark` on (morphd_frame_begin's; when `appended`, the chain
 * appended the reply after it already). A reply, the path of nearly every
 * message, comes first. */
static inline __attribute__((always_inline)) void
conclude(morphd_service_t *svc, const morphd_result_t *r, size_t in_len,
         uint32_t flags, morphd_buf_t *out, size_t mark, bool appended,
         morphd_reply_t *rep)
{
    rep->flags = r->reply;
    if (r->ns >= (uint64_t)MORPHD_SLOW_MESSAGE_MS * 1000000 && in_len != (size_t)-1)
        morphd_log(MORPH_LOG_WARN, "service %s: the transform took %llu ms "
                   "for a message of %zu bytes; a plugin that blocks stalls "
                   "every client of its worker (see MORPH_PLUGIN_BLOCKING)",
                   svc->conf->name, (unsigned long long)(r->ns / 1000000),
                   in_len);
    if (__builtin_expect(r->status != MORPHD_RUN_DONE ||
                         (r->reply & MORPH_REPLY_NONE), 0)) {
        conclude_other(svc, r, in_len, out, mark, rep);
        return;
    }
    rep->status = MORPHD_RUN_DONE;
    const morphd_frame_t *frame = r->frame;
    if (!appended && (morphd_frame_begin(frame, out, &mark) != 0 ||
                      morphd_buf_append(out, r->data, r->len) != 0)) {
        rep->status = MORPHD_RUN_NOMEM;
        rep->datagram = false;
        rep->len = 0;
        return;
    }
    size_t n = r->len;
    if (frame->shape != NULL) {
        int framed = morphd_frame_end_reply(frame, out, mark, n, r->reply);
        if (__builtin_expect(framed != 0, 0)) {
            if (framed == MORPHD_FRAME_CLOSE) {
                rep->flags |= MORPH_REPLY_CLOSE; /* Connection: close */
            } else {
                rep->status = framed < 0 ? MORPHD_RUN_NOMEM : MORPHD_RUN_FAILED;
                rep->datagram = false;
                rep->len = 0;
                if (framed > 0)
                    unframable(svc, frame, n);
                return;
            }
        }
        n = out->len - mark;
    }
    rep->len = n;
    rep->datagram = n > 0 || r->abi1_empty ||
                    (r->reply & MORPH_REPLY_EMPTY_DATAGRAM);
    if (n > 0 || !(flags & MORPH_MSG_CHUNK))
        MORPHD_LANE_ADD(svc->counts, messages_out, 1);
    MORPHD_LANE_ADD(svc->counts, bytes_out, n);
}

void morphd_service_handle(morphd_service_t *svc, morphd_conn_t *conn,
                           const unsigned char *msg, size_t len,
                           uint32_t flags, const morphd_frame_t *frame,
                           morphd_buf_t *out, morphd_reply_t *rep)
{
    bool counted = len > 0 || !(flags & MORPH_MSG_END);
    if (counted)
        MORPHD_LANE_ADD(svc->counts, messages_in, 1);
    /* bytes_in is the transports' to count, as they read: bytes of a line
     * too long to be a message were received too */
    size_t mark;
    if (morphd_frame_begin(frame, out, &mark) != 0) {
        rep->status = MORPHD_RUN_NOMEM;
        rep->counted = counted;
        return;
    }
    morphd_result_t r;
    morphd_chain_run(svc->chain, conn, 0, msg, len, flags, frame, out, &r);
    conclude(svc, &r, len, flags, out, mark, true, rep);
    rep->counted = counted;
}

void morphd_service_finish(morphd_service_t *svc, const morphd_result_t *r,
                           morphd_buf_t *out, morphd_reply_t *rep)
{
    /* a continuation's output is in the chain's own buffer */
    conclude(svc, r, (size_t)-1, 0, out, out->len, false, rep);
    rep->counted = false; /* counted when it began */
}
