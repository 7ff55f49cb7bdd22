/* A plugin that uses every HTTP host service of ABI 5 (test_http):
 * answers "METHOD TARGET VERSION x=X-PROBE fields=N", or "not http";
 * sets the status X-Status asks for, adds the header field X-Add names
 * ("Name: value"), and with X-Defer answers the same from a timer, after
 * the request's input is gone (a pending message reads its own copy), or
 * with X-Defer: now at once, inside transform(), through the pending
 * message's out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/plugin.h>

typedef struct probe {
    const morph_host_t *host;
} probe_t;

static int create(const morph_host_t *host, const morph_option_t *options,
                  size_t n_options, void **instance, char *err,
                  size_t err_size)
{
    (void)options, (void)n_options, (void)err, (void)err_size;
    probe_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return MORPH_ERROR;
    p->host = host;
    *instance = p;
    return MORPH_OK;
}

static void destroy(void *instance) { free(instance); }

/* The value of header `name` as a string in buf ("-" when none). */
static const char *header(const probe_t *p, const morph_out_t *out,
                          const char *name, char *buf, size_t size)
{
    morph_http_field_t f = {.struct_size = sizeof f};
    if (p->host->http_header(p->host, out, name, 0, &f) != MORPH_OK)
        return "-";
    snprintf(buf, size, "%.*s", (int)f.value_len, f.value);
    return buf;
}

/* Writes the answer into out, and shapes the response. */
static int answer(const probe_t *p, morph_out_t *out)
{
    morph_http_request_t req = {.struct_size = sizeof req};
    char line[512], probe[128], status[16], add[256] = "";
    if (p->host->http_request(p->host, out, &req) != MORPH_OK) {
        out->len = 0;
        return morph_out_append(out, "not http", 8);
    }
    size_t fields = 0;
    morph_http_field_t f = {.struct_size = sizeof f};
    while (p->host->http_header(p->host, out, NULL, fields, &f) == MORPH_OK)
        fields++;
    int n = snprintf(line, sizeof line, "%.*s %.*s %u x=%s fields=%zu",
                     (int)req.method_len, req.method, (int)req.target_len,
                     req.target, req.version,
                     header(p, out, "x-probe", probe, sizeof probe), fields);
    const char *s = header(p, out, "X-Status", status, sizeof status);
    if (strcmp(s, "-") != 0 &&
        p->host->http_status(p->host, out, atoi(s)) != MORPH_OK)
        n += snprintf(line + n, sizeof line - (size_t)n, " status-refused");
    const char *a = header(p, out, "X-Add", add, sizeof add);
    char *colon = strchr(add, ':');
    if (strcmp(a, "-") != 0 && colon != NULL) {
        *colon = '\0';
        const char *value = colon + 1 + (colon[1] == ' ');
        if (p->host->http_header_add(p->host, out, add, value) != MORPH_OK)
            n += snprintf(line + n, sizeof line - (size_t)n, " header-refused");
    }
    out->len = 0;
    return morph_out_append(out, line, (size_t)n);
}

typedef struct wait {
    const probe_t *p;
    morph_pending_t *pending;
    morph_timer_t *timer;
} wait_t;

static void later(void *arg)
{
    wait_t *w = arg;
    morph_pending_t *pending = w->pending;
    int rc = answer(w->p, pending->out);
    free(w);
    if (rc != MORPH_OK)
        pending->fail(pending, "out of memory");
    else
        pending->done(pending);
}

static int transform(void *instance, void *state, const morph_msg_t *msg,
                     morph_out_t *out)
{
    (void)state, (void)msg;
    probe_t *p = instance;
    char d[8];
    if (strcmp(header(p, out, "x-defer", d, sizeof d), "-") != 0) {
        wait_t *w = calloc(1, sizeof *w);
        if (w == NULL)
            return morph_out_fail(out, "out of memory");
        w->p = p;
        w->pending = morph_out_defer(out, w);
        if (w->pending == NULL) {
            free(w);
            return morph_out_fail(out, "cannot defer");
        }
        if (strcmp(d, "now") == 0) {
            later(w);
            return MORPH_OK;
        }
        w->timer = p->host->timer_start(p->host, 20, later, w);
        if (w->timer == NULL) {
            morph_pending_t *pending = w->pending;
            free(w);
            pending->fail(pending, "no timer");
        }
        return MORPH_OK;
    }
    return answer(p, out);
}

static void cancel(void *instance, morph_pending_t *pending)
{
    probe_t *p = instance;
    wait_t *w = pending->user;
    p->host->timer_stop(p->host, w->timer);
    free(w);
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .abi_min = 5,
    .name = "http_probe",
    .version = "1.0",
    .description = "answers with what the HTTP host services tell",
    .create = create,
    .destroy = destroy,
    .transform = transform,
    .cancel = cancel,
};
