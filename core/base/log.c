/*
 * log.c -- the logger behind log.h. Lines are formatted into one buffer and
 * written with a single write(2), so lines from several threads never
 * interleave.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int current_level = MORPH_LOG_INFO;
static int to_syslog;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int morphd_log_level_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof level_names / sizeof *level_names); i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return MORPH_LOG_WARN;
    return -1;
}

const char *morphd_log_level_name(int level)
{
    if (level < 0 || level > MORPH_LOG_DEBUG)
        return "?";
    return level_names[level];
}

/* Relaxed atomics: worker threads read the level while a reload sets it. */
void morphd_log_set_level(int level)
{
    __atomic_store_n(&current_level, level, __ATOMIC_RELAXED);
}

/* Threads that log (the access log's writer, the watchdog) read it while
 * a reload may set it: relaxed atomics, as for the level. */
void morphd_log_use_syslog(int on)
{
    int was = __atomic_load_n(&to_syslog, __ATOMIC_RELAXED);
    if (on && !was)
        openlog("morphd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    else if (!on && was)
        closelog();
    if (on != was)
        __atomic_store_n(&to_syslog, on, __ATOMIC_RELAXED);
}

int morphd_log_get_level(void)
{
    return __atomic_load_n(&current_level, __ATOMIC_RELAXED);
}

void morphd_log(int level, const char *fmt, ...)
{
    if (!morphd_log_enabled(level))
        return;

    char line[2048];
    if (__atomic_load_n(&to_syslog, __ATOMIC_RELAXED)) {
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        syslog(prio[level < 0 ? 0 : level > 3 ? 3 : level], "%s", line);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ morphd[%d] %s: ",
                          ts.tv_nsec / 1000000, (int)getpid(),
                          morphd_log_level_name(level));

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2; /* truncated: keep the newline */
    line[n++] = '\n';

    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; /* a failing log must never stop serving */
}

/* Decimal digits of v, at least `width` of them, into buf (no stdio). */
static size_t put_num(char *buf, size_t n, size_t size, unsigned long v,
                      int width)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && k < (int)sizeof digits);
    while (k < width && k < (int)sizeof digits)
        digits[k++] = '0';
    while (k > 0 && n + 1 < size)
        buf[n++] = digits[--k];
    return n;
}

static size_t prefix_signal_safe(char *buf, size_t size, int level)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* async-signal-safe */
    /* days since 1970-01-01 to a civil date (Howard Hinnant's algorithm):
     * gmtime_r is not async-signal-safe */
    long long secs = (long long)ts.tv_sec;
    long long days = secs / 86400, rem = secs % 86400;
    if (rem < 0)
        rem += 86400, days--;
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    size_t n = 0;
    n = put_num(buf, n, size, (unsigned long)y, 4);
    static const char *const sep[] = {"-", "-", "T", ":", ":", "."};
    unsigned long parts[] = {m, d, (unsigned long)rem / 3600,
                             (unsigned long)rem % 3600 / 60,
                             (unsigned long)rem % 60,
                             (unsigned long)ts.tv_nsec / 1000000};
    for (int i = 0; i < 6; i++) {
        if (n + 1 < size)
            buf[n++] = sep[i][0];
        n = put_num(buf, n, size, parts[i], i == 5 ? 3 : 2);
    }
    const char *mid = "Z morphd[";
    while (*mid && n + 1 < size)
        buf[n++] = *mid++;
    n = put_num(buf, n, size, (unsigned long)getpid(), 1);
    const char *name = morphd_log_level_name(level);
    if (n + 2 < size)
        buf[n++] = ']', buf[n++] = ' ';
    while (*name && n + 1 < size)
        buf[n++] = *name++;
    if (n + 2 < size)
        buf[n++] = ':', buf[n++] = ' ';
    return n;
}

void morphd_signal_line_start(morphd_signal_line_t *l, int level)
{
    l->len = prefix_signal_safe(l->buf, sizeof l->buf, level);
}

void morphd_signal_line_str(morphd_signal_line_t *l, const char *s)
{
    while (s != NULL && *s && l->len + 1 < sizeof l->buf)
        l->buf[l->len++] = *s++;
}

void morphd_signal_line_num(morphd_signal_line_t *l, unsigned long v)
{
    l->len = put_num(l->buf, l->len, sizeof l->buf, v, 1);
}

void morphd_signal_line_secs(morphd_signal_line_t *l, unsigned long long ns)
{
    unsigned long long tenths = (ns + 50000000u) / 100000000u;
    morphd_signal_line_num(l, (unsigned long)(tenths / 10));
    morphd_signal_line_str(l, ".");
    morphd_signal_line_num(l, (unsigned long)(tenths % 10));
}

void morphd_signal_line_write(morphd_signal_line_t *l)
{
    if (l->len >= sizeof l->buf)
        l->len = sizeof l->buf - 1;
    l->buf[l->len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l->buf, l->len);
    (void)w; /* a failing log must never stop serving */
}
