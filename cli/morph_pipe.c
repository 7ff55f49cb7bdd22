/*
 * morph_pipe.c -- `morph pipe`: apply a chain of plugins to standard input
 * and write the result to standard output, without a network: cut into
 * messages by any framing (line by default; --framing), each reply framed
 * the same way, through the same codecs, loader and chain code as morphd.
 */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"
#include "engine/standalone_wire.h"
#include "base/log.h"
#include "morph_cli.h"
#include "base/paths.h"
#include "engine/standalone.h"

static void pipe_usage(FILE *out)
{
    fprintf(out,
            "Usage: morph pipe [-d PLUGIN_DIRS] [-o PLUGIN.KEY=VALUE]...\n"
            "                  [--framing NAME [--length-field F] [--length-offset N]\n"
            "                  [--length-adjust N] [--delimiter BYTES]] [--stream]\n"
            "                  [--max-message SIZE] CHAIN < INPUT\n"
            "\n"
            "Applies CHAIN (plugin names separated by ',' or '|', e.g.\n"
            "uppercase,reverse) to standard input and writes the result to\n"
            "standard output. A plugin is NAME.so, or a Lua script NAME.lua.\n"
            "\n"
            "  -d, --plugin-dir DIRS  where the plugins are: folders separated by\n"
            "                         spaces, searched in order (default: %s)\n"
            "  -o, --option P.K=V     a plugin option, as in the INI file\n"
            "                         (reverse.unit=codepoint)\n"
            "  -f, --framing NAME     how input is cut into messages, and replies\n"
            "                         framed, as morphd's framing key: line (the\n"
            "                         default), stream, length, netstring, delimiter,\n"
            "                         or a codec plugin (resp)\n"
            "      --length-field F   framing length: u8 u16be u16le u24be u32be\n"
            "                         (default) u32le u64be u64le varint\n"
            "      --length-offset N  framing length: header bytes before the field\n"
            "      --length-adjust N  framing length: added to the field's value\n"
            "      --delimiter BYTES  framing delimiter: C escapes (default \\0)\n"
            "  -s, --stream           --framing stream: transform chunks as they are\n"
            "                         read (every plugin must be chunk-safe)\n"
            "  -m, --max-message N    longest message, in bytes (default 65536)\n"
            "  -h, --help             show this help\n"
            "\n"
            "Exit status: 0 success; 1 a plugin failed a message (the error is\n"
            "printed, that message is skipped, the rest is processed), a message\n"
            "exceeded --max-message or the input is not the framing; 64 bad\n"
            "usage; 78 a plugin could not be\n"
            "loaded or rejected its options.\n",
            morphd_default_plugin_dir());
}

typedef struct pipe_ctx {
    morphd_standalone_t chain;
    morphd_wire_t wire;
    int failed;
    const char *unit;      /* what a message is called: "line", "message" */
} pipe_ctx_t;

