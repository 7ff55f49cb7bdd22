/*
 * morph.c -- the `morph` tool. `morph pipe ...` runs plugins locally,
 * `morph stats` reads morphd's counters, `morph plugin info` describes a
 * plugin; anything else is the client (morph_client.c).
 */
#include <string.h>

#include "morph_cli.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "pipe") == 0)
        return morph_pipe_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "stats") == 0)
        return morph_stats_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "plugin") == 0)
        return morph_plugin_main(argc - 1, argv + 1);
    return morph_client_main(argc, argv);
}
