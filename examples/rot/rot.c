/*
 * rot -- rotates ASCII letters by `rot.shift` places (default 13, ROT13):
 * "Hello" -> "Uryyb".
 *
 * Demonstrates options: create() reads `shift` from the service's
 * `rot.shift = N` line and refuses values outside 1..25 (and unknown
 * options) with a message morphd prints as a config error, file:line.
 * Chunk-safe: each byte is mapped on its own.
 *
 * Build: cc -std=c11 $(pkg-config --cflags morph-plugin) -shared -fPIC \
 *            rot.c -o rot.so
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <morph/plugin.h>

typedef struct rot {
    int shift;
} rot_t;

static int rot_create(const morph_host_t *host, const morph_option_t *options,
                      size_t n_options, void **instance, char *err,
                      size_t err_size)
{
    (void)host;
    int shift = 13;
    for (size_t i = 0; i < n_options; i++) {
        if (strcmp(options[i].key, "shift") != 0) {
            snprintf(err, err_size, "unknown option '%s' (known: shift)",
                     options[i].key);
            return MORPH_ERROR;
        }
        char *end;
        long v = strtol(options[i].value, &end, 10);
        if (*options[i].value == '\0' || *end != '\0' || v < 1 || v > 25) {
            snprintf(err, err_size, "shift must be a number 1..25, not '%s'",
                     options[i].value);
            return MORPH_ERROR;
        }
        shift = (int)v;
    }
    rot_t *r = malloc(sizeof *r);
    if (r == NULL) {
        snprintf(err, err_size, "out of memory");
        return MORPH_ERROR;
    }
    r->shift = shift;
    *instance = r;
    return MORPH_OK;
}

static void rot_destroy(void *instance) { free(instance); }

static int rot_transform(void *instance, void *conn, const morph_msg_t *msg,
                         morph_out_t *out)
{
    const rot_t *r = instance;
    (void)conn;
    for (size_t i = 0; i < msg->len; i++) {
        unsigned char c = msg->data[i];
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)('a' + (c - 'a' + r->shift) % 26);
        else if (c >= 'A' && c <= 'Z')
            c = (unsigned char)('A' + (c - 'A' + r->shift) % 26);
        out->data[i] = c;
    }
    out->len = msg->len;
    return MORPH_OK;
}

MORPH_PLUGIN_EXPORT const morph_plugin_t morph_plugin = {
    MORPH_PLUGIN_HEADER_INIT,
    .name = "rot",
    .version = "1.0.0",
    .description = "rotates ASCII letters by rot.shift places (ROT13)",
    .flags = MORPH_PLUGIN_CHUNK_SAFE,
    .create = rot_create,
    .destroy = rot_destroy,
    .transform = rot_transform,
};
