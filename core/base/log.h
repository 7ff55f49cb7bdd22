/*
 * log.h -- morphd's logger: one line per event on stderr, with a timestamp
 * and a level, filtered by `log_level`.
 */
#ifndef MORPHD_LOG_H
#define MORPHD_LOG_H

#include <morph/plugin.h> /* MORPH_LOG_* levels are shared with plugins */

/* Parses "error", "warn", "info" or "debug". Returns the level or -1. */
int morphd_log_level_parse(const char *name);
const char *morphd_log_level_name(int level);

void morphd_log_set_level(int level);

/* Sends log lines to syslog (which journald collects) instead of stderr. */
void morphd_log_use_syslog(int on);

/* Logs one line when `level` is enabled. Never fails the caller: a write
 * error on the log stream is ignored so logging cannot stop serving. */
void morphd_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The level now (for morphd_log_enabled, before work done only to log). */
int morphd_log_get_level(void);
#define morphd_log_enabled(level) ((level) <= morphd_log_get_level())

/* Writes the start of a log line ("2026-01-02T03:04:05.678Z morphd[PID]
 * error: ") into buf, as morphd_log does, with async-signal-safe calls
 * only (for the crash line). Returns its length (not NUL-terminated). */
size_t morphd_log_prefix_signal_safe(char *buf, size_t size, int level);

#endif
