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

/* A log line built and written with async-signal-safe calls only (no
 * stdio, no allocation), for the crash line and the watchdog, which run in
 * signal handlers. It starts as morphd_log's lines do ("2026-01-02T03:04:
 * 05.678Z morphd[PID] error: "); what does not fit is cut. It goes to
 * stderr even under `log = syslog` (syslog(3) is not signal-safe; under
 * systemd, stderr reaches the journal too). */
typedef struct morphd_signal_line {
    char buf[640];
    size_t len;
} morphd_signal_line_t;

void morphd_signal_line_start(morphd_signal_line_t *l, int level);
void morphd_signal_line_str(morphd_signal_line_t *l, const char *s);
void morphd_signal_line_num(morphd_signal_line_t *l, unsigned long v);
/* ns as seconds with one decimal: "12.3" */
void morphd_signal_line_secs(morphd_signal_line_t *l, unsigned long long ns);
/* Ends the line with a newline and writes it with one write(2). */
void morphd_signal_line_write(morphd_signal_line_t *l);

#endif
