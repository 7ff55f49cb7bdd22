/*
 * morph.c -- the `morph` tool: dispatches to its subcommands.
 */
#include <stdio.h>
#include <string.h>

#include <morph/plugin.h>

#include "morph_cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: morph COMMAND [ARGS]\n"
            "\n"
            "Commands:\n"
            "  pipe CHAIN     apply plugins to standard input (morph pipe --help)\n"
            "\n"
            "  -h, --help     show this help\n"
            "  -V, --version  show the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return MORPH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "pipe") == 0)
        return morph_pipe_main(argc - 1, argv + 1);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("morph %s (plugin ABI %d)\n", MORPH_VERSION,
               MORPH_PLUGIN_ABI_VERSION);
        return 0;
    }
    fprintf(stderr, "morph: unknown command '%s'\n", cmd);
    usage(stderr);
    return MORPH_EXIT_USAGE;
}
