/*
 * spec.h -- the two small grammars operators write in several places,
 * parsed in one place: a chain of plugin names ("uppercase | reverse", or
 * "uppercase,reverse" on a command line) and a plugin option
 * ("PLUGIN.KEY = VALUE" in a service section, "PLUGIN.KEY=VALUE" after
 * --set, -o and in <morph/testing.h>).
 */
#ifndef MORPHD_SPEC_H
#define MORPHD_SPEC_H

#include <stdbool.h>
#include <stddef.h>

/* One plugin option, as written by the operator. */
typedef struct morphd_plugin_opt {
    char *plugin;
    char *key;
    char *value;
    int line; /* where it was written (0: not from a file) */
} morphd_plugin_opt_t;

/* A list of options (owned strings). */
typedef struct morphd_plugin_opts {
    morphd_plugin_opt_t *v;
    size_t n;
} morphd_plugin_opts_t;

/* Levenshtein distance between two short names (99 for long ones), for
 * "did you mean" suggestions. */
size_t morphd_edit_distance(const char *a, const char *b);

/* Whether `s` is a plugin or service name: letters, digits, '_' and '-'. */
bool morphd_valid_name(const char *s);

/* Parses a chain: plugin names separated by '|' or ',', spaces around
 * them ignored. On success returns 0 and a new array of new strings in
 * *names (free with morphd_chain_spec_free); otherwise -1 with a reason
 * in err. */
int morphd_chain_spec_parse(const char *text, char ***names, size_t *n,
                            char *err, size_t err_size);
void morphd_chain_spec_free(char **names, size_t n);

/* Adds the option `name` (PLUGIN.KEY) = `value`, written at `line`, to
 * `opts`. A PLUGIN.KEY already in the list is an error when `replace` is
 * false (naming the line of the first), and replaced when true. Returns 0,
 * or -1 with a reason in err. */
int morphd_plugin_opts_add(morphd_plugin_opts_t *opts, const char *name,
                           const char *value, int line, bool replace,
                           char *err, size_t err_size);

/* Same for "PLUGIN.KEY=VALUE" in one string. */
int morphd_plugin_opts_add_assign(morphd_plugin_opts_t *opts,
                                  const char *assignment, bool replace,
                                  char *err, size_t err_size);

void morphd_plugin_opts_free(morphd_plugin_opts_t *opts);

#endif
