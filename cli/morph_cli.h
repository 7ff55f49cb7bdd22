/*
 * morph_cli.h -- the subcommands of the `morph` tool, one file each.
 */
#ifndef MORPH_CLI_H
#define MORPH_CLI_H

#include "base/exit_codes.h"

/* `morph [options] [HOST][:PORT] [MESSAGE...]`: the client. */
int morph_client_main(int argc, char **argv);

/* `morph stats ...`: argv[0] is "stats". */
int morph_stats_main(int argc, char **argv);

/* `morph pipe ...`: argv[0] is "pipe". */
int morph_pipe_main(int argc, char **argv);

/* `morph plugin info ...`: argv[0] is "plugin". */
int morph_plugin_main(int argc, char **argv);

#endif
