/*
 * host.h -- what morphd offers plugins through morph_host_t: logging,
 * connection info, timers and the loop, and counters of their own. One
 * host struct per stage (a plugin instance on one worker), and one per
 * plugin file for its load() hook.
 */
#ifndef MORPHD_HOST_H
#define MORPHD_HOST_H

#include <morph/plugin.h>

struct morphd_stage;

/* Fills st->host for the stage (its chain, plugin and worker are set). */
struct morphd_chain;
void morphd_host_stage_init(struct morphd_stage *st);
/* Stops what the stage's plugin left running (timers), on the stage's
 * loop; called when the instance is gone. */
void morphd_host_stage_done(struct morphd_stage *st);

/* With env->manual_clock: moves the clock of `chain`'s env on by `ms`,
 * firing in order every timer of its stages that falls due (a timer a
 * callback starts included, when it falls within). Returns how many
 * fired. */
unsigned morphd_host_advance(struct morphd_chain *chain, uint64_t ms);

/* Fills a process-wide host for `plugin_name`'s load(): `log` only. */
void morphd_host_process_init(morph_host_t *host, const char *plugin_name);

#endif
