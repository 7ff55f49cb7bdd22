/*
 * morph_cli.h -- the subcommands of the `morph` tool, one file each.
 */
#ifndef MORPH_CLI_H
#define MORPH_CLI_H

#include <stddef.h>

#include "base/exit_codes.h"
#include "codec/codec.h"

/* `morph [options] [HOST][:PORT] [MESSAGE...]`: the client. */
int morph_client_main(int argc, char **argv);

/* `morph stats ...`: argv[0] is "stats". */
int morph_stats_main(int argc, char **argv);

/* `morph pipe ...`: argv[0] is "pipe". */
int morph_pipe_main(int argc, char **argv);

/* `morph plugin info ...`: argv[0] is "plugin". */
int morph_plugin_main(int argc, char **argv);

/* --length-field and --delimiter (morph_framing.c): 0, or -1 after saying
 * why on stderr, as `prog` ("morph", "morph pipe"). */
int morph_option_length_field(const char *prog, const char *arg,
                              morphd_length_kind_t *kind);
int morph_option_delimiter(const char *prog, const char *arg,
                           unsigned char *out, size_t size, size_t *len);

#endif