static int write_all(const void *data, size_t len)
{
    if (len > 0 && fwrite(data, 1, len, stdout) != len) {
        fprintf(stderr, "morph pipe: writing output: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* A message failed, or its reply could not be framed: said, and the next
 * one goes on. */
static void on_failed(void *ctx, unsigned long n, const char *why)
{
    pipe_ctx_t *p = ctx;
    if (p->wire.codec.chunks)
        fprintf(stderr, "morph pipe: %s\n", why);
    else
        fprintf(stderr, "morph pipe: %s %lu: %s\n", p->unit, n, why);
    p->failed = 1;
}

/* What the wire gathered, written out (and taken out of it). */
static int flush_wire(pipe_ctx_t *p)
{
    int rc = write_all(p->wire.out.data, p->wire.out.len);
    p->wire.out.len = 0;
    return rc;
}

/* The decoder's verdict on bad input, said once. */
static void bad_input(int rc, const morphd_decoder_t *d, const pipe_ctx_t *p,
                      size_t max_message)
{
    unsigned long n = p->wire.messages;
    if (rc == MORPHD_DECODER_TOO_LONG && strcmp(p->unit, "line") == 0)
        fprintf(stderr, "morph pipe: line %lu is longer than --max-message "
                "(%zu bytes)\n", n + 1, max_message);
    else if (rc == MORPHD_DECODER_TOO_LONG)
        fprintf(stderr, "morph pipe: message %lu: %s (--max-message is %zu "
                "bytes)\n", n + 1, d->reason, max_message);
    else if (rc == MORPHD_DECODER_INVALID)
        fprintf(stderr, "morph pipe: message %lu: %s: the input is not the "
                "framing\n", n + 1, d->reason);
}

static int parse_int(const char *opt, const char *text, long long lo,
                     long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || end == text || v < lo || v > hi) {
        fprintf(stderr, "morph pipe: %s takes a number %lld..%lld\n", opt,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int morph_pipe_main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"plugin-dir", required_argument, NULL, 'd'},
        {"option", required_argument, NULL, 'o'},
        {"stream", no_argument, NULL, 's'},
        {"framing", required_argument, NULL, 'f'},
        {"length-field", required_argument, NULL, 'L'},
        {"length-offset", required_argument, NULL, 'O'},
        {"length-adjust", required_argument, NULL, 'A'},
        {"delimiter", required_argument, NULL, 'D'},
        {"max-message", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = morphd_default_plugin_dir();
    const char *options[64];
    size_t n_options = 0;
    const morphd_codec_ops_t *framing = morphd_codec_builtin("line");
    const char *codec_plugin = NULL; /* --framing NAME of a codec plugin */
    morphd_length_kind_t length_field = MORPHD_LEN_U32BE;
    long long length_offset = 0, length_adjust = 0;
    unsigned char delimiter[MORPHD_FRAME_TAIL_MAX] = {0};
    size_t delimiter_len = 1;
    size_t max_message = 64 * 1024;
    char err[1024];
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:o:sf:m:h", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            dir = optarg;
            break;
        case 'o':
            if (n_options == sizeof options / sizeof *options) {
                fprintf(stderr, "morph pipe: too many -o options\n");
                return MORPH_EXIT_USAGE;
            }
            options[n_options++] = optarg;
            break;
        case 's':
            framing = morphd_codec_builtin("stream");
            break;
        case 'f':
            codec_plugin = NULL;
            if ((framing = morphd_codec_builtin(optarg)) == NULL) {
                if (!morphd_valid_name(optarg)) {
                    fprintf(stderr, "morph pipe: --framing: '%s' is not one "
                            "of %s nor a codec plugin's name\n", optarg,
                            morphd_codec_builtin_names);
                    return MORPH_EXIT_USAGE;
                }
                framing = &morphd_codec_plugin; /* NAME.so or NAME.lua */
                codec_plugin = optarg;
            }
            break;
        case 'L':
            if (morph_option_length_field("morph pipe", optarg,
                                          &length_field) != 0)
                return MORPH_EXIT_USAGE;
            break;
        case 'O':
            if (parse_int("--length-offset", optarg, 0, MORPHD_FRAME_HEAD_MAX,
                          &length_offset) != 0)
                return MORPH_EXIT_USAGE;
            break;
        case 'A':
            if (parse_int("--length-adjust", optarg, -(64ll << 20),
                          64ll << 20, &length_adjust) != 0)
                return MORPH_EXIT_USAGE;
            break;
        case 'D':
            if (morph_option_delimiter("morph pipe", optarg, delimiter,
                                       sizeof delimiter, &delimiter_len) != 0)
                return MORPH_EXIT_USAGE;
            break;
        case 'm': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end != '\0' || v == 0 || v > (64u << 20)) {
                fprintf(stderr, "morph pipe: --max-message must be 1..%u\n",
                        64u << 20);
                return MORPH_EXIT_USAGE;
            }
            max_message = (size_t)v;
            break;
        }
        case 'h':
            pipe_usage(stdout);
            return 0;
        default:
            pipe_usage(stderr);
            return MORPH_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "morph pipe: expected one CHAIN, e.g. uppercase,reverse\n");
        pipe_usage(stderr);
        return MORPH_EXIT_USAGE;
    }
    morphd_codec_t codec;
    if (morphd_codec_init(&codec, framing, max_message, length_field,
                          (size_t)length_offset, length_adjust, delimiter,
                          delimiter_len, err, sizeof err) != 0) {
        fprintf(stderr, "morph pipe: %s\n", err);
        return MORPH_EXIT_USAGE;
    }
    bool stream = codec.chunks;
    char **names;
    size_t n;
    if (morphd_chain_spec_parse(argv[optind], &names, &n, err, sizeof err) !=
        0) {
        fprintf(stderr, "morph pipe: %s\n", err);
        return MORPH_EXIT_USAGE;
    }

    morphd_log_set_level(MORPH_LOG_WARN);
    pipe_ctx_t p = {0};
    p.unit = codec.ops == &morphd_codec_line ? "line" : "message";
    if (morphd_standalone_open_framed(&p.chain, dir, (const char *const *)names,
                                      n, codec_plugin, options, n_options,
                                      max_message, err, sizeof err) != 0) {
        fprintf(stderr, "morph pipe: %s\n", err);
        morphd_chain_spec_free(names, n);
        return MORPH_EXIT_CONFIG;
    }
    if (stream && !p.chain.chain->chunk_safe) {
        for (size_t i = 0; i < n; i++)
            if (!(p.chain.plugins[i].desc->flags & MORPH_PLUGIN_CHUNK_SAFE))
                fprintf(stderr, "morph pipe: plugin '%s' is not chunk-safe, so "
                        "it cannot run with --stream\n", names[i]);
        morphd_standalone_close(&p.chain);
        morphd_chain_spec_free(names, n);
        return MORPH_EXIT_USAGE;
    }

    morphd_wire_init(&p.wire, &p.chain, &codec);
    p.wire.failed = on_failed;
    p.wire.ctx = &p;
    static unsigned char buf[64 * 1024];
    int rc = 0;
    while (rc == 0 && !p.wire.ended) {
        ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "morph pipe: reading input: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        rc = r == 0 ? morphd_wire_finish(&p.wire)
                    : morphd_wire_feed(&p.wire, buf, (size_t)r);
        if (rc != 0)
            fprintf(stderr, "morph pipe: out of memory\n");
        else if (p.wire.refused != 0)
            bad_input(p.wire.refused, &p.wire.decoder, &p, max_message);
        if (flush_wire(&p) != 0)
            rc = -1;
        else if (stream)
            fflush(stdout); /* interactive use: show each chunk at once */
    }
    if (p.wire.refused != 0 || p.wire.closed_by_codec)
        rc = -1; /* the input was not all served */
    if (fflush(stdout) != 0)
        rc = -1;
    morphd_wire_free(&p.wire);
    morphd_standalone_close(&p.chain);
    morphd_chain_spec_free(names, n);
    return rc != 0 || p.failed ? MORPH_EXIT_FAILURE : MORPH_EXIT_OK;
}
