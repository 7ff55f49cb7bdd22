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
    unsigned long line_no; /* of the message: its number, from 1 */
    int failed;
    morphd_buf_t framed;   /* a reply in its frame */
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

static int run_one(pipe_ctx_t *p, const unsigned char *data, size_t len,
                   uint32_t flags, const morphd_frame_t *frame)
{
    const unsigned char *out;
    size_t out_len;
    char err[512];
    p->line_no++;
    int rc = morphd_standalone_apply(&p->chain, data, len, flags, &out,
                                     &out_len, NULL, err, sizeof err);
    if (rc == 1)
        return 0; /* the plugins asked for no reply: not even the ending */
    if (rc != 0) {
        if (flags & MORPH_MSG_CHUNK)
            fprintf(stderr, "morph pipe: %s\n", err);
        else
            fprintf(stderr, "morph pipe: %s %lu: %s\n", p->unit, p->line_no,
                    err);
        p->failed = 1;
        /* a codec plugin may say so in its protocol (resp: -ERR) */
        p->framed.len = 0;
        if (morphd_frame_failed(frame, &p->framed) == 0 && p->framed.len > 0)
            return write_all(p->framed.data, p->framed.len);
        return 0;
    }
    size_t mark;
    p->framed.len = 0;
    if (morphd_frame_begin(frame, &p->framed, &mark) != 0 ||
        morphd_buf_append(&p->framed, out, out_len) != 0 ||
        (rc = morphd_frame_end(frame, &p->framed, mark, out_len)) < 0) {
        fprintf(stderr, "morph pipe: out of memory\n");
        return -1;
    }
    if (rc > 0) {
        morphd_frame_explain(frame, out_len, err, sizeof err);
        fprintf(stderr, "morph pipe: %s %lu: %s\n", p->unit, p->line_no, err);
        p->failed = 1;
        return 0;
    }
    return write_all(p->framed.data, p->framed.len);
}

static int on_message(void *ctx, const unsigned char *msg, size_t len,
                      const morphd_frame_t *frame)
{
    if (frame->shape == &morphd_shape_direct ||
        frame->shape == &morphd_shape_direct_close) { /* the codec's own */
        if (write_all(msg, len) != 0)
            return -1;
        return frame->shape == &morphd_shape_direct_close;
    }
    return run_one(ctx, msg, len, 0, frame);
}

/* The decoder's verdict on bad input, said once. */
static void bad_input(int rc, const morphd_decoder_t *d, const pipe_ctx_t *p,
                      size_t max_message)
{
    if (rc == MORPHD_DECODER_TOO_LONG && strcmp(p->unit, "line") == 0)
        fprintf(stderr, "morph pipe: line %lu is longer than --max-message "
                "(%zu bytes)\n", p->line_no + 1, max_message);
    else if (rc == MORPHD_DECODER_TOO_LONG)
        fprintf(stderr, "morph pipe: message %lu: %s (--max-message is %zu "
                "bytes)\n", p->line_no + 1, d->reason, max_message);
    else if (rc == MORPHD_DECODER_INVALID)
        fprintf(stderr, "morph pipe: message %lu: %s: the input is not the "
                "framing\n", p->line_no + 1, d->reason);
    else if (rc == -1)
        fprintf(stderr, "morph pipe: out of memory\n");
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

    morphd_decoder_t decoder = MORPHD_DECODER_INIT;
    if (codec_plugin != NULL) { /* this process's instance and state */
        morphd_standalone_codec(&p.chain, &codec);
        decoder.state = p.chain.codec_state;
    }
    static unsigned char buf[64 * 1024];
    int rc = 0;
    for (;;) {
        ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "morph pipe: reading input: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        if (r == 0) {
            if (stream) {
                rc = run_one(&p, NULL, 0, MORPH_MSG_CHUNK | MORPH_MSG_END,
                             &morphd_frame_none);
            } else {
                rc = morphd_decoder_finish(&decoder, &codec, on_message, &p);
                bad_input(rc, &decoder, &p, max_message);
                if (rc == 0 && p.chain.chain->line_end) /* a trailer */
                    rc = run_one(&p, NULL, 0, MORPH_MSG_END, &morphd_frame_none);
            }
            break;
        }
        if (stream) {
            rc = run_one(&p, buf, (size_t)r, MORPH_MSG_CHUNK, &morphd_frame_none);
            fflush(stdout); /* interactive use: show each chunk at once */
        } else {
            rc = morphd_decoder_feed(&decoder, &codec, buf, (size_t)r,
                                     on_message, &p, NULL);
            bad_input(rc, &decoder, &p, max_message);
        }
        if (rc != 0)
            break;
    }
    if (fflush(stdout) != 0)
        rc = -1;
    morphd_decoder_free(&decoder);
    morphd_buf_free(&p.framed);
    morphd_standalone_close(&p.chain);
    morphd_chain_spec_free(names, n);
    return rc != 0 || p.failed ? MORPH_EXIT_FAILURE : MORPH_EXIT_OK;
}
