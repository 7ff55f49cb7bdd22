/*
 * options.h -- options a plugin declares (morph_option_decl_t): checking
 * the declarations when the plugin loads, checking the operator's values
 * with file:line errors and "did you mean", and building the list that
 * create() receives (normalised, defaults filled). A plugin that declares
 * nothing gets its options as written, as in ABI 1.
 */
#ifndef MORPHD_OPTIONS_H
#define MORPHD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <morph/plugin.h>

#include "base/errors.h"
#include "base/spec.h"

struct morphd_plugin;

/* The type's name: "string", "integer", ... */
const char *morphd_option_type_name(uint32_t type);

/* Parses `value` for the declaration `d` into its normalised text (see
 * morph_option_decl_t) in out[0 .. out_size), in the grammar of
 * base/value.h, morphd's keys' own. `declared`: `value` is the plugin's
 * declared default, where a bare duration is milliseconds (plugin.h).
 * Returns 0, or -1 with a short phrase in err ("'x' is not yes or no"). */
int morphd_option_normalize(const morph_option_decl_t *d, const char *value,
                            bool declared, char *out, size_t out_size,
                            char *err, size_t err_size);

/* Checks the declarations of a plugin being loaded (names, types, bounds,
 * defaults) and collects them into an array of pointers in *decls (the
 * plugin's own elements; free the array). Returns 0, or -1 with a reason. */
int morphd_options_collect(const morph_option_decl_t *first,
                           const morph_option_decl_t ***decls, size_t *n,
                           char *err, size_t err_size);

/* Checks every option in `opts` meant for `p` (those whose plugin is
 * p->name) against its declarations, adding one error per problem:
 * "FILE:LINE: PLUGIN.KEY: ..." for an option from a file, or
 * "UNFILED: ..." for an option without a line (--set, -o). Does nothing
 * for a plugin that declares no options. Returns the number of errors. */
size_t morphd_options_check(const struct morphd_plugin *p,
                            const morphd_plugin_opts_t *opts,
                            const char *file, const char *unfiled,
                            morphd_errors_t *errs);

/* What create() gets: the options, and the strings they point to. */
typedef struct morphd_option_list {
    morph_option_t *v;
    size_t n;
    char **strings;
    size_t n_strings;
} morphd_option_list_t;

/* Builds create()'s options for `p` from `opts` (NULL: none): for a plugin
 * with declarations every declared option in order, normalised, defaults
 * filled (the values must have passed morphd_options_check); otherwise the
 * options meant for it, as written. Returns 0, or -1 with a reason. */
int morphd_options_for(const struct morphd_plugin *p,
                       const morphd_plugin_opts_t *opts,
                       morphd_option_list_t *list, char *err, size_t err_size);
void morphd_option_list_free(morphd_option_list_t *list);

#endif
