/*
 * morph_pipe.c -- `morph pipe`: apply a chain of plugins to standard input
 * and write the result to standard output, without a network. Line by line
 * by default (like line framing), or chunk by chunk with --stream (like
 * stream framing), through the same loader and chain code as morphd.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/framing.h"
#include "base/log.h"
#include "morph_cli.h"
#include "base/paths.h"
#include "engine/standalone.h"

static void pipe_usage(FILE *out)
{
    fprintf(out,
            "Usage: morph pipe [-d PLUGIN_DIRS] [-o PLUGIN.KEY=VALUE]... [--stream]\n"
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
            "  -s, --stream           transform chunks as they are read (every\n"
            "                         plugin must be chunk-safe) instead of lines\n"
            "  -m, --max-message N    longest line, in bytes (default 65536)\n"
            "  -h, --help             show this help\n"
            "\n"
            "Exit status: 0 success; 1 a plugin failed a message (the error is\n"
            "printed, that line is skipped, the rest is processed) or a line\n"
            "exceeded --max-message; 64 bad usage; 78 a plugin could not be\n"
            "loaded or rejected its options.\n",
            morphd_default_plugin_dir());
}

typedef struct pipe_ctx {
    morphd_standalone_t chain;
    unsigned long line_no;
    int failed;
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
                   uint32_t flags, const char *ending)
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
            fprintf(stderr, "morph pipe: line %lu: %s\n", p->line_no, err);
        p->failed = 1;
        return 0;
    }
    if (write_all(out, out_len) != 0 || write_all(ending, strlen(ending)) != 0)
        return -1;
    return 0;
}

static int on_line(void *ctx, const unsigned char *line, size_t len,
                   const char *ending)
{
    return run_one(ctx, line, len, 0, ending);
}

int morph_pipe_main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"plugin-dir", required_argument, NULL, 'd'},
        {"option", required_argument, NULL, 'o'},
        {"stream", no_argument, NULL, 's'},
        {"max-message", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = morphd_default_plugin_dir();
    const char *options[64];
    size_t n_options = 0;
    int stream = 0;
    size_t max_message = 64 * 1024;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:o:sm:h", long_opts, NULL)) != -1) {
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
            stream = 1;
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
    char **names;
    size_t n;
    char err[1024];
    if (morphd_chain_spec_parse(argv[optind], &names, &n, err, sizeof err) !=
        0) {
        fprintf(stderr, "morph pipe: %s\n", err);
        return MORPH_EXIT_USAGE;
    }

    morphd_log_set_level(MORPH_LOG_WARN);
    pipe_ctx_t p = {0};
    if (morphd_standalone_open(&p.chain, dir, (const char *const *)names, n,
                               options, n_options, max_message, err,
                               sizeof err) != 0) {
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

    morphd_framer_t framer;
    morphd_framer_init(&framer, max_message);
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
                rc = run_one(&p, NULL, 0, MORPH_MSG_CHUNK | MORPH_MSG_END, "");
            } else {
                rc = morphd_framer_finish(&framer, on_line, &p);
                if (rc == MORPHD_FRAMER_TOO_LONG)
                    fprintf(stderr, "morph pipe: line %lu is longer than "
                            "--max-message (%zu bytes)\n", p.line_no + 1,
                            max_message);
                if (rc == 0 && p.chain.chain->line_end) /* a trailer */
                    rc = run_one(&p, NULL, 0, MORPH_MSG_END, "");
            }
            break;
        }
        if (stream) {
            rc = run_one(&p, buf, (size_t)r, MORPH_MSG_CHUNK, "");
            fflush(stdout); /* interactive use: show each chunk at once */
        } else {
            rc = morphd_framer_feed(&framer, buf, (size_t)r, on_line, &p, NULL);
            if (rc == MORPHD_FRAMER_TOO_LONG)
                fprintf(stderr, "morph pipe: line %lu is longer than "
                        "--max-message (%zu bytes)\n", p.line_no + 1,
                        max_message);
        }
        if (rc != 0)
            break;
    }
    if (fflush(stdout) != 0)
        rc = -1;
    morphd_framer_free(&framer);
    morphd_standalone_close(&p.chain);
    morphd_chain_spec_free(names, n);
    return rc != 0 || p.failed ? MORPH_EXIT_FAILURE : MORPH_EXIT_OK;
}
