/*
 * testing.c -- <morph/testing.h>, the plugin authors' test helper: a thin
 * wrapper over core/standalone.c so that tests exercise the real loader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/testing.h>

#include "base/log.h"
#include "engine/standalone.h"

struct morph_test {
    morphd_standalone_t chain;
    uint32_t reply;
    char error[512];
};

morph_test_t *morph_test_load(const char *dir, const char *name,
                              const char *const *options, char *err,
                              size_t err_size)
{
    morph_test_t *t = calloc(1, sizeof *t);
    size_t n = 0;
    while (options && options[n])
        n++;
    char **prefixed = calloc(n + 1, sizeof *prefixed);
    if (t == NULL || prefixed == NULL) {
        snprintf(err, err_size, "out of memory");
        free(t);
        free(prefixed);
        return NULL;
    }
    morphd_log_set_level(MORPH_LOG_WARN);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (asprintf(&prefixed[i], "%s.%s", name, options[i]) < 0) {
            prefixed[i] = NULL;
            rc = -1;
        }
    if (rc == 0)
        rc = morphd_standalone_open(&t->chain, dir, &name, 1,
                                    (const char *const *)prefixed, n,
                                    64 * 1024, err, err_size);
    else
        snprintf(err, err_size, "out of memory");
    for (size_t i = 0; i < n; i++)
        free(prefixed[i]);
    free(prefixed);
    if (rc != 0) {
        free(t);
        return NULL;
    }
    return t;
}

int morph_test_feed(morph_test_t *t, const void *in, size_t len,
                    uint32_t flags, const unsigned char **out,
                    size_t *out_len)
{
    t->error[0] = '\0';
    t->reply = 0;
    int rc = morphd_standalone_apply(&t->chain, in, len, flags, out, out_len,
                                     &t->reply, t->error, sizeof t->error);
    return rc < 0 ? -1 : rc == 2 ? 2 : 0;
}

char *morph_test_transform(morph_test_t *t, const char *in)
{
    const unsigned char *out;
    size_t len;
    if (morph_test_feed(t, in, strlen(in), 0, &out, &len) != 0)
        return NULL; /* failed, or pending on the test's clock */
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, out, len);
        copy[len] = '\0';
    }
    return copy;
}

const char *morph_test_error(const morph_test_t *t) { return t->error; }

uint32_t morph_test_reply(const morph_test_t *t) { return t->reply; }

int morph_test_reconnect(morph_test_t *t)
{
    return morphd_standalone_reconnect(&t->chain, t->error, sizeof t->error);
}

void morph_test_use_clock(morph_test_t *t)
{
    morphd_standalone_use_clock(&t->chain);
}

int morph_test_advance(morph_test_t *t, uint64_t ms, const unsigned char **out,
                       size_t *out_len)
{
    t->error[0] = '\0';
    int rc = morphd_standalone_advance(&t->chain, ms, out, out_len, &t->reply,
                                       t->error, sizeof t->error);
    return rc < 0 ? -1 : rc == 2 ? 2 : 0;
}

int morph_test_counter(const morph_test_t *t, const char *name,
                       uint64_t *value)
{
    return morphd_standalone_counter(&t->chain, name, value);
}

int morph_test_peer(morph_test_t *t, const char *transport,
                    const char *address, uint16_t port)
{
    return morphd_standalone_peer(&t->chain, transport, address, port,
                                  t->error, sizeof t->error);
}

int morph_test_leave_during(morph_test_t *t, const void *in, size_t len)
{
    t->error[0] = '\0';
    return morphd_standalone_leave_during(&t->chain, in, len, t->error,
                                          sizeof t->error);
}

void morph_test_free(morph_test_t *t)
{
    if (t == NULL)
        return;
    morphd_standalone_close(&t->chain);
    free(t);
}
